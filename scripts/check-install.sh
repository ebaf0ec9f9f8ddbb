#!/usr/bin/env bash
# Checks a plain `cmake --install` under a non-Debian prefix (the tarball path): every file lands
# under the prefix, the installed unit points at the installed binary and configuration and passes
# systemd-analyze, and the installed binary accepts the installed configuration.
#   usage: scripts/check-install.sh [BUILD_DIR] [PREFIX]     (defaults: build, /opt/edgepipe)
# The build tree is reconfigured with the prefix (no recompilation) and installed with DESTDIR.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${1:-build}
PREFIX=${2:-/opt/edgepipe}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail() { echo "check-install: FAIL: $*" >&2; exit 1; }

cmake -S . -B "$BUILD_DIR" -DCMAKE_INSTALL_PREFIX="$PREFIX" -UEDGEPIPE_INSTALL_CONFDIR -UEDGEPIPE_INSTALL_UNITDIR >/dev/null
cmake --build "$BUILD_DIR" -j"${JOBS:-2}" --target edgepipe edgepipe_package_files
DESTDIR="$T/stage" cmake --install "$BUILD_DIR" --strip >/dev/null
R="$T/stage$PREFIX"
outside=$(cd "$T/stage" && find . \( -type f -o -type l \) -not -path ".$PREFIX/*")
[ -z "$outside" ] || fail "files installed outside $PREFIX: $outside"
for f in bin/edgepipe etc/edgepipe/edgepipe.toml lib/systemd/system/edgepipe.service share/man/man1/edgepipe.1.gz \
         share/doc/edgepipe/operations.md; do
  [ -e "$R/$f" ] || fail "$PREFIX/$f was not installed"
done
[ "$(stat -c %a "$R/etc/edgepipe/credentials")" = 700 ] || fail "$PREFIX/etc/edgepipe/credentials is not 0700"
grep -q "^ExecStart=$PREFIX/bin/edgepipe run --config $PREFIX/etc/edgepipe/edgepipe.toml$" "$R/lib/systemd/system/edgepipe.service" \
  || fail "the installed unit does not point at $PREFIX"
grep -q "^LoadCredential=edgepipe:$PREFIX/etc/edgepipe/credentials$" "$R/lib/systemd/system/edgepipe.service" \
  || fail "the installed unit's credentials directory is not under $PREFIX"
scripts/check-unit.sh "$R/lib/systemd/system/edgepipe.service"
"$R/bin/edgepipe" check-config "$R/etc/edgepipe/edgepipe.toml"
"$R/bin/edgepipe" version
echo "check-install: cmake --install with prefix $PREFIX: $(cd "$R" && find . -type f | wc -l) files, all under the prefix"
