#!/usr/bin/env bash
# libFuzzer (clang-14, ASan + UBSan) on the uploader's parsers of outside input: credentials
# files, S3 error replies, HTTP dates, upload windows, metadata/key encoders. Runs from the seed
# corpus in tests/fuzz/corpus/uploader_parsers for FUZZ_SECONDS (default 20).
set -euo pipefail
cd "$ROOT"
OUT=build-fuzz
mkdir -p "$OUT"
CXX=${FUZZ_CXX:-clang++-14}
command -v "$CXX" >/dev/null || { echo "fuzz-uploader: $CXX not found (scripts/deps.sh test)" >&2; exit 1; }
"$CXX" -std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
  -Icore/include -Iuploader/include \
  tests/fuzz/uploader_parsers_fuzz.cpp \
  uploader/src/credentials.cpp uploader/src/s3_errors.cpp uploader/src/schedule.cpp uploader/src/sigv4.cpp \
  core/src/clock.cpp core/src/log.cpp core/src/status.cpp core/src/time_util.cpp \
  -lcrypto -lpthread -o "$OUT/uploader_parsers_fuzz"
CORPUS="$OUT/corpus-uploader"
rm -rf "$CORPUS"; mkdir -p "$CORPUS"
cp tests/fuzz/corpus/uploader_parsers/* "$CORPUS/"
"$OUT/uploader_parsers_fuzz" -max_total_time="${FUZZ_SECONDS:-20}" -max_len=4096 -artifact_prefix="$OUT/" -print_final_stats=1 "$CORPUS" \
  2>&1 | tail -n 15
