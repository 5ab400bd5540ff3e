#!/usr/bin/env bash
# bench/run.sh -- herd against nginx and Node's cluster + Express, on 127.0.0.1, under wrk.
#
#   bench/run.sh                   install what is missing, build herd (Release), run, report
#   bench/run.sh --report STAMP    rebuild results/STAMP.md and .png from results/STAMP.tsv
#   bench/run.sh --help
#
# For each round, each worker count N and each server in turn (A B C A B C ...,
# the order rotated every round), the server is started on 127.0.0.1 with N
# workers, and for each scenario wrk runs WARMUP seconds unrecorded, then
# DURATION seconds measured:
#   keepalive  wrk -t1 -c64 -d8s --latency http://127.0.0.1:PORT/
#   close      the same with -H 'Connection: close' (a new connection per request)
# while this script reads the server's processes in /proc (CPU, RSS). The
# server is then stopped by its PID. Results (medians over the rounds):
#   bench/results/STAMP.md   the report (also printed): table, targets, chart
#   bench/results/STAMP.tsv  one row per measured run
#   bench/results/STAMP.png  req/s and requests per CPU-second, per scenario and server
#   bench/results/raw/STAMP/ wrk outputs, server logs (git-ignored)
#
# Knobs (environment variables; defaults sized for a 2-core machine, ~10 min):
#   DURATION=8        seconds per measured run (1..60)
#   WARMUP=2          seconds of unrecorded load before each measured run (0..30)
#   ROUNDS=3          rounds; every figure is the median over them (1..15)
#   COOLDOWN=1        seconds of pause before each measured run (0..30)
#   CONNS=64 THREADS=1              wrk -c / -t
#   WORKERS="1 2"                   worker counts (every server gets the same N)
#   SCENARIOS="keepalive close"     subset/order of the scenarios
#   SERVERS="herd herd-none nginx node-cluster"  subset/order of the servers
#                     (herd-none: herd --schedule none, the workers accept)
#   PORT_BASE=18480   herd listens on PORT_BASE, nginx on +1, node-cluster on +2,
#                     herd-none on +3
#   HERD_BIN=DIR      use herd, herd-worker and herdctl from DIR and do not build;
#                     default: scripts/build.sh release, then build/bin
#   HERD_ARGS="..."   extra arguments for herd (e.g. "--handoff-window 8")
#   INSTALL=1         0: install nothing (apt, npm), only check that the tools are there
#   RESULTS_DIR=bench/results
#
# Safety: traffic goes to 127.0.0.1 only; every wait and run is bounded; only
# processes this script started are signalled, by PID (checked against their
# start time), never by name; Ctrl-C / SIGTERM stops them and removes the
# temporary directory that holds nginx's and herd's runtime files.
set -u -o pipefail
export LC_ALL=C

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(cd "$BENCH_DIR/.." && pwd)

DURATION=${DURATION:-8}
WARMUP=${WARMUP:-2}
ROUNDS=${ROUNDS:-3}
COOLDOWN=${COOLDOWN:-1}
CONNS=${CONNS:-64}
THREADS=${THREADS:-1}
WORKERS=${WORKERS:-"1 2"}
SCENARIOS=${SCENARIOS:-"keepalive close"}
SERVERS=${SERVERS:-"herd herd-none nginx node-cluster"}
PORT_BASE=${PORT_BASE:-18480}
HERD_BIN=${HERD_BIN:-}
HERD_ARGS=${HERD_ARGS:-}
INSTALL=${INSTALL:-1}
RESULTS_DIR=${RESULTS_DIR:-$BENCH_DIR/results}
HOST=127.0.0.1

