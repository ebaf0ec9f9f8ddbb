#!/usr/bin/env bash
# Cross-builds edgepipe for an ARM architecture against a Debian 12 sysroot, runs the unit test
# suite under qemu-user, and reports the stripped size of the agent binary.
#   usage: scripts/cross-build.sh arm64|armhf [--no-test] [--package]
#   environment: BUILD_DIR (default build-ARCH), BUILD_TYPE (default RelWithDebInfo, without -g unless
#                EDGEPIPE_DEBUG_INFO=1), JOBS (default 2),
#                EDGEPIPE_SYSROOT (default .cache/sysroot-ARCH, created by scripts/make-sysroot.sh)
# Only what is tested is built: the `edgepipe` binary and the executables of the tests labelled
# `unit` (no benches, fuzzers or integration tests, which need host servers).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

ARCH=${1:?usage: cross-build.sh arm64|armhf [--no-test] [--package]}
shift
TEST=1 PACKAGE=0
for a in "$@"; do
  case "$a" in
    --no-test) TEST=0 ;;
    --package) PACKAGE=1 ;;
    *) echo "cross-build: unknown option $a" >&2; exit 64 ;;
  esac
done
case "$ARCH" in
  arm64) TRIPLE=aarch64-linux-gnu ;;
  armhf) TRIPLE=arm-linux-gnueabihf ;;
  *) echo "cross-build: unknown architecture '$ARCH' (arm64 or armhf)" >&2; exit 64 ;;
esac
BUILD_DIR=${BUILD_DIR:-build-$ARCH}
JOBS=${JOBS:-2}

t0=$(date +%s)
SYSROOT=${EDGEPIPE_SYSROOT:-$(scripts/make-sysroot.sh "$ARCH" | tail -1)}
t1=$(date +%s)
# -O2 without -g unless EDGEPIPE_DEBUG_INFO=1: the binary is shipped stripped, and debug info
# makes the (emulated, CI-budgeted) build markedly slower. Both values are passed explicitly, as
# in scripts/test.d/10-native.sh, so that switching EDGEPIPE_DEBUG_INFO on or off in an existing
# tree takes effect (a flag left out would keep its cached value).
opt="-O2 -DNDEBUG"
[ "${EDGEPIPE_DEBUG_INFO:-0}" = 1 ] && opt="-O2 -g -DNDEBUG"
cmake -S . -B "$BUILD_DIR" -DCMAKE_TOOLCHAIN_FILE="$ROOT/toolchains/$TRIPLE.cmake" -DEDGEPIPE_SYSROOT="$SYSROOT" \
  -DCMAKE_BUILD_TYPE="${BUILD_TYPE:-RelWithDebInfo}" -DEDGEPIPE_WERROR=ON \
  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="$opt" -DCMAKE_C_FLAGS_RELWITHDEBINFO="$opt" >/dev/null

# Target names of the unit tests: the executables ctest would run for label `unit`.
mapfile -t UNIT_TARGETS < <(scripts/ctest-targets.sh "$BUILD_DIR" '^unit$')
targets=(edgepipe)
[ "$TEST" = 1 ] && targets+=("${UNIT_TARGETS[@]}")
echo "cross-build: building ${targets[*]} for $ARCH"
cmake --build "$BUILD_DIR" -j"$JOBS" --target "${targets[@]}"
t2=$(date +%s)

BIN="$BUILD_DIR/bin/edgepipe"
file "$BIN" | sed "s#^$BUILD_DIR/##"
"$TRIPLE-strip" -o "$BUILD_DIR/edgepipe.stripped" "$BIN"
SIZE=$(stat -c %s "$BUILD_DIR/edgepipe.stripped")
echo "cross-build: $ARCH stripped edgepipe: $SIZE bytes ($(awk -v s="$SIZE" 'BEGIN { printf "%.2f", s / 1048576 }') MiB)"
echo "cross-build: $ARCH dynamic dependencies: $("$TRIPLE-readelf" -d "$BIN" | awk '/NEEDED/ {gsub(/[][]/, "", $5); printf "%s ", $5}')"
if [ "$ARCH" = arm64 ]; then
  # The file grows in steps of 64 KiB (docs/cross-compiling.md, "Binary size"): report how far the
  # code segment is from the data segment's page, so that the next step is seen coming.
  mapfile -t loads < <("$TRIPLE-readelf" -lW "$BIN" | awk '$1 == "LOAD" {print $2, $3, $5}')
  if [ ${#loads[@]} -ge 2 ]; then
    read -r _ _ code_size <<< "${loads[0]}"
    read -r data_off data_va _ <<< "${loads[1]}"
    if (( data_off < data_va )); then
      echo "cross-build: arm64 code segment ends about $(( data_off - code_size )) bytes before the next 64 KiB step"
    else
      echo "cross-build: arm64 code segment is past a 64 KiB step (the data segment starts on its own page)"
    fi
  fi
fi
if [ "$ARCH" = arm64 ] && [ "$SIZE" -ge $((2 * 1024 * 1024)) ]; then
  echo "cross-build: FAIL: the aarch64 binary is over the 2 MiB target" >&2
  exit 1
fi
# The binary runs under emulation (catches a missing shared library in the sysroot too).
"${EDGEPIPE_QEMU:-$([ "$ARCH" = arm64 ] && echo qemu-aarch64 || echo qemu-arm)}" -L "$SYSROOT" "$BIN" version

if [ "$TEST" = 1 ]; then
  [ ${#UNIT_TARGETS[@]} -gt 0 ] || { echo "cross-build: no tests labelled unit" >&2; exit 1; }
  (cd "$BUILD_DIR" && ctest -j"$JOBS" -L '^unit$' --output-on-failure --timeout 900)
fi
t3=$(date +%s)
if [ "$PACKAGE" = 1 ]; then
  # Reuses this build tree (reconfigured for the /usr prefix; nothing is recompiled).
  BUILD_DIR="$BUILD_DIR" EDGEPIPE_SYSROOT="$SYSROOT" scripts/build-deb.sh "$ARCH"
fi
t4=$(date +%s)
echo "cross-build: $ARCH timings: sysroot $((t1 - t0)) s, configure+build $((t2 - t1)) s, qemu tests $((t3 - t2)) s, package $((t4 - t3)) s"
