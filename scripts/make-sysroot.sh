#!/usr/bin/env bash
# Builds a Debian 12 (bookworm) sysroot for cross-compiling edgepipe, from Debian's own packages.
#   usage: scripts/make-sysroot.sh ARCH [DIR]     ARCH = arm64 | armhf    DIR default: .cache/sysroot-ARCH
# Prints the sysroot path on the last line. Idempotent: an existing sysroot built from the same
# package list is reused (a stamp file records the list); set FORCE=1 to rebuild.
#
# Why each step (docs/cross-compiling.md has the long form):
#  * the suite is named `bookworm`, not `stable`: stable moved on (trixie: GCC 14 libstdc++, Boost
#    1.83) and would not match Debian 12's GCC 12 cross compilers;
#  * --variant=extract only downloads and unpacks (no maintainer scripts, so no emulation needed);
#  * the mirror's bookworm-security armhf index has been seen inconsistent for long stretches
#    ("File has unexpected size"): on failure we retry once without the security suite (the
#    sysroot is only for building; the target installs its own up-to-date libraries);
#  * the packages' shlibs control files are kept in DIR/.edgepipe-shlibs: scripts/deb-depends.sh
#    turns a cross-built binary's NEEDED libraries into the .deb's Depends with them (dpkg-shlibdeps
#    cannot look into a foreign sysroot, and --variant=extract leaves no dpkg database);
#  * absolute symlinks (usr/lib/<triple>/libfoo.so -> /lib/<triple>/libfoo.so.N) would resolve on
#    the HOST, and the linker then silently picks the static .a: they are rewritten as relative.
set -euo pipefail
cd "$(dirname "$0")/.."

ARCH=${1:?usage: make-sysroot.sh arm64|armhf [DIR]}
case "$ARCH" in
  arm64 | armhf) ;;
  *) echo "make-sysroot: unknown architecture '$ARCH' (arm64 or armhf)" >&2; exit 64 ;;
esac
SR=$(realpath -m "${2:-.cache/sysroot-$ARCH}")

# The -dev packages edgepipe links against (keep in step with cmake/Dependencies.cmake) plus
# CppUTest for the unit tests that run under qemu.
PKGS=(libc6-dev libstdc++-12-dev libboost-dev libboost-system-dev libpaho-mqttpp-dev libpaho-mqtt-dev
  libsqlite3-dev libzstd-dev libcurl4-openssl-dev libssl-dev libcpputest-dev libtomlplusplus-dev
  nlohmann-json3-dev libsystemd-dev libcli11-dev libsimdjson-dev)
LIST=$(IFS=,; echo "${PKGS[*]}")
STAMP="$SR/.edgepipe-sysroot"
STAMP_TEXT="v2 $ARCH $LIST"
# Runs after the packages are unpacked, while the .debs are still in the archive cache.
SHLIBS_HOOK='for d in "$1"/var/cache/apt/archives/*.deb; do dpkg-deb --ctrl-tarfile "$d" | tar -xO ./shlibs 2>/dev/null || true; done > "$1/.edgepipe-shlibs"'

if [ -z "${FORCE:-}" ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$STAMP_TEXT" ]; then
  echo "make-sysroot: reusing $SR" >&2
  echo "$SR"
  exit 0
fi

command -v mmdebstrap >/dev/null || { echo "make-sysroot: mmdebstrap missing (scripts/deps.sh cross)" >&2; exit 1; }
start=$(date +%s)
rm -rf "$SR"
mkdir -p "$(dirname "$SR")"
if ! mmdebstrap --quiet --arch="$ARCH" --variant=extract --include="$LIST" --extract-hook="$SHLIBS_HOOK" \
    bookworm "$SR" >&2; then
  echo "make-sysroot: retrying without bookworm-security (its $ARCH index is known to be flaky)" >&2
  rm -rf "$SR"
  mmdebstrap --quiet --arch="$ARCH" --variant=extract --include="$LIST" --extract-hook="$SHLIBS_HOOK" \
    --setup-hook='sed -i "/-security/d" "$1/etc/apt/sources.list"' bookworm "$SR" >&2
fi
# Absolute symlinks would point into the host: make them relative to the sysroot.
find "$SR" -type l -lname '/*' ! -path "$SR/dev/*" | while read -r l; do
  ln -sfn "$(realpath -m --relative-to="$(dirname "$l")" "$SR$(readlink "$l")")" "$l"
done
[ -s "$SR/.edgepipe-shlibs" ] || { echo "make-sysroot: no shlibs were recorded in $SR" >&2; exit 1; }
echo "$STAMP_TEXT" > "$STAMP"
echo "make-sysroot: $ARCH sysroot in $SR ($(du -sh "$SR" | cut -f1), $(($(date +%s) - start)) s)" >&2
echo "$SR"