# Progress goes to the stderr this script started with, also from a trap that
# runs while a command's output is redirected to a file.
exec {LOG_FD}>&2
log() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*" >&"$LOG_FD"; }
die() { echo "bench/run.sh: $*" >&2; exit 2; }
usage() { sed -n '2,/^set -u/{/^set -u/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"; }

# ------------------------------------------------------------ checks ----
isint() { [[ $1 =~ ^[0-9]+$ ]]; }
inrange() { isint "$1" && (($1 >= $2 && $1 <= $3)); }  # $1 an integer in [$2, $3]
check_knobs() {
  inrange "$DURATION" 1 60 || die "DURATION must be 1..60 (seconds)"
  inrange "$WARMUP" 0 30 || die "WARMUP must be 0..30 (seconds)"
  inrange "$ROUNDS" 1 15 || die "ROUNDS must be 1..15"
  inrange "$COOLDOWN" 0 30 || die "COOLDOWN must be 0..30 (seconds)"
  inrange "$CONNS" 1 10000 || die "CONNS must be 1..10000"
  inrange "$THREADS" 1 "$CONNS" || die "THREADS must be 1..CONNS"
  inrange "$PORT_BASE" 1024 65532 || die "PORT_BASE must be 1024..65532"
  local w s
  for w in $WORKERS; do inrange "$w" 1 64 || die "WORKERS: numbers 1..64 (got '$w')"; done
  for s in $SCENARIOS; do [[ $s == keepalive || $s == close ]] || die "SCENARIOS: keepalive, close (got '$s')"; done
  for s in $SERVERS; do server_port "$s" >/dev/null || die "SERVERS: herd, herd-none, nginx, node-cluster (got '$s')"; done
  [[ -n ${WORKERS// /} && -n ${SCENARIOS// /} && -n ${SERVERS// /} ]] || die "WORKERS, SCENARIOS and SERVERS must not be empty"
}

# ----------------------------------------------------------- install ----
as_root() {
  if ((EUID == 0)); then "$@"
  elif command -v sudo >/dev/null; then sudo "$@"
  else die "need root (or sudo) to run: $*"
  fi
}

install_deps() {
  local -a pkgs=()
  command -v wrk >/dev/null || pkgs+=(wrk)
  command -v nginx >/dev/null || pkgs+=(nginx-light)
  command -v gnuplot >/dev/null || pkgs+=(gnuplot-nox)
  command -v curl >/dev/null || pkgs+=(curl)
  command -v ps >/dev/null || pkgs+=(procps)
  command -v node >/dev/null || pkgs+=(nodejs)
  command -v npm >/dev/null || pkgs+=(npm)
  if ((${#pkgs[@]})); then
    if ((INSTALL)); then
      log "apt-get install ${pkgs[*]}"
      # RUNLEVEL=1: Debian's nginx package would otherwise start its own service.
      as_root apt-get update -qq || die "apt-get update failed"
      as_root env RUNLEVEL=1 DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends "${pkgs[@]}" || die "apt-get install failed"
    else
      die "missing: ${pkgs[*]} (INSTALL=0)"
    fi
  fi
  # Express, pinned by bench/node/package-lock.json; npm ci again only if the lockfile changed.
  local nd=$BENCH_DIR/node
  if [[ ! -f $nd/node_modules/.package-lock.json || $nd/package-lock.json -nt $nd/node_modules/.package-lock.json ]]; then
    ((INSTALL)) || die "bench/node/node_modules is missing or stale (INSTALL=0)"
    log "npm ci in bench/node"
    (cd "$nd" && npm ci --no-audit --no-fund --loglevel=error) || die "npm ci failed"
  fi
}

build_herd() {
  if [[ -n $HERD_BIN ]]; then
    log "herd binaries from HERD_BIN=$HERD_BIN (not building)"
  else
    if ((INSTALL)); then "$REPO_DIR/scripts/setup.sh" >&2 || die "scripts/setup.sh failed"; fi
    log "building herd: scripts/build.sh release"
    "$REPO_DIR/scripts/build.sh" release >&2 || die "scripts/build.sh release failed"
    HERD_BIN=$REPO_DIR/build/bin
  fi
  HERD_BIN=$(cd "$HERD_BIN" 2>/dev/null && pwd) || die "HERD_BIN: no such directory"
  local b
  for b in herd herd-worker herdctl; do [[ -x $HERD_BIN/$b ]] || die "$HERD_BIN/$b is missing"; done
}

# ------------------------------------------------------- processes ----
# Every PID of the process tree rooted at $1, root first.
tree_pids() {
  ps -e -o pid=,ppid= | awk -v r="$1" '
    { kids[$2] = kids[$2] " " $1; seen[$1] = 1 }
    END { if (!(r in seen)) exit
          q[1] = r; h = 1; t = 1
          while (h <= t) { p = q[h++]; print p; n = split(kids[p], a, " ")
                           for (i = 1; i <= n; i++) q[++t] = a[i] } }'
}

# "state starttime ticks" of PID $1 (/proc/PID/stat fields 3, 22, 14+15).
pid_stat() {
  local line
  local -a f
  { read -r line < "/proc/$1/stat"; } 2>/dev/null || return 1
  line=${line##*) }
  read -ra f <<< "$line"
  echo "${f[0]} ${f[19]} $((f[11] + f[12]))"
}

# "pid starttime ticks" of every process of the tree rooted at $1.
tree_ticks() {
  local p s st start ticks
  for p in $(tree_pids "$1"); do
    s=$(pid_stat "$p") || continue
    read -r st start ticks <<< "$s"
    echo "$p $start $ticks"
  done
}

# PID:starttime of each live process of the tree rooted at $1.
tree_members() {
  local p s st start ticks
  for p in $(tree_pids "$1"); do
    s=$(pid_stat "$p") || continue
    read -r st start ticks <<< "$s"
    [[ $st == Z ]] || echo "$p:$start"
  done
}

# True while PID:starttime $1 is still that process (not reused, not a zombie).
same_alive() {
  local s st start ticks
  s=$(pid_stat "${1%%:*}") || return 1
  read -r st start ticks <<< "$s"
  [[ $st != Z && $start == "${1#*:}" ]]
}

# Background sampler: every 0.25 s, the VmRSS of each process of the tree rooted
# at $1 (re-listed every 2 s); until file $3 exists or $4 samples. Writes
# "pid peakKiB" lines to $2.
rss_sampler() {
  local root=$1 out=$2 stop=$3 max=$4 i=0 p k v _
  local -a pids=()
  local -A peak=()
  trap 'exit 0' TERM
  while ((i < max)) && [[ ! -e $stop ]]; do
    ((i % 8 == 0)) && mapfile -t pids < <(tree_pids "$root")
    for p in "${pids[@]}"; do
      {
        while read -r k v _; do
          if [[ $k == VmRSS: ]]; then ((v > ${peak[$p]:-0})) && peak[$p]=$v; break; fi
        done < "/proc/$p/status"
      } 2>/dev/null
    done
    i=$((i + 1))
    sleep 0.25
  done
  for p in "${!peak[@]}"; do echo "$p ${peak[$p]}"; done > "$out"
}

# ---------------------------------------------------------- servers ----
server_port() {
  case $1 in
    herd) echo "$PORT_BASE" ;;
    nginx) echo $((PORT_BASE + 1)) ;;
    node-cluster) echo $((PORT_BASE + 2)) ;;
    herd-none) echo $((PORT_BASE + 3)) ;;
    *) return 1 ;;
  esac
}

port_in_use() { (exec 3<> "/dev/tcp/$HOST/$1") 2>/dev/null; }

SRV_PID=""       # root process of the running server
SRV_PORT=""
SRV_MEMBERS=()   # PID:starttime of its processes, refreshed once it is up
BG_PID=""        # wrk or sleep being waited for
SAMPLER_PID=""
RUN_DIR=""

# Runs "$@" in the background and waits for it, so that a signal to this script
# interrupts the wait at once (and the trap can stop it by its PID).
bg_run() {
  "$@" &
  BG_PID=$!
  wait "$BG_PID"
  local rc=$?
  BG_PID=""
  return "$rc"
}

# $1=server $2=N $3=log file. Sets SRV_PID; non-zero if it does not come up.
start_server() {
  local srv=$1 n=$2 logf=$3 port i code ready
  port=$(server_port "$srv")
  SRV_PORT=$port
  if port_in_use "$port"; then
    log "port $port is in use by something else: not starting $srv (set PORT_BASE)"
    return 3
  fi
  local -a cmd
  case $srv in
    herd | herd-none)
      cmd=("$HERD_BIN/herd" --host "$HOST" --port "$port" --workers "$n"
        --control "$RUN_DIR/herd.sock")
      [[ $srv == herd-none ]] && cmd+=(--schedule none)
      # shellcheck disable=SC2206  # HERD_ARGS is split into words on purpose
      cmd+=($HERD_ARGS) ;;
    nginx)
      mkdir -p "$RUN_DIR/nginx"
      sed -e "s|@RUNDIR@|$RUN_DIR/nginx|g" -e "s|@PORT@|$port|g" \
        "$BENCH_DIR/nginx/nginx.conf.in" > "$RUN_DIR/nginx/nginx.conf"
      cmd=(nginx -p "$RUN_DIR/nginx/" -e "$RUN_DIR/nginx/error.log" -c "$RUN_DIR/nginx/nginx.conf"
        -g "daemon off; master_process on; worker_processes $n;") ;;
    node-cluster)
      cmd=(env WORKERS="$n" PORT="$port" HOST="$HOST" node "$BENCH_DIR/node/cluster-express.js") ;;
  esac
  echo "+ ${cmd[*]}" > "$logf"
  "${cmd[@]}" >> "$logf" 2>&1 < /dev/null &
  SRV_PID=$!
  # Up when GET / answers 200 "Hello World!" and all N workers exist (for herd:
  # are ready); at most 20 s.
  for ((i = 0; i < 200; i++)); do
    if ! kill -0 "$SRV_PID" 2>/dev/null; then
      log "$srv exited while starting (see $logf)"
      wait "$SRV_PID" 2>/dev/null
      SRV_PID=""
      return 4
    fi
    code=$(curl -s -m 1 -o "$RUN_DIR/body" -w '%{http_code}' "http://$HOST:$port/" 2>/dev/null)
    if [[ $code == 200 && $(< "$RUN_DIR/body") == "Hello World!" ]] &&
      (($(tree_pids "$SRV_PID" | wc -l) >= n + 1)); then
      ready=1
      if [[ $srv == herd || $srv == herd-none ]]; then
        ready=$("$HERD_BIN/herdctl" -s "$RUN_DIR/herd.sock" status --json 2>/dev/null |
          grep -o '"state":"ready"' | wc -l)
        ((ready >= n)) && ready=1 || ready=0
      fi
      if ((ready)); then
        mapfile -t SRV_MEMBERS < <(tree_members "$SRV_PID")
        return 0
      fi
    fi
    sleep 0.1
  done
  log "$srv did not come up on port $port within 20 s (last status '$code'; see $logf)"
  stop_server
  return 5
}

