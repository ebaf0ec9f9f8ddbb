#!/usr/bin/env bash
# AddressSanitizer + UndefinedBehaviorSanitizer build (EDGEPIPE_SANITIZE, which adds
# float-cast-overflow); runs the unit, e2e, validation and fault suites under it.
# Built with clang-14 (installed for the fuzzers; GCC 12 builds the native and cross trees with
# -Werror, so both compilers' warnings are errors on our code): clang compiles the instrumented
# -O0 tree in ~60 % of GCC's time, and compiling is most of this stage. Only the suites' executables
# (and the helpers they run) are built, with line tables (file:line in every report) rather than
# full debug info; EDGEPIPE_DEBUG_INFO=1 gives full -g. `cmake --preset asan-ubsan` is the same
# build with GCC (docs/development.md).
set -euo pipefail
cd "$ROOT"
LABELS='unit|e2e|validation|fault'
debug=-gline-tables-only
[ "${EDGEPIPE_DEBUG_INFO:-0}" = 1 ] && debug=-g
CC=clang-14 CXX=clang++-14 cmake -S . -B build-sanitize -DCMAKE_BUILD_TYPE=Debug -DEDGEPIPE_SANITIZE=ON \
  -DEDGEPIPE_BUILD_BENCH=OFF -DEDGEPIPE_WERROR=ON -DCMAKE_CXX_FLAGS="-Wno-unknown-warning-option" \
  -DCMAKE_CXX_FLAGS_DEBUG="$debug" -DCMAKE_C_FLAGS_DEBUG="$debug" >/dev/null
mapfile -t targets < <(scripts/ctest-targets.sh build-sanitize "$LABELS")
[ ${#targets[@]} -gt 0 ] || { echo "sanitize: no tests labelled $LABELS" >&2; exit 1; }
echo "sanitize: building ${targets[*]} with $(clang++-14 --version | head -1)"
cmake --build build-sanitize -j2 --target "${targets[@]}"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
cd build-sanitize && ctest -j2 --output-on-failure -L "$LABELS" --timeout 1200
