#!/usr/bin/env bash
# A scenario of run.sh (default "qos1 json normal", the QoS 1 single-reading one) counted in
# instructions instead of CPU time: the agent and the bare-Paho floor each run under callgrind,
# at two queue sizes, and the difference between the sizes gives the user-space instructions per
# message, and per reading for SenML packs (startup and shutdown cancel out). Deterministic where CPU time on a shared VM is not (pairs of
# run.sh drift by ±30 %), so it settles an A/B of a change in our code; it does not see the
# kernel (syscalls, the page cache), and timer-driven work (the uploader's polls, the writer's
# timer) counts more than in a real run because callgrind runs ~50x slower.
#   usage: bench/mqtt/instructions.sh [BUILD_DIR]     (default: build; needs valgrind:
#                                                      scripts/deps.sh bench)
#   environment: EDGEPIPE (agent binary, default BUILD_DIR/bin/edgepipe), SCENARIO (a label of
#                run.sh: "qos1 json normal", "qos0 json", "qos1 senml50 normal", "qos0 senml50"),
#                N1 N2 (queue sizes in messages, default 4000 and 20000; 1000 and 5000 packs
#                for SenML)
set -euo pipefail
HERE=$(dirname "$(realpath "$0")")
B=$(realpath "${1:-build}")
EP=$(realpath "${EDGEPIPE:-$B/bin/edgepipe}")
SCENARIO=${SCENARIO:-qos1 json normal}
case "$SCENARIO" in
  *senml50*) PER=50; N1=${N1:-1000}; N2=${N2:-5000} ;;
  "qos1 json normal" | "qos1 json full" | "qos0 json") PER=1; N1=${N1:-4000}; N2=${N2:-20000} ;;
  *) echo "instructions: unknown scenario '$SCENARIO'" >&2; exit 64 ;;
esac
command -v valgrind >/dev/null || { echo "instructions: valgrind is missing (scripts/deps.sh bench)" >&2; exit 69; }
[ "$N2" -gt "$N1" ] || { echo "instructions: N2 must be larger than N1" >&2; exit 64; }
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
# The agent's `run` (not run.sh's short session-creating run) under callgrind.
cat > "$T/agent" <<WRAP
#!/usr/bin/env bash
if [ "\$1" = run ] && [ "\$4" != "--duration" ]; then
  exec valgrind --tool=callgrind --callgrind-out-file="$T/agent.\$CG_N.out" "$EP" "\$@"
fi
exec "$EP" "\$@"
WRAP
chmod +x "$T/agent"
total() { awk '/^totals:/ {print $2}' "$1"; }
for n in "$N1" "$N2"; do
  echo "instructions: $n messages (agent and floor under callgrind)..." >&2
  CG_N=$n REF_FLOORS=0 EDGEPIPE="$T/agent" N_FLOOR=$n N_QOS1=$n N_PACKS=$n ONLY="^$SCENARIO\$" REPEAT=1 \
    FLOOR_WRAP="valgrind --tool=callgrind --callgrind-out-file=$T/floor.$n.out" "$HERE/run.sh" "$B" > "$T/run.$n.log" 2>&1 ||
    { cat "$T/run.$n.log" >&2; exit 1; }
  for side in agent floor; do
    [ -s "$T/$side.$n.out" ] || { echo "instructions: no callgrind output for the $side at $n"; cat "$T/run.$n.log"; exit 1; } >&2
  done
done
a1=$(total "$T/agent.$N1.out"); a2=$(total "$T/agent.$N2.out")
f1=$(total "$T/floor.$N1.out"); f2=$(total "$T/floor.$N2.out")
awk -v a1="$a1" -v a2="$a2" -v f1="$f1" -v f2="$f2" -v n1="$N1" -v n2="$N2" -v per="$PER" -v sc="$SCENARIO" 'BEGIN {
  a = (a2 - a1) / (n2 - n1) / per; f = (f2 - f1) / (n2 - n1) / per
  printf "%s, user-space instructions per %s (marginal, %d..%d messages):\n", sc, (per > 1 ? "reading" : "message"), n1, n2
  printf "  agent %.0f  floor %.0f  agent/floor %.2fx\n", a, f, a / f
}'
