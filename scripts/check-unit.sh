#!/usr/bin/env bash
# Checks a systemd unit without systemd as PID 1: `systemd-analyze verify` must print nothing
# (it exits 0 on "Failed to parse ..., ignoring" warnings, so any output is a failure) and
# `systemd-analyze security --offline=yes` must rate the exposure 2.0 or lower.
#   usage: scripts/check-unit.sh [UNIT]      (default packaging/edgepipe.service)
set -euo pipefail
cd "$(dirname "$0")/.."
UNIT=${1:-packaging/edgepipe.service}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
# verify needs ExecStart's binary to exist: point every edgepipe path at /bin/true for the check.
sed -E 's#^(Exec[A-Za-z]+=)[^ ]*/edgepipe( |$)#\1/bin/true\2#' "$UNIT" > "$T/edgepipe.service"
out=$(systemd-analyze verify "$T/edgepipe.service" 2>&1) || { echo "$out"; echo "check-unit: verify failed" >&2; exit 1; }
if [ -n "$out" ]; then
  echo "$out"
  echo "check-unit: systemd-analyze verify printed the warnings above for $UNIT" >&2
  exit 1
fi
echo "check-unit: systemd-analyze verify: clean ($UNIT)"
# --threshold compares against exposure x 10: 20 = 2.0.
if ! sec=$(systemd-analyze security --offline=yes --threshold=20 "$T/edgepipe.service" 2>&1); then
  echo "$sec"
  echo "check-unit: exposure above 2.0 for $UNIT" >&2
  exit 1
fi
if echo "$sec" | grep -q "Invalid syntax\|Unknown key"; then
  echo "$sec" | grep "Invalid syntax\|Unknown key"
  echo "check-unit: systemd-analyze security reported unit problems" >&2
  exit 1
fi
echo "check-unit: $(echo "$sec" | grep 'Overall exposure level' | sed 's/^→ //')"
