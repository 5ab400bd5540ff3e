#!/usr/bin/env bash
# Installs the Debian packages herd needs to build and test, only those that
# are missing. Idempotent and non-interactive.
set -euo pipefail

packages=(
  g++ cmake make pkg-config
  libevent-dev nlohmann-json3-dev libspdlog-dev libboost-dev libcli11-dev
  libgtest-dev libbenchmark-dev python3
  libsystemd-dev  # sd_notify and socket activation; the herd binary only
  prometheus  # promtool, to check /metrics in the tests
  tmux  # the e2e tests run herdctl top in it and read its screen
  python3-yaml  # tests/deploy reads the Kubernetes manifests
  iproute2 haproxy nginx  # the multi-host test: network namespaces and two balancers
  clang libclang-rt-14-dev  # libFuzzer, for scripts/fuzz.sh
)

missing=()
for package in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${db:Status-Status}' "$package" 2>/dev/null || true)
  [ "$status" = "installed" ] || missing+=("$package")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all build dependencies are installed"
  exit 0
fi

as_root=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "setup: need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
  as_root=(sudo)
fi

echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" apt-get update -qq
"${as_root[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
