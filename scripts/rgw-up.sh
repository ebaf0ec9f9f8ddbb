#!/usr/bin/env bash
# Starts a throw-away single-node Ceph (one monitor + one in-memory OSD) and a radosgw S3 endpoint
# on 127.0.0.1, everything (data, sockets, logs, pid files) under DIR. Stop it with rgw-down.sh DIR.
#   usage: rgw-up.sh DIR [PORT [MONPORT]]
#   env:   S3_ACCESS_KEY / S3_SECRET_KEY   credentials of the user created (TESTKEY / TESTSECRET)
#          RGW_SSL_PORT + RGW_SSL_CERT + RGW_SSL_KEY   also serve HTTPS on that port (PEM files)
#          RGW_DNS_NAME   host name for virtual-hosted addressing (default localhost: bucket.localhost)
# Parallel clusters need distinct DIRs and ports (tests pass free ports). Needs the packages
# ceph-mon ceph-osd radosgw (scripts/deps.sh ceph). Recipe: ../shared/notes/setup-verified.md §3b.
set -euo pipefail
trap 'echo "rgw-up: failed (exit $?) at line $LINENO: $BASH_COMMAND; logs in ${D:-?}/log" >&2' ERR
D=$(realpath -m "${1:?usage: rgw-up.sh DIR [PORT [MONPORT]]}")
PORT=${2:-17480}
MONPORT=${3:-${MONPORT:-16789}}
AK=${S3_ACCESS_KEY:-TESTKEY}
SK=${S3_SECRET_KEY:-TESTSECRET}
DNS=${RGW_DNS_NAME:-localhost}
for tool in monmaptool ceph-mon ceph-osd radosgw radosgw-admin ceph; do
  command -v "$tool" >/dev/null || { echo "rgw-up: $tool not found; install with: scripts/deps.sh ceph" >&2; exit 69; }
done
FRONTEND="beast endpoint=127.0.0.1:$PORT"
if [ -n "${RGW_SSL_PORT:-}" ]; then
  FRONTEND="$FRONTEND ssl_endpoint=127.0.0.1:$RGW_SSL_PORT ssl_certificate=${RGW_SSL_CERT:?} ssl_private_key=${RGW_SSL_KEY:?}"
fi
rm -rf "$D"
mkdir -p "$D"/{mon,osd,run,log,rgw}
FSID=$(cat /proc/sys/kernel/random/uuid)
cat > "$D/ceph.conf" <<CONF
[global]
fsid = $FSID
mon initial members = a
mon host = v1:127.0.0.1:$MONPORT
public addr = 127.0.0.1
auth cluster required = none
auth service required = none
auth client required = none
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
mon allow pool size one = true
mon warn on pool no redundancy = false
mon max pg per osd = 1000
mon data avail warn = 1
mon data avail crit = 0
osd crush chooseleaf type = 0
osd objectstore = memstore
memstore device bytes = ${RGW_MEMSTORE_BYTES:-1073741824}
osd memory target = 536870912
ms bind ipv6 = false
run dir = $D/run
admin socket = $D/run/\$cluster-\$name.asok
log file = $D/log/\$name.log
pid file = $D/run/\$name.pid
mon data = $D/mon/\$cluster-\$id
osd data = $D/osd/\$cluster-\$id
[client.rgw.a]
rgw frontends = $FRONTEND
rgw data = $D/rgw
rgw dns name = $DNS
CONF
C=(-c "$D/ceph.conf")
monmaptool --create --add a "v1:127.0.0.1:$MONPORT" --fsid "$FSID" "$D/monmap" >/dev/null
ceph-mon "${C[@]}" --mkfs -i a --monmap "$D/monmap"
ceph-mon "${C[@]}" -i a
# Register the OSD with its uuid and give the same uuid to --mkfs: without it the OSD sometimes
# boots before the monitor recorded a uuid and is refused ("wrong fsid").
# The first command right after the monitor started was once refused ("Error EPERM: problem
# getting command descriptions from mon.": the monitor not ready for clients yet; a fresh clone's
# native stage, ctest -j2): asked again, like the OSD start below. `osd create` with the same
# uuid is idempotent, so a try whose answer was lost does not make a second OSD.
# retry_step LOG COMMAND...: a start-up step tried up to twelve times, backing off from 0.5 s to
# 2 s (about 16 s in all). Its stderr (and whatever the caller sends there) is appended to LOG,
# whose end is printed if the last try fails; its stdout stays the caller's.
retry_step() {
  local log=$1 try
  shift
  for try in $(seq 1 12); do
    "$@" 2>>"$log" && return 0
    [ "$try" = 12 ] && { tail -n 20 "$log" >&2; return 1; }
    if [ "$try" -le 3 ]; then sleep 0.5; elif [ "$try" -le 6 ]; then sleep 1; else sleep 2; fi
  done
}
OSD_UUID=$(cat /proc/sys/kernel/random/uuid)
OSD=$(retry_step "$D/log/osd-create.err" timeout 60 ceph "${C[@]}" osd create "$OSD_UUID")
mkdir -p "$D/osd/ceph-$OSD"
ceph-osd "${C[@]}" -i "$OSD" --mkfs --osd-uuid "$OSD_UUID" >"$D/log/osd-mkfs.out" 2>&1 || { cat "$D/log/osd-mkfs.out" >&2; false; }
# Ceph 16's OSD sometimes asks the monitor before it learned the cluster fsid and gives up at
# once ("handle_command on fsid 00000000-... != ..." in the mon log, "wrong fsid" from the OSD):
# start it again. Under load (ctest -j2 beside a build) five tries 0.5 s apart were once not
# enough: hence twelve, backing off.
retry_step "$D/log/osd-start.out" ceph-osd "${C[@]}" -i "$OSD" >>"$D/log/osd-start.out"
radosgw "${C[@]}" -n client.rgw.a
up=0
for _ in $(seq 1 240); do
  if [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/")" = 200 ]; then up=1; break; fi
  sleep 0.25
done
[ "$up" = 1 ] || { echo "rgw-up: radosgw did not answer on 127.0.0.1:$PORT within 60 s; see $D/log/" >&2; exit 1; }
radosgw-admin "${C[@]}" user create --uid=tester --display-name=tester --access-key="$AK" --secret-key="$SK" >/dev/null
echo "rgw up on http://127.0.0.1:$PORT${RGW_SSL_PORT:+ and https://127.0.0.1:$RGW_SSL_PORT} (access key $AK, dir $D)"
