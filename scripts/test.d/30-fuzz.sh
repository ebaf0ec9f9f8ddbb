#!/usr/bin/env bash
# libFuzzer (clang-14, ASan + UBSan) on every target in tests/fuzz/CMakeLists.txt, for a bounded
# time each, starting from the committed corpus and seed directories. New interesting inputs go
# to a scratch corpus (not the repository); a crash fails the stage and leaves its input in
# build-fuzz/artifacts/ (reproduce: build-fuzz/tests/fuzz/<target> <crash file>).
#   FUZZ_BUDGET   seconds of fuzzing shared by all targets (default 60; at least 10 each)
#   FUZZ_SECONDS  seconds per target instead (overrides FUZZ_BUDGET)
#   FUZZ_JOBS     targets fuzzed at the same time (default 2)
# To add a target: one edgepipe_add_fuzzer(...) line in tests/fuzz/CMakeLists.txt (sources, the
# libraries it links, extra seed directories); this script runs whatever is registered there.
set -euo pipefail
cd "$ROOT"
BUDGET=${FUZZ_BUDGET:-60}
SAN="-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer -g"
CC=clang-14 CXX=clang++-14 cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DEDGEPIPE_FUZZ=ON \
  -DEDGEPIPE_BUILD_TESTS=OFF -DEDGEPIPE_WERROR=OFF \
  -DCMAKE_C_FLAGS="$SAN" -DCMAKE_CXX_FLAGS="$SAN -Wno-unknown-warning-option" >/dev/null
cmake --build build-fuzz -j2 --target fuzzers
MANIFEST=build-fuzz/tests/fuzz/targets.txt
n=$(grep -c . "$MANIFEST" || true)
[ "$n" -gt 0 ] || { echo "fuzz: no fuzz targets registered" >&2; exit 1; }
per=$(( BUDGET / n )); [ "$per" -ge 10 ] || per=10
[ -z "${FUZZ_SECONDS:-}" ] || per=$FUZZ_SECONDS
mkdir -p build-fuzz/artifacts
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
# Two targets at a time (FUZZ_JOBS): each fuzzer is single-threaded and the machine has 2 cores.
JOBS=${FUZZ_JOBS:-2}
fuzz_one() {  # target seeds...: runs one target, leaves its log and an .ok file when it ran clean
  local target=$1; shift
  local scratch=build-fuzz/corpus/$target dirs=() d
  mkdir -p "$scratch"
  for d in "$@"; do [ -d "$d" ] && dirs+=("$d"); done
  echo "fuzz: $target for ${per}s (seeds: ${dirs[*]:-none})"
  rm -f "build-fuzz/$target.ok"
  build-fuzz/tests/fuzz/"$target" -max_total_time="$per" -max_len=4096 -timeout=10 -rss_limit_mb=1024 -print_final_stats=1 \
      -artifact_prefix=build-fuzz/artifacts/"$target"- "$scratch" "${dirs[@]}" > "build-fuzz/$target.log" 2>&1 &&
    touch "build-fuzz/$target.ok"
}
targets=()
while read -r target seeds; do
  [ -n "$target" ] || continue
  targets+=("$target")
  # shellcheck disable=SC2086  # seeds is a space-separated list of directories
  fuzz_one "$target" $seeds &
  while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do wait -n || true; done
done < "$MANIFEST"
wait
failed=()
for target in "${targets[@]}"; do
  if [ -f "build-fuzz/$target.ok" ]; then
    echo "fuzz: $target ran clean"
    grep -E "stat::number_of_executed_units|cov:" "build-fuzz/$target.log" | tail -2 | sed 's/^/  /'
  else
    echo "fuzz: $target FAILED:"
    tail -40 "build-fuzz/$target.log"
    failed+=("$target")
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: FAILED: ${failed[*]} (inputs in build-fuzz/artifacts/)" >&2
  exit 1
fi
echo "fuzz: $n target(s) ran clean"
