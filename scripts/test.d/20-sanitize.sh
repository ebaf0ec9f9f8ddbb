#!/usr/bin/env bash
# AddressSanitizer + UndefinedBehaviorSanitizer build; runs the unit, e2e, validation and fault
# suites under it. Only their executables (and the helpers they run) are compiled, with line
# tables (-g1: file:line in every report) rather than full debug info, to keep the stage inside
# CI's budget; EDGEPIPE_DEBUG_INFO=1 gives full -g for a debugger.
set -euo pipefail
cd "$ROOT"
LABELS='unit|e2e|validation|fault'
debug=-g1
[ "${EDGEPIPE_DEBUG_INFO:-0}" = 1 ] && debug=-g
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DEDGEPIPE_SANITIZE=ON -DEDGEPIPE_BUILD_BENCH=OFF \
  -DCMAKE_CXX_FLAGS_DEBUG="$debug" -DCMAKE_C_FLAGS_DEBUG="$debug" >/dev/null
mapfile -t targets < <(scripts/ctest-targets.sh build-asan "$LABELS")
[ ${#targets[@]} -gt 0 ] || { echo "sanitize: no tests labelled $LABELS" >&2; exit 1; }
echo "sanitize: building ${targets[*]}"
cmake --build build-asan -j2 --target "${targets[@]}"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
cd build-asan && ctest -j2 --output-on-failure -L "$LABELS" --timeout 1200