# SIGTERM to the root PID; the whole tree gets 5 s to exit, then leftovers get
# SIGTERM and, 1 s later, SIGKILL, each by PID and only if it is still the same
# process. Then waits (bounded) for the port to be free.
stop_server() {
  [[ -n $SRV_PID ]] || return 0
  local i m any=0
  local -a members
  mapfile -t members < <(tree_members "$SRV_PID")
  members+=("${SRV_MEMBERS[@]}")
  kill -TERM "$SRV_PID" 2>/dev/null
  for ((i = 0; i < 50; i++)); do
    any=0
    for m in "${members[@]}"; do same_alive "$m" && any=1 && break; done
    ((any)) || break
    sleep 0.1
  done
  if ((any)); then
    for m in "${members[@]}"; do same_alive "$m" && kill -TERM "${m%%:*}" 2>/dev/null; done
    sleep 1
    for m in "${members[@]}"; do
      if same_alive "$m"; then
        log "SIGKILL to leftover process ${m%%:*}"
        kill -KILL "${m%%:*}" 2>/dev/null
      fi
    done
  fi
  wait "$SRV_PID" 2>/dev/null
  SRV_PID=""
  SRV_MEMBERS=()
  for ((i = 0; i < 30; i++)); do port_in_use "$SRV_PORT" || break; sleep 0.1; done
}

