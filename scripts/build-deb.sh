#!/usr/bin/env bash
# Builds the edgepipe .deb for an architecture and checks it: lintian (no error or warning), the
# control fields (Architecture, Depends), the conffile, the unit (systemd-analyze), and that the
# packaged binary runs `check-config` on the packaged configuration (under qemu when cross-built).
#   usage: scripts/build-deb.sh [amd64|arm64|armhf]      (default: the host's architecture)
#   environment: BUILD_DIR (default build-deb-ARCH; an existing build tree is reused),
#                EDGEPIPE_SYSROOT (cross builds), JOBS (default 2)
# Prints the path of the .deb on the last line.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
HOST=$(dpkg --print-architecture)
ARCH=${1:-$HOST}
JOBS=${JOBS:-2}
BUILD_DIR=${BUILD_DIR:-build-deb-$ARCH}
# CMAKE_SKIP_INSTALL_ALL_DEPENDENCY: cpack runs the `preinstall` target, which otherwise builds
# `all` — every bench, fuzzer and integration test; a cross tree built for its unit tests only
# spent ~170 s of CI there. The two targets packaged are built explicitly below.
args=(-DCMAKE_INSTALL_PREFIX=/usr -DEDGEPIPE_WERROR=ON -DCMAKE_SKIP_INSTALL_ALL_DEPENDENCY=ON)
run=()
case "$ARCH" in
  "$HOST") ;;
  arm64) TRIPLE=aarch64-linux-gnu; QEMU=qemu-aarch64 ;;
  armhf) TRIPLE=arm-linux-gnueabihf; QEMU=qemu-arm ;;
  *) echo "build-deb: unknown architecture '$ARCH'" >&2; exit 64 ;;
esac
if [ "$ARCH" != "$HOST" ]; then
  SYSROOT=${EDGEPIPE_SYSROOT:-$(scripts/make-sysroot.sh "$ARCH" | tail -1)}
  args+=(-DCMAKE_TOOLCHAIN_FILE="$ROOT/toolchains/$TRIPLE.cmake" -DEDGEPIPE_SYSROOT="$SYSROOT")
  run=("$QEMU" -L "$SYSROOT")
fi
[ -f "$BUILD_DIR/CMakeCache.txt" ] || args+=(-DCMAKE_BUILD_TYPE="${BUILD_TYPE:-RelWithDebInfo}")

cmake -S . -B "$BUILD_DIR" "${args[@]}" >/dev/null
cmake --build "$BUILD_DIR" -j"$JOBS" --target edgepipe edgepipe_package_files
if [ "$ARCH" != "$HOST" ]; then
  # dpkg-shlibdeps cannot see a foreign sysroot: Depends from the sysroot's shlibs files.
  DEPENDS=$(scripts/deb-depends.sh "$BUILD_DIR/bin/edgepipe" "$SYSROOT" "$TRIPLE-readelf")
  cmake -S . -B "$BUILD_DIR" -DEDGEPIPE_DEB_DEPENDS="$DEPENDS" >/dev/null
fi
rm -f "$BUILD_DIR"/edgepipe_*.deb
(cd "$BUILD_DIR" && cpack -G DEB >/dev/null)
DEB=$(ls "$BUILD_DIR"/edgepipe_*_"$ARCH".deb)
echo "build-deb: built $DEB"

fail() { echo "build-deb: FAIL: $*" >&2; exit 1; }
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT

# Control fields and conffiles.
[ "$(dpkg-deb -f "$DEB" Architecture)" = "$ARCH" ] || fail "Architecture is $(dpkg-deb -f "$DEB" Architecture), expected $ARCH"
DEP=$(dpkg-deb -f "$DEB" Depends)
echo "build-deb: Depends: $DEP"
for p in libc6 libstdc++6 libsqlite3-0 libzstd1 libsystemd0; do
  echo "$DEP" | grep -q "\b$p\b" || fail "Depends lacks $p"
done
dpkg-deb --ctrl-tarfile "$DEB" | tar -xO ./conffiles | grep -qx /etc/edgepipe/edgepipe.toml || fail "edgepipe.toml is not a conffile"

# Contents: the files where Debian expects them, the secrets directory root-only.
dpkg-deb -c "$DEB" > "$T/contents"
for f in ./usr/bin/edgepipe ./lib/systemd/system/edgepipe.service ./etc/edgepipe/edgepipe.toml \
         ./usr/share/man/man1/edgepipe.1.gz ./usr/share/doc/edgepipe/copyright ./usr/share/doc/edgepipe/changelog.Debian.gz; do
  grep -q " $f$" "$T/contents" || fail "$f missing from the package"
done
grep -q '^drwx------ root/root .* ./etc/edgepipe/credentials/$' "$T/contents" || fail "etc/edgepipe/credentials is not 0700 root"

# The unit as packaged, and the packaged binary on the packaged configuration.
dpkg-deb -x "$DEB" "$T/root"
scripts/check-unit.sh "$T/root/lib/systemd/system/edgepipe.service"
"${run[@]}" "$T/root/usr/bin/edgepipe" check-config "$T/root/etc/edgepipe/edgepipe.toml"
SIZE=$(stat -c %s "$T/root/usr/bin/edgepipe")
echo "build-deb: $ARCH packaged binary: $SIZE bytes stripped ($(awk -v s="$SIZE" 'BEGIN { printf "%.2f", s / 1048576 }') MiB)"

# lintian: no error, no warning (infos are printed for the record).
if ! LINTIAN_OUT=$(lintian --pedantic --display-info --fail-on error,warning "$DEB" 2>&1); then
  echo "$LINTIAN_OUT"
  fail "lintian reported errors or warnings (or failed)"
fi
echo "$LINTIAN_OUT" | grep -v '^running with root privileges' || true
echo "build-deb: lintian: no errors or warnings"
echo "$DEB"
