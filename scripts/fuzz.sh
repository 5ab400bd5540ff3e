#!/usr/bin/env bash
# Builds the libFuzzer targets (tests/fuzz/) with clang, everything under
# AddressSanitizer + UBSan, and runs each for SECONDS (default 60) from its
# seed corpus in tests/fuzz/corpus/<target>/. New inputs go to
# build-fuzz/corpus/<target>/ (the seeds are not touched), crashes to
# build-fuzz/artifacts/. Exits non-zero if a target crashes, leaks or hangs.
# Usage: scripts/fuzz.sh [SECONDS] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-60}
shift || true
[[ $seconds =~ ^[0-9]+$ ]] || { echo "usage: $0 [SECONDS] [TARGET...]" >&2; exit 2; }
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(http_session_fuzz channel_fuzz control_fuzz)

scripts/setup.sh >/dev/null
jobs=$(nproc 2>/dev/null || echo 2)
CC=clang CXX=clang++ cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DHERD_FUZZ=ON \
  -DHERD_BUILD_TESTS=OFF -DHERD_BUILD_BENCHMARKS=OFF >/dev/null
cmake --build build-fuzz -j "$jobs" --target "${targets[@]}"

mkdir -p build-fuzz/artifacts
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
for target in "${targets[@]}"; do
  corpus=build-fuzz/corpus/$target
  mkdir -p "$corpus"
  echo "== $target: ${seconds}s"
  build-fuzz/bin/"$target" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix=build-fuzz/artifacts/"$target"- \
    "$corpus" tests/fuzz/corpus/"$target" 2>build-fuzz/"$target".log ||
    { tail -60 build-fuzz/"$target".log; echo "fuzz: $target failed; see build-fuzz/$target.log" >&2; exit 1; }
  grep -E "^stat::(number_of_executed_units|peak_rss_mb)|cov: " build-fuzz/"$target".log | tail -3
done
echo "== fuzz: every target ran ${seconds}s without a finding"
