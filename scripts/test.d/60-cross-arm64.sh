#!/usr/bin/env bash
# Cross-build for aarch64 (Debian arm64) against a bookworm sysroot, run the unit suite under
# qemu-aarch64, report the stripped binary size (fails over 2 MiB) and build the arm64 .deb.
set -euo pipefail
cd "$ROOT"
scripts/cross-build.sh arm64 --package
