#!/usr/bin/env bash
# The multi-host test's network: one balancer namespace and HOSTS host
# namespaces, each host joined to the balancer by its own veth pair, so every
# host has its own loopback, ports and address, as separate machines would:
#
#   PREFIX-lb   lo 127.0.0.1, hI 10.200.I.1/24  (the balancer, and the clients)
#   PREFIX-hI   lo 127.0.0.1, eth0 10.200.I.2/24 (one herd)
#
# Nothing is added to the namespace this runs in, so the addresses cannot
# clash with the machine's own. Needs root (CAP_SYS_ADMIN, CAP_NET_ADMIN).
#
# Usage: netns.sh up PREFIX [HOSTS]     (HOSTS: 1..9, default 3)
#        netns.sh down PREFIX [HOSTS]   (removes what exists; stop the
#                                        processes inside first)
# Try it: scripts/multihost/netns.sh up demo && ip netns exec demo-lb ip addr
set -euo pipefail

usage() {
  echo "usage: $0 up|down PREFIX [HOSTS]" >&2
  exit 2
}

[ $# -ge 2 ] || usage
action=$1 prefix=$2 hosts=${3:-3}
[[ $prefix =~ ^[A-Za-z0-9_-]{1,40}$ ]] || { echo "$0: PREFIX must be 1-40 of [A-Za-z0-9_-]" >&2; exit 2; }
[[ $hosts =~ ^[1-9]$ ]] || { echo "$0: HOSTS must be 1..9" >&2; exit 2; }
balancer=$prefix-lb

up() {
  ip netns add "$balancer"
  ip -n "$balancer" link set lo up
  for i in $(seq 1 "$hosts"); do
    local host=$prefix-h$i
    ip netns add "$host"
    ip -n "$host" link set lo up
    # Both ends are created inside their namespaces: no name or address ever
    # appears in the namespace this script runs in.
    ip -n "$balancer" link add "h$i" type veth peer name eth0 netns "$host"
    ip -n "$balancer" addr add "10.200.$i.1/24" dev "h$i"
    ip -n "$host" addr add "10.200.$i.2/24" dev eth0
    ip -n "$balancer" link set "h$i" up
    ip -n "$host" link set eth0 up
  done
}

down() {
  local status=0
  for namespace in "$balancer" $(seq -f "$prefix-h%g" 1 "$hosts"); do
    if ip netns list | grep -qx "$namespace\( (id: [0-9]*)\)\?"; then
      ip netns del "$namespace" || status=1
    fi
  done
  return $status
}

case $action in
  up) up ;;
  down) down ;;
  *) usage ;;
esac
