#!/usr/bin/env bash
# A/B of two agent binaries on the MQTT input benchmark (docs/benchmarks.md, "MQTT input").
#   usage: bench/mqtt/ab.sh OLD_EDGEPIPE [NEW_EDGEPIPE] [BUILD_DIR]
#          (NEW_EDGEPIPE default BUILD_DIR/bin/edgepipe; BUILD_DIR default build: its mqtt_bench)
#   environment: PAIRS (runs of each binary per scenario, default 5), ONLY (an extended regex of
#                the scenario labels of run.sh, default 'qos0 senml50'), ALSO (more binaries,
#                space-separated, run in the same rotation and compared with OLD), and run.sh's sizes.
# A shared VM's speed drifts by tens of per cent within minutes, more than most changes are
# worth, so the two binaries run alternately, one run each, through run.sh with the same queue
# shape; each binary's runs are printed sorted with their median, and the ratio of the medians
# (new / old) and of the cheapest runs (noise only ever adds CPU time).
set -euo pipefail
OLD=$(realpath -m "${1:?usage: bench/mqtt/ab.sh OLD_EDGEPIPE [NEW_EDGEPIPE] [BUILD_DIR]}")
B=$(realpath -m "${3:-build}")
NEW=$(realpath -m "${2:-$B/bin/edgepipe}")
BINS=("$OLD" "$NEW")
for extra in ${ALSO:-}; do BINS+=("$(realpath -m "$extra")"); done
for bin in "${BINS[@]}"; do
  [ -x "$bin" ] || { echo "ab.sh: $bin is not an executable edgepipe binary" >&2; exit 2; }
done
[ -x "$B/bench/mqtt_bench" ] || { echo "ab.sh: $B/bench/mqtt_bench not built (cmake --build $B --target mqtt_bench)" >&2; exit 2; }
PAIRS=${PAIRS:-5}
ONLY=${ONLY:-qos0 senml50}
HERE=$(dirname "$(realpath "$0")")
OUT=$(mktemp)
trap 'rm -f "$OUT"' EXIT
for _ in $(seq "$PAIRS"); do
  for i in "${!BINS[@]}"; do  # side 0 = old, 1 = new, 2... = ALSO
    # run.sh prints "floor: ..." lines, then one result line per agent run ("<name>: ...").
    # (REF_FLOORS=0: the single-reading floors behind run.sh's REFSPEED line add nothing to an A/B.)
    EDGEPIPE=${BINS[$i]} ONLY=$ONLY REPEAT=1 REF_FLOORS=0 "$HERE/run.sh" "$B" 2>&1 |
      grep -E '^[a-z0-9-]+: messages=' | grep -Ev '^(floor|ref0|ref1):' | sed "s/^/$i /" >> "$OUT" || true
  done
done
python3 - "$OUT" "${BINS[@]}" <<'PY'
import re, statistics, sys
path, bins = sys.argv[1], sys.argv[2:]
labels = ["old", "new"] + [f"also{i}" for i in range(1, len(bins) - 1)]
runs = {}  # (scenario, side) -> [figure]
unit = {}
for line in open(path):
    side, name, rest = re.match(r"(\d+) ([^:]+): (.*)", line.strip()).groups()
    side = labels[int(side)]
    readings = int(re.search(r"readings=(\d+)", rest).group(1))
    messages = int(re.search(r"messages=(\d+)", rest).group(1))
    key = "us_per_reading" if readings > messages else "us_per_msg"
    unit[name] = "µs/reading" if readings > messages else "µs/message"
    runs.setdefault((name, side), []).append(float(re.search(key + r"=([0-9.]+)", rest).group(1)))
for label, b in zip(labels, bins):
    print(f"{label} = {b}")
for name in sorted({n for n, _ in runs}):
    sides = {label: sorted(runs.get((name, label), [])) for label in labels}
    if not all(sides.values()):
        print(f"{name}: missing runs (" + ", ".join(f"{k} {len(v)}" for k, v in sides.items()) + ")")
        continue
    print(f"{name} ({unit[name]}, agent CPU)")
    o = sides["old"]
    for label, v in sides.items():
        print(f"  {label}: {' '.join(f'{x:g}' for x in v)}  median {statistics.median(v):g}")
    for label, v in sides.items():
        if label != "old":
            print(f"  {label}/old: medians {statistics.median(v) / statistics.median(o):.2f}, cheapest runs {v[0] / o[0]:.2f}")
PY
