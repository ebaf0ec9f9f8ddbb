#!/usr/bin/env bash
# Sets up a fresh Debian 12 machine and builds edgepipe into build/ (idempotent).
#   usage: scripts/setup.sh          environment: BUILD_DIR (default build), BUILD_TYPE (default RelWithDebInfo)
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/deps.sh
source scripts/deps.sh
edgepipe_install build
BUILD_DIR=${BUILD_DIR:-build}
cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE="${BUILD_TYPE:-RelWithDebInfo}" >/dev/null
cmake --build "$BUILD_DIR" -j"${JOBS:-2}" --target edgepipe
echo "setup: built $BUILD_DIR/bin/edgepipe ($("$BUILD_DIR"/bin/edgepipe version))"
