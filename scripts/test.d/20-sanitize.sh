#!/usr/bin/env bash
# AddressSanitizer + UndefinedBehaviorSanitizer build; runs the unit and e2e suites under it.
set -euo pipefail
cd "$ROOT"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DEDGEPIPE_SANITIZE=ON -DEDGEPIPE_BUILD_BENCH=OFF >/dev/null
cmake --build build-asan -j2
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
cd build-asan && ctest -j2 --output-on-failure -L 'unit|e2e|validation|fault' --timeout 1200
