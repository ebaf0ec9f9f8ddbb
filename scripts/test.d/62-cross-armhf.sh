#!/usr/bin/env bash
# Cross-build for 32-bit ARM (Debian armhf) against a bookworm sysroot, run the unit suite under
# qemu-arm and report the stripped binary size.
set -euo pipefail
cd "$ROOT"
scripts/cross-build.sh armhf
