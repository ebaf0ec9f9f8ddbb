#!/usr/bin/env bash
# Cross-build for 32-bit ARM (Debian armhf) against a bookworm sysroot, run the unit suite under
# qemu-arm, report the stripped binary size and build + check the armhf .deb.
set -euo pipefail
cd "$ROOT"
scripts/cross-build.sh armhf --package
