#!/usr/bin/env bash
# Configures and builds herd. Usage: scripts/build.sh [release|asan]
#   release -> build/       (Release, the binaries scripts/start.sh runs)
#   asan    -> build-asan/  (Debug with AddressSanitizer + UBSan)
set -euo pipefail
cd "$(dirname "$0")/.."

kind=${1:-release}
jobs=$(nproc 2>/dev/null || echo 2)
case "$kind" in
  release) dir=build; flags=(-DCMAKE_BUILD_TYPE=Release) ;;
  asan) dir=build-asan; flags=(-DCMAKE_BUILD_TYPE=Debug -DHERD_SANITIZE=ON) ;;
  *) echo "usage: $0 [release|asan]" >&2; exit 2 ;;
esac

cmake -S . -B "$dir" "${flags[@]}" >/dev/null
cmake --build "$dir" -j "$jobs"
