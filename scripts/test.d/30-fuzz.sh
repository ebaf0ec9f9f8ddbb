#!/usr/bin/env bash
# libFuzzer targets (clang-14, ASan + UBSan), each run for a bounded time from its seed corpus
# in tests/fuzz/corpus/<name>/. A crash fails the stage and leaves the reproducer in build-fuzz/.
#   FUZZ_SECONDS (default 30) per target.
# To add a target: a fuzz_<name> function below that compiles tests/fuzz/<name>_fuzz.cpp into
# $OUT/<name>_fuzz, and its name in TARGETS.
set -euo pipefail
cd "$ROOT"
OUT=$ROOT/build-fuzz
SECONDS_PER=${FUZZ_SECONDS:-30}
mkdir -p "$OUT"
CXX="clang++-14 -std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined"
INC="-Icore/include -Ifirmware-bridge/include"

# MQTT payload parsers + topic templates (issue 6). simdjson is Debian's (uninstrumented).
fuzz_payload() {
  $CXX $INC -DSIMDJSON_THREADS_ENABLED=1 tests/fuzz/payload_fuzz.cpp firmware-bridge/src/payload.cpp \
    firmware-bridge/src/topic_template.cpp core/src/status.cpp core/src/time_util.cpp \
    -lsimdjson -o "$OUT/payload_fuzz"
}

TARGETS=(payload)
for t in "${TARGETS[@]}"; do
  echo "fuzz: building $t"
  "fuzz_$t"
  work=$OUT/corpus-$t
  mkdir -p "$work"
  cp -n tests/fuzz/corpus/"$t"/* "$work"/ 2>/dev/null || true
  echo "fuzz: running $t for ${SECONDS_PER}s"
  (cd "$OUT" && "./${t}_fuzz" -max_total_time="$SECONDS_PER" -max_len=4096 -timeout=10 -print_final_stats=1 "$work" 2>&1 | tail -15)
  # libFuzzer exits non-zero on a crash; `set -o pipefail` makes the stage fail.
done
echo "fuzz: all targets ran clean"
