#!/usr/bin/env bash
# Builds the libFuzzer harnesses of the input readers (fuzz/, clang with
# libFuzzer, AddressSanitizer and UndefinedBehaviorSanitizer) in build-fuzz/
# and runs each in turn at nice 19 on its committed seeds (fuzz/corpus/<name>/,
# read only) plus a working corpus (build-fuzz/corpus/<name>/, kept between
# runs). Prints one line per harness: executions, wall and CPU seconds, findings.
# Findings (crash-*, leak-*, timeout-*, oom-*) land in build-fuzz/findings/<name>/;
# the script exits 1 if there is any.
# Usage: scripts/fuzz.sh [--smoke | --minutes N | --seconds N] [--only NAME]
#   --smoke       5 s per harness (the CI run; the default)
#   --minutes N   N minutes per harness
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=5 only=""
while (($#)); do
  case "$1" in
    --smoke) seconds=5 ;;
    --minutes) seconds=$(($2 * 60)); shift ;;
    --seconds) seconds=$2; shift ;;
    --only) only=$2; shift ;;
    *) echo "usage: scripts/fuzz.sh [--smoke | --minutes N | --seconds N] [--only NAME]" >&2; exit 2 ;;
  esac
  shift
done
harnesses=(fuzz_scenario fuzz_npu_config fuzz_idx fuzz_text_data fuzz_vectors fuzz_cifar)
[ -n "$only" ] && harnesses=("$only")

command -v clang++ >/dev/null || { echo "fuzz: clang++ missing (scripts/setup.sh installs clang and libfuzzer-14-dev)" >&2; exit 2; }
cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++ -DHDQSIM_FUZZ=ON >/dev/null
cmake --build build-fuzz -j 2 --target "${harnesses[@]}"

found=0
for h in "${harnesses[@]}"; do
  corpus="build-fuzz/corpus/$h" findings="build-fuzz/findings/$h"
  mkdir -p "$corpus" "$findings"
  log="build-fuzz/$h.log"
  # -max_len: the seeds are below 8 KiB; 16 KiB leaves room to grow. -timeout:
  # an input that takes 10 s is a finding (a hang). Exit status 0 or a finding.
  set +e
  TIMEFORMAT='%R %U %S'  # wall, user and system seconds of the harness
  { time nice -n 19 "build-fuzz/fuzz/$h" -max_total_time="$seconds" -max_len=16384 -timeout=10 -rss_limit_mb=2048 \
      -print_final_stats=1 -artifact_prefix="$findings/" "$corpus" "fuzz/corpus/$h" >"$log" 2>&1; } 2>"$log.time"
  rc=$?
  set -e
  read -r wall user sys <"$log.time"
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  n=$(find "$findings" -type f | wc -l)
  echo "$h: ${execs:-?} executions, ${wall} s wall, $(awk -v u="$user" -v s="$sys" 'BEGIN { print u + s }') s CPU, $n finding(s)$( ((rc)) && echo ", exit $rc, see $log")"
  if ((rc || n)); then found=1; fi
done
exit "$found"
