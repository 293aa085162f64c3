#!/usr/bin/env bash
# Sets up (Debian packages), builds Release and runs the fast suite, then an
# AddressSanitizer + UndefinedBehaviorSanitizer build of the same suite, then
# a ThreadSanitizer build of the threaded tests (label `threads`), then
# a smoke run of every libFuzzer harness (5 s each, clang, ASan + UBSan).
# Usage: scripts/test.sh [ctest label, default: fast]   (exits non-zero on any failure)
set -euo pipefail
cd "$(dirname "$0")/.."
label="${1:-fast}"
jobs="$(nproc)"

bash scripts/setup.sh --no-build

echo "== Release build, label '$label'"
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$jobs"
ctest --test-dir build -L "$label" --output-on-failure -j "$jobs"

echo "== ASan + UBSan build, label '$label'"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DHDQSIM_SANITIZE=ON >/dev/null
cmake --build build-asan -j "$jobs"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build-asan -L "$label" --output-on-failure -j "$jobs"

echo "== ThreadSanitizer build, label 'threads'"
cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DHDQSIM_TSAN=ON >/dev/null
cmake --build build-tsan -j "$jobs" --target test_gemm_paths test_hot_loop_allocations test_golden test_training
TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
  ctest --test-dir build-tsan -L threads --output-on-failure -j "$jobs"
echo "== libFuzzer smoke run of the input readers (scripts/fuzz.sh --smoke)"
bash scripts/fuzz.sh --smoke
