#!/usr/bin/env bash
# pipeline_bench's stages counted in instructions instead of CPU time: each stage runs once under
# callgrind, which counts only inside the stage's function (payload generation and start-up are
# not counted), and the count is divided by the readings. Deterministic where CPU time on a shared
# VM is not, so it settles an A/B of a change in the SenML path (parse, validation, buffer,
# object); it does not see the kernel (the buffer's writes, fsync) or cache misses.
#   usage: bench/buffer/instructions.sh [BUILD_DIR]    (default: build; needs valgrind:
#                                                       scripts/deps.sh bench)
#   environment: PIPELINE_BENCH (binary, default BUILD_DIR/bench/pipeline_bench), READINGS
#                (default 200000), STAGES (default "json object validate full")
set -euo pipefail
B=$(realpath "${1:-build}")
PB=$(realpath "${PIPELINE_BENCH:-$B/bench/pipeline_bench}")
READINGS=${READINGS:-200000}
STAGES=${STAGES:-json object validate full}
command -v valgrind >/dev/null || { echo "instructions: valgrind is missing (scripts/deps.sh bench)" >&2; exit 69; }
[ -x "$PB" ] || { echo "instructions: no pipeline_bench at $PB (cmake --build $B --target pipeline_bench)" >&2; exit 66; }
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
# The function of pipeline_bench.cpp that each stage times (zstd's also renders the NDJSON it
# compresses, untimed, so it is not offered here). A pattern must not match a lambda inside the
# function too: entering a matching function toggles the collection, so the lambda would be left
# out.
fn() {
  case "$1" in
    json) echo '*::JsonFloor(*)' ;;
    object) echo '*::Baseline(int, int)' ;;
    parse | validate) echo '*::Front(*)' ;;
    pipeline | full) echo '*::ThroughBuffer(*&)' ;;
    *) echo "instructions: unknown stage $1 (json object parse validate pipeline full)" >&2; return 64 ;;
  esac
}
printf 'user-space instructions per reading, %d readings (SenML packs of 50):\n' "$READINGS"
for st in $STAGES; do
  f=$(fn "$st")
  # The store's writer thread commits on its own when a group fills before the stage's
  # WaitDurable asks for it (a race: which side commits a given group varies from run to run), so
  # for the stages with a buffer its loop is counted too; the store is opened and closed inside
  # the stage's function, so the writer's whole life belongs to the stage.
  extra=()
  case "$st" in pipeline | full) extra=(--toggle-collect='*Store::Impl::WriterLoop()') ;; esac
  valgrind --tool=callgrind --collect-atstart=no --toggle-collect="$f" "${extra[@]}" --callgrind-out-file="$T/$st.out" \
    "$PB" --readings "$READINGS" --repeat 1 --only "$st" --dir "$T/db" > "$T/$st.log" 2>&1 ||
    { cat "$T/$st.log" >&2; exit 1; }
  ir=$(awk '/^totals:/ {print $2}' "$T/$st.out")
  [ -n "$ir" ] && [ "$ir" -gt 0 ] || { echo "instructions: nothing counted for $st" >&2; exit 1; }
  awk -v st="$st" -v ir="$ir" -v n="$READINGS" 'BEGIN { printf "  %-9s %7.0f\n", st, ir / n }'
done
