#!/usr/bin/env bash
# Installs what edgepipe needs from Debian 12 packages, only when something is missing
# (idempotent; a second run makes no network access).
#   usage: scripts/deps.sh [build] [test] [ceph] [cross] [mcu] [packaging] [bench]   (default: build)
# Sourced by setup.sh, demo.sh and test.sh.
set -euo pipefail

# Libraries and tools to build the agent.
EDGEPIPE_PKGS_BUILD=(build-essential cmake pkg-config
  libboost-dev libboost-system-dev libpaho-mqttpp-dev libpaho-mqtt-dev libsqlite3-dev libzstd-dev
  libcurl4-openssl-dev libssl-dev libcpputest-dev libtomlplusplus-dev nlohmann-json3-dev
  libsystemd-dev libcli11-dev libsimdjson-dev zstd sqlite3 zlib1g-dev)
# Test servers, peers and clients (tests start and stop them themselves).
EDGEPIPE_PKGS_TEST=(mosquitto mosquitto-clients socat awscli clang-14 libclang-rt-14-dev curl openssl
  iproute2 psmisc procps)
# Real S3 server for tests: Ceph's radosgw with one monitor and one in-memory OSD.
EDGEPIPE_PKGS_CEPH=(ceph-mon ceph-osd radosgw)
# Cross compilation to ARM Linux and running the results under emulation.
EDGEPIPE_PKGS_CROSS=(g++-aarch64-linux-gnu g++-arm-linux-gnueabihf qemu-user mmdebstrap)
# Bare-metal Cortex-M build of the firmware library.
EDGEPIPE_PKGS_MCU=(gcc-arm-none-eabi libnewlib-arm-none-eabi binutils-arm-none-eabi)
# Benchmark tools (not needed by the tests): callgrind for bench/mqtt/instructions.sh.
EDGEPIPE_PKGS_BENCH=(valgrind)
# Packaging checks.
EDGEPIPE_PKGS_PACKAGING=(lintian dpkg-dev fakeroot)

edgepipe_missing_pkgs() {
  local p missing=()
  for p in "$@"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
      missing+=("$p")
    fi
  done
  echo "${missing[@]:-}"
}

edgepipe_apt() {
  local sudo=()
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "deps: not root and no sudo; install: $*" >&2; return 1; }
    sudo=(sudo)
  fi
  export DEBIAN_FRONTEND=noninteractive
  if [ -z "${EDGEPIPE_APT_UPDATED:-}" ]; then
    "${sudo[@]}" apt-get update -o DPkg::Lock::Timeout=600 -qq
    export EDGEPIPE_APT_UPDATED=1
  fi
  "${sudo[@]}" apt-get install -y -qq -o DPkg::Lock::Timeout=600 "$@" >/dev/null
}

edgepipe_install() {
  local group norec=() rec=() missing
  for group in "$@"; do
    case "$group" in
      build) rec+=("${EDGEPIPE_PKGS_BUILD[@]}") ;;
      test) rec+=("${EDGEPIPE_PKGS_TEST[@]}") ;;
      ceph) norec+=("${EDGEPIPE_PKGS_CEPH[@]}") ;;
      cross) rec+=("${EDGEPIPE_PKGS_CROSS[@]}") ;;
      mcu) rec+=("${EDGEPIPE_PKGS_MCU[@]}") ;;
      packaging) rec+=("${EDGEPIPE_PKGS_PACKAGING[@]}") ;;
      bench) rec+=("${EDGEPIPE_PKGS_BENCH[@]}") ;;
      *) echo "deps: unknown group '$group'" >&2; return 64 ;;
    esac
  done
  missing=$(edgepipe_missing_pkgs "${rec[@]}")
  if [ -n "$missing" ]; then
    echo "deps: installing $missing"
    # shellcheck disable=SC2086
    edgepipe_apt $missing
  fi
  if [ ${#norec[@]} -gt 0 ]; then
    missing=$(edgepipe_missing_pkgs "${norec[@]}")
    if [ -n "$missing" ]; then
      echo "deps: installing $missing"
      # shellcheck disable=SC2086
      edgepipe_apt --no-install-recommends $missing
    fi
  fi
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  if [ $# -eq 0 ]; then set -- build; fi
  edgepipe_install "$@"
fi
