#!/usr/bin/env bash
# Prints the Depends: line for a (cross-built) binary: each NEEDED shared library is looked up in
# the shlibs control files recorded by scripts/make-sysroot.sh (SYSROOT/.edgepipe-shlibs), which
# is what dpkg-shlibdeps would fall back to. Fails naming any library no package provides.
#   usage: scripts/deb-depends.sh BINARY SYSROOT [READELF]
set -euo pipefail
BIN=${1:?usage: deb-depends.sh BINARY SYSROOT [READELF]}
SHLIBS=${2:?usage: deb-depends.sh BINARY SYSROOT [READELF]}/.edgepipe-shlibs
READELF=${3:-readelf}
[ -s "$SHLIBS" ] || { echo "deb-depends: $SHLIBS missing: rebuild the sysroot (FORCE=1 scripts/make-sysroot.sh ARCH)" >&2; exit 1; }
deps=()
missing=()
while read -r soname; do
  # libfoo.so.N -> (libfoo, N); libfoo-1.2.so -> (libfoo-1.2, "") as in shlibs(5)
  if [[ "$soname" =~ ^(.+)\.so\.([0-9.]+)$ ]]; then name=${BASH_REMATCH[1]}; ver=${BASH_REMATCH[2]};
  elif [[ "$soname" =~ ^(.+)-([0-9.]+)\.so$ ]]; then name=${BASH_REMATCH[1]}; ver=${BASH_REMATCH[2]};
  else name=${soname%.so}; ver=""; fi
  dep=$(awk -v n="$name" -v v="$ver" '$1 == n && $2 == v { $1 = ""; $2 = ""; sub(/^ +/, ""); print; exit }' "$SHLIBS")
  if [ -z "$dep" ]; then missing+=("$soname"); else deps+=("$dep"); fi
done < <("$READELF" -d "$BIN" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
if [ ${#missing[@]} -gt 0 ]; then
  echo "deb-depends: no shlibs entry for: ${missing[*]}" >&2
  exit 1
fi
printf '%s\n' "${deps[@]}" | sort -u | paste -sd, - | sed 's/,/, /g'