cleanup() {
  trap - INT TERM
  [[ -n $BG_PID ]] && kill -TERM "$BG_PID" 2>/dev/null && wait "$BG_PID" 2>/dev/null
  [[ -n $SAMPLER_PID ]] && kill -TERM "$SAMPLER_PID" 2>/dev/null && wait "$SAMPLER_PID" 2>/dev/null
  BG_PID="" SAMPLER_PID=""
  stop_server
  [[ -n $RUN_DIR && -d $RUN_DIR ]] && rm -rf "$RUN_DIR"
  RUN_DIR=""
}

# ------------------------------------------------------------- runs ----
wrk_args() {  # $1=scenario $2=port $3=seconds
  local -a a=(-t"$THREADS" -c"$CONNS" -d"${3}s" --latency)
  [[ $1 == close ]] && a+=(-H "Connection: close")
  printf '%s\n' "${a[@]}" "http://$HOST:$2/"
}

# Prints: rps p50_ms p99_ms requests non2xx connect read write timeout (NA if absent).
parse_wrk() {
  awk '
    function ms(v,  num, unit) { num = v + 0; unit = v; sub(/^[0-9.]+/, "", unit)
      if (unit == "us") return num / 1000; if (unit == "ms") return num
      if (unit == "s") return num * 1000; if (unit == "m") return num * 60000; return num }
    /Requests\/sec:/ { rps = $2 }
    /^ +50%/ { p50 = sprintf("%.3f", ms($2)) }
    /^ +99%/ { p99 = sprintf("%.3f", ms($2)) }
    / requests in / { reqs = $1 }
    /Socket errors:/ { gsub(",", ""); c = $4; r = $6; w = $8; t = $10 }
    /Non-2xx or 3xx responses:/ { non = $5 }
    END { if (rps == "") rps = "NA"; if (p50 == "") p50 = "NA"; if (p99 == "") p99 = "NA"; if (reqs == "") reqs = "NA"
          printf "%s %s %s %s %d %d %d %d %d\n", rps, p50, p99, reqs, non, c, r, w, t }' "$1"
}

