#!/usr/bin/env bash
# Agent CPU while reading an MCU link at full rate: mcu-sim on a pty, paced to the byte rate of
# the baud rate (a pty ignores baud) and generating as fast as the link drains, against the
# built edgepipe binary (serial source -> validation -> buffer -> file:// outbox). The agent's
# CPU time (utime + stime from /proc) is sampled over a window after a warm-up. Baselines in the
# same run: the agent with the port open but no traffic, and the agent's built-in simulator
# source producing the same number of readings per second without any serial protocol.
#   bench/serial/agent_cpu.sh [build-dir] [window-seconds]
set -euo pipefail
BUILD=${1:-build}
WINDOW=${2:-10}
WARMUP=3
EP=$BUILD/bin/edgepipe
SIM=$BUILD/bin/mcu-sim
[ -x "$EP" ] && [ -x "$SIM" ] || { echo "agent_cpu: build edgepipe and mcu-sim first ($BUILD/bin)" >&2; exit 1; }
T=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$T"; }
trap cleanup EXIT
HZ=$(getconf CLK_TCK)

ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

config() {  # $1 = dir, $2 = source table
  cat <<C
[device]
id = "bench"
[agent]
status_interval = "1h"
[buffer]
path = "$1/buffer.db"
[upload]
url = "file://$1/outbox"
[[source]]
$2
C
}

# measure <name> <dir> <sim args or ""> <source table>: prints CPU % of one core and readings/s.
measure() {
  local name=$1 dir=$2 simargs=$3 source=$4
  mkdir -p "$dir"
  config "$dir" "$source" > "$dir/ep.toml"
  local sim_pid=""
  if [ -n "$simargs" ]; then
    # shellcheck disable=SC2086
    "$SIM" --pty "$dir/tty" $simargs --summary "$dir/sim.json" 2> "$dir/sim.err" &
    sim_pid=$!; PIDS+=("$sim_pid")
    for _ in $(seq 50); do [ -e "$dir/tty" ] && break; sleep 0.1; done
  fi
  local t_start; t_start=$(date +%s.%N)
  "$EP" run -c "$dir/ep.toml" --summary-json "$dir/summary.json" > "$dir/out.log" 2> "$dir/err.log" &
  local ep_pid=$!; PIDS+=("$ep_pid")
  sleep "$WARMUP"
  local c0 r0 c1 r1
  c0=$(ticks "$ep_pid"); r0=$(readings "$dir")
  sleep "$WINDOW"
  c1=$(ticks "$ep_pid"); r1=$(readings "$dir")
  local t_end; t_end=$(date +%s.%N)
  kill -TERM "$ep_pid"; wait "$ep_pid" 2>/dev/null || true
  local link="-"
  if [ -n "$sim_pid" ]; then
    kill -TERM "$sim_pid"; wait "$sim_pid" 2>/dev/null || true
    # Share of the link's byte rate the simulator used over its whole run (frames incl. resends).
    local bytes baud
    bytes=$(awk -F'"bytes":' '{split($2, a, ","); print a[1]}' "$dir/sim.json")
    baud=$(awk '{for (i = 1; i < NF; i++) if ($i == "--baud") print $(i + 1)}' <<< "$simargs")
    [ -n "$baud" ] && link=$(awk -v b="$bytes" -v baud="$baud" -v t0="$t_start" -v t1="$t_end" \
      'BEGIN {printf "%.0f", 100 * b / ((t1 - t0) * baud / 10)}')
  fi
  local cpu rate per
  cpu=$(awk -v d=$((c1 - c0)) -v hz="$HZ" -v w="$WINDOW" 'BEGIN {printf "%.1f", 100 * d / hz / w}')
  rate=$(awk -v d=$((r1 - r0)) -v w="$WINDOW" 'BEGIN {printf "%.0f", d / w}')
  per=$(awk -v d=$((c1 - c0)) -v hz="$HZ" -v n=$((r1 - r0)) 'BEGIN {if (n > 0) printf "%.1f", 1e6 * d / hz / n; else print "-"}')
  printf '%-44s %8s %12s %14s %10s\n' "$name" "$cpu" "$rate" "$per" "$link"
  echo "$name|$cpu|$rate|$per" >> "$T/results"
}

# Readings committed so far (lifetime counter in the buffer, read-only).
readings() {
  "$EP" status -c "$1/ep.toml" --json 2>/dev/null | awk -F'[:,]' '/"readings_committed"/ {gsub(/ /, "", $2); print $2; exit}' || echo 0
}

serial() {  # $1 = device, $2 = baud
  printf 'type = "serial"\nname = "mcu0"\ndevice = "%s"\nbaud = %s\n' "$1" "$2"
}

echo "agent CPU, $WINDOW s window after $WARMUP s warm-up; $(nproc) cores; $(uname -m)"
printf '%-44s %8s %12s %14s %10s\n' "run" "CPU %" "readings/s" "CPU us/reading" "link use %"
measure "idle: port open, no traffic" "$T/idle" "--rate 0.001" "$(serial "$T/idle/tty" 115200)"
measure "115200 baud, full rate (16 sensors)" "$T/b115k" "--baud 115200 --rate 0 --sensors 16 --ring 8192" \
  "$(serial "$T/b115k/tty" 115200)"
measure "3 Mbaud, full rate (64 sensors)" "$T/b3m" "--baud 3000000 --rate 0 --sensors 64 --ring 16384" \
  "$(serial "$T/b3m/tty" 3000000)"
rate3m=$(awk -F'|' '/^3 Mbaud/ {print $3}' "$T/results")
interval_us=$(awk -v r="$rate3m" 'BEGIN {if (r > 0) printf "%d", 64e6 / r; else print 10000}')
measure "baseline: built-in simulator, same rate" "$T/simsrc" "" \
  "$(printf 'type = "simulator"\nname = "sim"\nsensor_count = 64\ninterval = "%sus"\n' "$interval_us")"
c3=$(awk -F'|' '/^3 Mbaud/ {print $4}' "$T/results")
cb=$(awk -F'|' '/^baseline/ {print $4}' "$T/results")
awk -v a="$c3" -v b="$cb" 'BEGIN {if (b > 0 && a != "-") printf "serial path vs in-process simulator, CPU per reading: %.2fx\n", a / b}'
