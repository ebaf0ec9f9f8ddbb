#!/usr/bin/env bash
# Native build with -Werror and every ctest label (unit, e2e, fault, s3, serial, mqtt, sysfs,
# validation, systemd). Tests start their own servers on free loopback ports.
# -O2 like RelWithDebInfo, but without -g unless EDGEPIPE_DEBUG_INFO=1: debug info makes this
# build ~30 % slower and CI's budget is tight (the sanitizer stage keeps line tables for reports).
set -euo pipefail
cd "$ROOT"
opt="-O2 -DNDEBUG"
[ "${EDGEPIPE_DEBUG_INFO:-0}" = 1 ] && opt="-O2 -g -DNDEBUG"
cmake -S . -B build-test -DCMAKE_BUILD_TYPE=RelWithDebInfo -DEDGEPIPE_WERROR=ON \
  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="$opt" -DCMAKE_C_FLAGS_RELWITHDEBINFO="$opt" >/dev/null
cmake --build build-test -j2
# Guard against a suite silently dropping out of the build (LevelDB commit 8f464e7).
for label in unit e2e; do
  n=$(cd build-test && ctest -N -L "^$label\$" | awk '/Total Tests:/ {print $3}')
  [ "${n:-0}" -gt 0 ] || { echo "native: no tests labelled '$label'" >&2; exit 1; }
done
cd build-test && ctest -j2 --output-on-failure --timeout 900
