#!/usr/bin/env bash
# Sets up everything and runs the whole test suite: the stages in scripts/test.d/ in order
# (native build + every ctest label, sanitizer build, fuzzing, cross builds under qemu, ...).
#   usage: scripts/test.sh [stage ...]      e.g. scripts/test.sh native   (default: all stages)
# Each stage prints its timing; the run fails if any stage fails (later stages still run).
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export ROOT
# shellcheck source=scripts/deps.sh
source scripts/deps.sh
edgepipe_install build test ceph cross mcu packaging bench || { echo "test: dependency installation failed" >&2; exit 1; }

stages=()
for f in scripts/test.d/[0-9][0-9]-*.sh; do
  name=$(basename "$f" .sh); name=${name#*-}
  if [ $# -eq 0 ] || printf '%s\n' "$@" | grep -qx "$name"; then stages+=("$f"); fi
done
[ ${#stages[@]} -gt 0 ] || { echo "test: no stage matches: $*" >&2; exit 64; }

failed=()
summary=()
total_start=$(date +%s)
for f in "${stages[@]}"; do
  name=$(basename "$f" .sh)
  echo "===== stage $name ====="
  start=$(date +%s)
  if bash "$f"; then result=ok; else result=FAILED; failed+=("$name"); fi
  summary+=("$(printf '%-24s %-7s %4ss' "$name" "$result" $(( $(date +%s) - start )))")
done
echo "===== summary ($(( $(date +%s) - total_start ))s) ====="
printf '%s\n' "${summary[@]}"
if [ ${#failed[@]} -gt 0 ]; then
  echo "test: FAILED stages: ${failed[*]}"
  exit 1
fi
echo "test: all stages passed"
