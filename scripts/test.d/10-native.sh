#!/usr/bin/env bash
# Native build with -Werror and every ctest label (unit, e2e, fault, s3, serial, mqtt, sysfs,
# validation, systemd). Tests start their own servers on free loopback ports.
set -euo pipefail
cd "$ROOT"
cmake -S . -B build-test -DCMAKE_BUILD_TYPE=RelWithDebInfo -DEDGEPIPE_WERROR=ON >/dev/null
cmake --build build-test -j2
# Guard against a suite silently dropping out of the build (LevelDB commit 8f464e7).
for label in unit e2e; do
  n=$(cd build-test && ctest -N -L "^$label\$" | awk '/Total Tests:/ {print $3}')
  [ "${n:-0}" -gt 0 ] || { echo "native: no tests labelled '$label'" >&2; exit 1; }
done
cd build-test && ctest -j2 --output-on-failure --timeout 900
