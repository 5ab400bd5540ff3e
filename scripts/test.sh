#!/usr/bin/env bash
# Installs what is missing, builds, and runs the whole suite twice: a Release
# build, then a Debug build under AddressSanitizer + UBSan; then each libFuzzer
# target for a few seconds. Failing tests print their output. Exits non-zero
# if any of it fails.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh

run_suite() {
  local kind=$1 dir=$2
  echo "== $kind: build"
  scripts/build.sh "$kind"
  echo "== $kind: ctest"
  ctest --test-dir "$dir" --output-on-failure --timeout 180
}

# Leak checking is on by default with ASan on Linux; make failures loud.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:strict_string_checks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

run_suite release build
run_suite asan build-asan
# A short run of every libFuzzer target (tests/fuzz/): a smoke test that the
# targets build and their seed corpora pass; scripts/fuzz.sh 600 for a real run.
echo "== fuzz: smoke"
scripts/fuzz.sh "${HERD_FUZZ_SECONDS:-10}"
echo "== all suites passed"
