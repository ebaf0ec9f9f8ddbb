#!/usr/bin/env bash
# Stops the daemons started by rgw-up.sh DIR (by their pid files, newest first) and waits for
# each to exit so its ports are free again.   usage: rgw-down.sh DIR [--keep]
# Removes DIR afterwards unless --keep is given.
D=${1:?usage: rgw-down.sh DIR [--keep]}
for n in client.rgw.a osd.0 mon.a; do
  f="$D/run/$n.pid"
  [ -f "$f" ] || continue
  p=$(cat "$f")
  kill "$p" 2>/dev/null || continue
  for _ in $(seq 1 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$p" 2>/dev/null || true
done
[ "${2:-}" = "--keep" ] || rm -rf "$D"