herd_connections() {  # connections the master accepted since it started, or NA
  local v
  v=$("$HERD_BIN/herdctl" -s "$RUN_DIR/herd.sock" status --json 2>/dev/null |
    grep -o '"connections_total":[0-9]*' | head -n 1)
  [[ -n $v ]] && echo "${v#*:}" || echo NA
}

# User+sys seconds in the output of bash's `times` (file $1): its second line,
# the reaped children of this shell. `times` must run in this shell, not in a
# subshell (a fork starts with zero children times).
children_cpu() {
  awk 'NR == 2 { s = 0
    for (i = 1; i <= 2; i++) { m = $i; sub(/m.*/, "", m); x = $i; sub(/^[0-9]+m/, "", x); sub(/s$/, "", x); s += m * 60 + x }
    printf "%.3f", s }' "$1"
}

# $1=round $2=server $3=scenario $4=N: one measured run, one TSV row.
measure() {
  local round=$1 srv=$2 sc=$3 n=$4 port base tw
  port=$(server_port "$srv")
  base=$RAW/r$round.n$n.$srv.$sc
  local -a args
  mapfile -t args < <(wrk_args "$sc" "$port" "$DURATION")
  tw=$(awk '$1 == "TCP:" { for (i = 2; i < NF; i++) if ($i == "tw") print $(i + 1) }' /proc/net/sockstat)

  local conns0=NA conns1=NA stop=$RUN_DIR/sampler.stop
  rm -f "$stop" "$base.rss"
  rss_sampler "$SRV_PID" "$base.rss" "$stop" $(((DURATION + 20) * 4)) &
  SAMPLER_PID=$!
  [[ $srv == herd ]] && conns0=$(herd_connections)
  tree_ticks "$SRV_PID" > "$base.ticks0"
  local c0 c1 s0 s1
  # Nothing else may be reaped by this shell between the two `times`: their
  # difference is wrk's CPU.
  local -a m0 m1
  times > "$RUN_DIR/times0"
  read -ra m0 < /proc/stat
  s0=$EPOCHREALTIME
  bg_run timeout -k 2 $((DURATION + 15)) wrk "${args[@]}" > "$base.wrk.txt" 2>&1
  s1=$EPOCHREALTIME
  read -ra m1 < /proc/stat
  times > "$RUN_DIR/times1"
  tree_ticks "$SRV_PID" > "$base.ticks1"
  [[ $srv == herd ]] && conns1=$(herd_connections)
  touch "$stop"
  wait "$SAMPLER_PID" 2>/dev/null
  SAMPLER_PID=""

  c0=$(children_cpu "$RUN_DIR/times0")
  c1=$(children_cpu "$RUN_DIR/times1")
  local -a w
  read -ra w <<< "$(parse_wrk "$base.wrk.txt")"
  # CPU over the run, per process: ticks at the end minus ticks at the start
  # (a process that started during the run counts from 0).
  local cpu
  cpu=$(awk -v root="$SRV_PID" -v hz="$(getconf CLK_TCK)" '
      FILENAME == ARGV[1] { t0[$1 " " $2] = $3; next }
      { d = $3 - (($1 " " $2) in t0 ? t0[$1 " " $2] : 0); all += d; if ($1 == root) m += d; procs++ }
      END { printf "%.3f %.3f %d", all / hz, m / hz, procs }' "$base.ticks0" "$base.ticks1")
  local -a cp
  read -ra cp <<< "$cpu"
  local rss
  rss=$(awk -v root="$SRV_PID" '$1 == root { m = $2; next } $2 > w { w = $2 }
      END { printf "%d %d", m, w }' "$base.rss" 2>/dev/null) || rss="0 0"
  local conns=NA
  [[ $conns0 != NA && $conns1 != NA ]] && conns=$((conns1 - conns0))
  # Fallback if herdctl gave no count: one connection per request with Connection: close.
  [[ $srv == herd && $conns == NA && $sc == close ]] && conns=${w[3]}

  local row
  row=$(awk -v OFS='\t' -v round="$round" -v srv="$srv" -v sc="$sc" -v n="$n" \
    -v rps="${w[0]}" -v p50="${w[1]}" -v p99="${w[2]}" -v reqs="${w[3]}" \
    -v non="${w[4]}" -v ec="${w[5]}" -v er="${w[6]}" -v ew="${w[7]}" -v et="${w[8]}" \
    -v s0="$s0" -v s1="$s1" -v c0="$c0" -v c1="$c1" -v cpu="${cp[0]}" -v mcpu="${cp[1]}" -v procs="${cp[2]}" \
    -v conns="$conns" -v rss="$rss" -v tw="$tw" -v hz="$(getconf CLK_TCK)" \
    -v m0="${m0[*]}" -v m1="${m1[*]}" '
    BEGIN { el = s1 - s0; split(rss, r, " "); split(m0, a, " "); split(m1, b, " ")
      # /proc/stat "cpu" line: user nice system idle iowait irq softirq steal
      busy = (b[2] + b[3] + b[4] + b[7] + b[9]) - (a[2] + a[3] + a[4] + a[7] + a[9])
      si = b[8] - a[8]
      busy = busy / hz / el; si = si / hz / el
      # the rest: other processes, and softirq work not charged to a process
      # (softirq work run in the context of a process is charged to it)
      other = busy + si - cpu / el - (c1 - c0) / el
      rpc = (reqs != "NA" && cpu > 0) ? sprintf("%.0f", reqs / cpu) : "NA"
      upc = (srv == "herd" && conns != "NA" && conns >= 1000) ? sprintf("%.2f", mcpu * 1e6 / conns) : "NA"
      print round, srv, sc, n, rps, p50, p99, reqs, non, ec, er, ew, et, sprintf("%.3f", el),
        cpu, mcpu, sprintf("%.3f", cpu / el), sprintf("%.3f", mcpu / el), rpc,
        sprintf("%.3f", (c1 - c0) / el), conns, upc, r[1] + 0, r[2] + 0, procs, tw,
        sprintf("%.3f", busy + si), sprintf("%.3f", si), sprintf("%.3f", other) }')
  echo "$row" >> "$TSV"
  read -ra w <<< "$row"
  log "  r$round N=$n $srv $sc: ${w[4]} req/s, p50 ${w[5]} ms, p99 ${w[6]} ms, errors $((w[8] + w[9] + w[10] + w[11] + w[12])), cpu ${w[16]} cores (master ${w[17]}), ${w[18]} req/cpu-s, wrk ${w[19]} cores, conns ${w[20]} (${w[21]} us/conn), rss master $((w[22] / 1024)) / worker $((w[23] / 1024)) MiB, machine ${w[26]} cores (softirq ${w[27]}, other ${w[28]})"
}

# ----------------------------------------------------------- report ----
versions() {
  local rev dirty="" express
  rev=$(git -C "$REPO_DIR" rev-parse --short HEAD 2>/dev/null) || rev=unknown
  # diff-index reads the index without refreshing (or writing) it.
  git -C "$REPO_DIR" diff-index --quiet HEAD -- 2>/dev/null || dirty=" + uncommitted changes"
  express=$(node -p "require('$BENCH_DIR/node/node_modules/express/package.json').version" 2>/dev/null)
  echo "herd $("$HERD_BIN/herd" --version 2>/dev/null | head -n 1 | awk '{ print $NF }') (git $rev$dirty, binaries in \`$HERD_BIN\`)," \
    "$(nginx -v 2>&1 | sed 's/^nginx version: //'), node $(node -v 2>/dev/null) + express $express," \
    "wrk $(wrk -v 2>&1 | awk 'NR == 1 { print $2 }')"
}

# Writes $RAW/meta (what the report states besides the numbers).
write_meta() {
  local line="" v
  for v in DURATION WARMUP ROUNDS COOLDOWN CONNS THREADS WORKERS SCENARIOS SERVERS HERD_ARGS; do
    [[ $v == HERD_ARGS && -z $HERD_ARGS ]] && continue
    if [[ ${!v} =~ [^A-Za-z0-9._/-] || -z ${!v} ]]; then line+="$v=\"${!v}\" "; else line+="$v=${!v} "; fi
  done
  {
    echo "command=${line}${HERD_BIN_SET:+HERD_BIN=$HERD_BIN }bench/run.sh"
    echo "machine=nproc $(nproc), $(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo), kernel $(uname -r), $(sed -n 's/^PRETTY_NAME=//p' /etc/os-release 2>/dev/null | tr -d '"')"
    echo "versions=$(versions)"
    echo "load=\`wrk -t$THREADS -c$CONNS -d${DURATION}s --latency http://127.0.0.1:PORT/\`; connection per request adds \`-H 'Connection: close'\`"
    echo "servers=$SERVERS"
    echo "workers=$WORKERS"
    echo "scenarios=$SCENARIOS"
    echo "rounds=$ROUNDS"
    echo "conns=$CONNS"
    echo "warmup=$WARMUP"
    echo "cooldown=$COOLDOWN"
  } > "$RAW/meta"
}

meta() { sed -n "s/^$1=//p" "$RAW/meta"; }

report() {  # $1=stamp; needs $RESULTS_DIR/$1.tsv and raw/$1/meta
  local stamp=$1 md=$RESULTS_DIR/$1.md png=$RESULTS_DIR/$1.png dat=$RESULTS_DIR/raw/$1/chart.dat
  TSV=$RESULTS_DIR/$stamp.tsv RAW=$RESULTS_DIR/raw/$stamp
  [[ -f $TSV && -f $RAW/meta ]] || die "no $TSV or $RAW/meta"
  local awkv=(-v servers="$(meta servers)" -v workers="$(meta workers)" -v scenarios="$(meta scenarios)"
    -v rounds="$(meta rounds)" -v conns="$(meta conns)")
  {
    echo "# herd benchmark $stamp"
    echo
    echo "- command: \`$(meta command)\`"
    echo "- load: $(meta load); every server is started with the same worker count N, each measured run follows $(meta warmup) s of unrecorded warm-up (same options) and $(meta cooldown) s of pause; servers interleaved (each round runs every server in turn, the order rotated per round), figures are medians over $(meta rounds) round(s)"
    echo "- machine: $(meta machine)"
    echo "- versions: $(meta versions)"
    [[ -n $(meta walltime) ]] && echo "- wall time: $(meta walltime) s; CPU used by other work just before the start: $(meta busy_before) cores"
    echo "- raw rows: \`$stamp.tsv\`; wrk outputs and server logs: \`raw/$stamp/\` (git-ignored)"
    echo
    awk -F'\t' "${awkv[@]}" -v part=table -f "$BENCH_DIR/report.awk" "$TSV"
    echo
    cat <<'EOF'
**req/s**: wrk's Requests/sec, median (min–max over the rounds). **×nginx / ×node**: this row's median ÷ that of nginx / node-cluster in the same scenario and N.
**p50 / p99**: wrk's latency percentiles (request sent to response read). **errors**: wrk's socket errors (connect + read + write + timeout) + non-2xx responses, summed over the rounds.
**CPU cores**: utime + stime of every process of the server (master + workers), from `/proc/PID/stat`, over the run ÷ its wall time; in brackets the master's (nginx master, node primary, herd master) alone.
**req/CPU-s**: requests ÷ CPU-seconds of the server's processes (kernel work done in softirq on wrk's or an idle core is not in it).
**peak RSS**: the largest VmRSS seen for the master and for the largest worker (`/proc/PID/status`, sampled every 0.25 s during the runs; max over the rounds).
**master µs/conn**: herd master's CPU time ÷ connections it accepted during the run (`connections_total` from `herdctl status --json`); shown when ≥ 1000 connections were made (with keep-alive only CONNS are, so it is n/a there).
**wrk cores**: CPU used by wrk; ≈ THREADS means wrk is saturated and req/s is the load generator's ceiling, not the server's.
EOF
    echo
    awk -F'\t' "${awkv[@]}" -v part=targets -f "$BENCH_DIR/report.awk" "$TSV"
    local notes
    notes=$(awk -F'\t' "${awkv[@]}" -v part=notes -f "$BENCH_DIR/report.awk" "$TSV"
      [[ -f $RAW/notes ]] && sed 's/^/- /' "$RAW/notes")
    [[ -n $notes ]] && printf '\nNotes:\n%s\n' "$notes"
  } > "$md"
  awk -F'\t' "${awkv[@]}" -v part=chart -f "$BENCH_DIR/report.awk" "$TSV" > "$dat"
  local made=""
  rm -f "$png"
  if command -v gnuplot >/dev/null; then
    local term=png
    gnuplot -e 'set terminal' 2>&1 | grep -q pngcairo && term=pngcairo
    if gnuplot -e "datafile='$dat'; outfile='$png'; names='$(meta servers)'; term='$term'; subtitle='$(meta load | sed "s/\`//g; s/'//g")'" \
      "$BENCH_DIR/chart.gp" 2> "$RAW/gnuplot.log"; then
      printf '\n![req/s and req per CPU-second](%s)\n' "$stamp.png" >> "$md"
      made=", $png"
    else
      log "gnuplot failed (see $RAW/gnuplot.log)"
    fi
  else
    log "gnuplot not installed: no chart"
  fi
  log "wrote $md, $TSV$made"
  cat "$md"
}

# ------------------------------------------------------------- main ----
case ${1:-} in
  -h | --help) usage; exit 0 ;;
  --report)
    [[ -n ${2:-} ]] || die "usage: bench/run.sh --report STAMP"
    report "$2"; exit 0 ;;
  "") ;;
  *) die "unknown argument '$1' (try --help)" ;;
esac

HERD_BIN_SET=$HERD_BIN
check_knobs
install_deps
build_herd
for t in wrk nginx node curl ps awk sed timeout; do command -v "$t" >/dev/null || die "missing tool: $t"; done

STAMP=$(date +%Y%m%d-%H%M%S)
RAW=$RESULTS_DIR/raw/$STAMP
TSV=$RESULTS_DIR/$STAMP.tsv
mkdir -p "$RAW" || die "cannot create $RAW"
RUN_DIR=$(mktemp -d "${TMPDIR:-/tmp}/herd-bench.XXXXXX") || die "mktemp failed"
trap cleanup EXIT
trap 'log "interrupted: stopping what was started"; cleanup; exit 130' INT
trap 'log "terminated: stopping what was started"; cleanup; exit 143' TERM

# Other work on the machine skews every figure: say so before and in the report.
read -ra m0 < /proc/stat
sleep 1
read -ra m1 < /proc/stat
busy_before=$(awk -v a="${m0[*]}" -v b="${m1[*]}" -v hz="$(getconf CLK_TCK)" 'BEGIN {
  split(a, x, " "); split(b, y, " "); s = 0
  for (i = 2; i <= 9; i++) if (i != 5 && i != 6) s += y[i] - x[i]
  printf "%.2f", s / hz }')
if awk -v b="$busy_before" 'BEGIN { exit !(b > 0.2) }'; then
  log "WARNING: the machine is busy ($busy_before cores used by other work): results will be low and noisy"
fi
write_meta
echo "busy_before=$busy_before" >> "$RAW/meta"
printf '%s\n' "round	server	scenario	workers	rps	p50_ms	p99_ms	requests	non2xx	err_connect	err_read	err_write	err_timeout	elapsed_s	cpu_s	master_cpu_s	cores	master_cores	req_per_cpu_s	wrk_cores	conns	master_us_per_conn	rss_master_kib	rss_worker_max_kib	procs	tw_before	machine_cores	softirq_cores	other_cores" > "$TSV"

read -ra server_list <<< "$SERVERS"
nsrv=${#server_list[@]}
runs=0
for n in $WORKERS; do for sc in $SCENARIOS; do runs=$((runs + nsrv)); done; done
log "$((runs * ROUNDS)) runs of ${DURATION}s (+${WARMUP}s warm-up, ${COOLDOWN}s pause): about $(((runs * ROUNDS * (DURATION + WARMUP + COOLDOWN + 1) + 59) / 60)) min"
t_start=$EPOCHREALTIME
for ((round = 1; round <= ROUNDS; round++)); do
  for n in $WORKERS; do
    for ((k = 0; k < nsrv; k++)); do
      srv=${server_list[$(((k + round - 1) % nsrv))]}
      log "round $round/$ROUNDS, N=$n: $srv"
      if ! start_server "$srv" "$n" "$RAW/r$round.n$n.$srv.log"; then
        echo "r$round N=$n $srv: did not start (raw/$STAMP/r$round.n$n.$srv.log)" >> "$RAW/notes"
        continue
      fi
      for sc in $SCENARIOS; do
        if ((WARMUP > 0)); then
          mapfile -t args < <(wrk_args "$sc" "$(server_port "$srv")" "$WARMUP")
          bg_run timeout -k 2 $((WARMUP + 15)) wrk "${args[@]}" > "$RAW/r$round.n$n.$srv.$sc.warmup.txt" 2>&1
        fi
        ((COOLDOWN > 0)) && bg_run sleep "$COOLDOWN"
        measure "$round" "$srv" "$sc" "$n"
        if ! kill -0 "$SRV_PID" 2>/dev/null; then
          log "$srv died during $sc"
          echo "r$round N=$n $srv: died during $sc" >> "$RAW/notes"
          break
        fi
      done
      stop_server
    done
  done
done
echo "walltime=$(awk -v a="$t_start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.0f", b - a }')" >> "$RAW/meta"
cleanup
trap - EXIT INT TERM
report "$STAMP"
