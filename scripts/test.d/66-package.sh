#!/usr/bin/env bash
# The systemd unit (systemd-analyze verify clean, security exposure <= 2.0), the amd64 .deb
# (lintian, Depends, conffile, packaged binary on the packaged config) and a plain `cmake --install`
# under another prefix. Reuses the native build tree of stage 10 when it exists.
set -euo pipefail
cd "$ROOT"
scripts/check-unit.sh
BUILD_DIR=build-test scripts/build-deb.sh
scripts/check-install.sh build-test /opt/edgepipe
