#!/usr/bin/env bash
# The quick-start job: sets everything up, then runs the agent on its embedded default
# (simulated sensors -> validation -> durable buffer -> local outbox) for a bounded time and
# shows what it produced.   environment: DEMO_DURATION (default 30s), DEMO_DIR (default ./edgepipe-demo)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
DEMO_DIR=${DEMO_DIR:-edgepipe-demo}
DURATION=${DEMO_DURATION:-30s}
if [ -d "$DEMO_DIR" ]; then
  echo "demo: removing the previous demo output in $DEMO_DIR"
  rm -rf "$DEMO_DIR"
fi
echo "demo: running the agent for $DURATION (Ctrl-C stops it early and still drains the buffer)"
build/bin/edgepipe run --state-dir "$DEMO_DIR" --duration "$DURATION" --summary-json "$DEMO_DIR/summary.json"

OUTBOX="$DEMO_DIR/outbox"
objects=$(find "$OUTBOX" -name '*.zst' -not -path '*/quarantine/*' | sort)
qobjects=$(find "$OUTBOX" -name '*.zst' -path '*/quarantine/*' | sort)
lines=0
for f in $objects; do lines=$((lines + $(zstd -dcq "$f" | wc -l))); done
qlines=0
for f in $qobjects; do qlines=$((qlines + $(zstd -dcq "$f" | wc -l))); done
bytes=$(cat $objects /dev/null | wc -c)
# readings the agent says it delivered: "readings" inside the "uploads" object of the summary
reported=$(awk '/"uploads": \{/ {u=1} u && /"readings":/ {gsub(/[^0-9]/, ""); print; exit}' "$DEMO_DIR/summary.json")
reported=${reported:-?}
echo
echo "demo: in $OUTBOX"
echo "  $(echo "$objects" | grep -c . || true) reading objects, $lines NDJSON lines, $bytes bytes (the agent reported $reported readings delivered)"
echo "  $(echo "$qobjects" | grep -c . || true) quarantine objects, $qlines rejected readings with their reasons"
first=$(echo "$objects" | head -n 1)
echo
echo "Look at them:"
echo "  find $OUTBOX -name '*.zst'"
echo "  zstd -dc $first | head -n 3"
# (head stops reading after its lines: zstd's write then fails with SIGPIPE, which pipefail would
# turn into the script's exit status once an object decompresses to more than a pipe buffer.)
[ -n "$first" ] && head -n 3 < <(zstd -dcq "$first") | sed 's/^/    /'
[ -n "$qobjects" ] && echo "  zstd -dc $(echo "$qobjects" | head -n 1)" && head -n 2 < <(zstd -dcq "$(echo "$qobjects" | head -n 1)") | sed 's/^/    /'
echo "  build/bin/edgepipe status --config <(build/bin/edgepipe default-config --state-dir $DEMO_DIR)"
echo "  duckdb -c \"SELECT sensor, count(*), avg(value) FROM read_ndjson('$OUTBOX/device=*/date=*/hour=*/*.ndjson.zst', hive_partitioning=true) GROUP BY sensor\""
if [ "$reported" != "?" ] && [ "$reported" != "$lines" ]; then
  echo "demo: MISMATCH: the agent reported $reported readings but the outbox holds $lines" >&2
  exit 1
fi
