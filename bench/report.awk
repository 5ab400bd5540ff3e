# bench/report.awk -- turns the TSV rows of bench/run.sh into the report's parts.
#   awk -F'\t' -v part=table|targets|notes|chart -v servers="herd nginx node-cluster" \
#       -v workers="1 2" -v scenarios="keepalive close" -v rounds=3 -f report.awk STAMP.tsv
# Every figure is the median over the rounds (errors: the sum; RSS: the max).
# Ratios are ratios of medians, so they can be checked from the table; the
# targets part also shows the range of the per-round ratios (the servers run
# interleaved, so round r of herd and of nginx ran minutes apart at most).

function median(key,    n, i, j, t, a) {
  n = cnt[key]
  if (n == 0) return "NA"
  for (i = 1; i <= n; i++) a[i] = val[key, i]
  for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
  return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
function add(key, v) {
  if (v == "NA" || v == "") return
  v += 0
  cnt[key]++; val[key, cnt[key]] = v
  if (!(key in lo) || v < lo[key]) lo[key] = v
  if (!(key in hi) || v > hi[key]) hi[key] = v
}
function ratio(a, b) { return (a == "NA" || b == "NA" || b == 0) ? "NA" : a / b }
function fmt(v, f) { return (v == "NA" || v == "") ? "n/a" : sprintf(f, v) }
function mib(kib) { return kib / 1024 }
function scname(s) { return s == "keepalive" ? "keep-alive" : s == "close" ? "Connection: close" : s }
# Median and range of the per-round ratio herd/peer of figure f.
function round_ratios(sc, n, peer, f,    r, a, b, k, c, x, mn, mx) {
  c = 0
  for (r = 1; r <= rounds; r++) {
    a = per[sc, n, "herd", f, r]; b = per[sc, n, peer, f, r]
    if (a == "" || b == "" || b == 0) continue
    x = a / b; c++
    if (c == 1 || x < mn) mn = x
    if (c == 1 || x > mx) mx = x
  }
  return c < 2 ? "" : sprintf(" (rounds %.2f–%.2f)", mn, mx)
}
function verdict(v, op, th) {
  if (v == "NA") return "n/a"
  return ((op == ">=" && v >= th) || (op == "<=" && v <= th) || (op == "==" && v == th)) ? "met" : "**not met**"
}

BEGIN {
  ns = split(servers, S, " "); nw = split(workers, W, " "); nc = split(scenarios, C, " ")
  if (rounds == "") rounds = 1
}
NR == 1 { next }
{
  k = $3 SUBSEP $4 SUBSEP $2
  have[k] = 1
  add(k SUBSEP "rps", $5); add(k SUBSEP "p50", $6); add(k SUBSEP "p99", $7)
  add(k SUBSEP "cores", $17); add(k SUBSEP "mcores", $18); add(k SUBSEP "rpc", $19)
  add(k SUBSEP "wrk", $20); add(k SUBSEP "upc", $22)
  err[k] += $9 + $10 + $11 + $12 + $13
  if ($23 > rssm[k]) rssm[k] = $23
  if ($24 > rssw[k]) rssw[k] = $24
  if ($5 != "NA") per[$3, $4, $2, "rps", $1] = $5
  if ($19 != "NA") per[$3, $4, $2, "rpc", $1] = $19
  if ($2 == "herd") { herd_err[$3, $4] += $9 + $10 + $11 + $12 + $13; herd_runs[$3, $4]++
                      if ($23 > herd_rssm[$4]) herd_rssm[$4] = $23; if ($24 > herd_rssw[$4]) herd_rssw[$4] = $24 }
  # notes: runs with errors, or whose process count is not N + 1 (a worker died or was replaced)
  e = $9 + $10 + $11 + $12 + $13
  if (e > 0) note[++nn] = sprintf("r%d N=%d %s %s: %d error(s) (non-2xx %d, connect %d, read %d, write %d, timeout %d)", $1, $4, $2, scname($3), e, $9, $10, $11, $12, $13)
  if ($25 != $4 + 1) note[++nn] = sprintf("r%d N=%d %s %s: %d processes at the end of the run (expected %d)", $1, $4, $2, scname($3), $25, $4 + 1)
  nruns++
  if ($29 != "" && $29 > 0.4) busy_runs = busy_runs (nbusy++ ? ", " : "") sprintf("r%d N=%d %s %s (%.2f)", $1, $4, $2, ($3 == "keepalive" ? "keep-alive" : "close"), $29)
  if ($5 == "NA") note[++nn] = sprintf("r%d N=%d %s %s: no wrk result", $1, $4, $2, scname($3))
}

END {
  if (part == "table") {
    print "| scenario | N | server | req/s (min–max) | ×nginx | ×node | p50 ms | p99 ms | errors | CPU cores (master) | req/CPU-s | ×nginx | ×node | peak RSS MiB master / worker | master µs/conn | wrk cores |"
    print "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    for (c = 1; c <= nc; c++) for (w = 1; w <= nw; w++) for (s = 1; s <= ns; s++) {
      sc = C[c]; n = W[w]; srv = S[s]; k = sc SUBSEP n SUBSEP srv
      if (!(k in have)) continue
      kn = sc SUBSEP n SUBSEP "nginx"; kd = sc SUBSEP n SUBSEP "node-cluster"
      rps = median(k SUBSEP "rps"); rpc = median(k SUBSEP "rpc")
      rcell = fmt(rps, "%.0f")
      if (cnt[k SUBSEP "rps"] > 1) rcell = rcell sprintf(" (%.0f–%.0f)", lo[k SUBSEP "rps"], hi[k SUBSEP "rps"])
      printf "| %s | %s | %s | %s | %s | %s | %s | %s | %d | %s (%s) | %s | %s | %s | %s / %s | %s | %s |\n",
        scname(sc), n, (srv == "herd" ? "**herd**" : srv), rcell,
        fmt(ratio(rps, median(kn SUBSEP "rps")), "%.2f"), fmt(ratio(rps, median(kd SUBSEP "rps")), "%.2f"),
        fmt(median(k SUBSEP "p50"), "%.2f"), fmt(median(k SUBSEP "p99"), "%.2f"), err[k],
        fmt(median(k SUBSEP "cores"), "%.2f"), fmt(median(k SUBSEP "mcores"), "%.2f"), fmt(rpc, "%.0f"),
        fmt(ratio(rpc, median(kn SUBSEP "rpc")), "%.2f"), fmt(ratio(rpc, median(kd SUBSEP "rpc")), "%.2f"),
        fmt(mib(rssm[k]), "%.1f"), fmt(mib(rssw[k]), "%.1f"),
        (srv == "herd" ? fmt(median(k SUBSEP "upc"), "%.2f") : "–"), fmt(median(k SUBSEP "wrk"), "%.2f")
    }
  }

  if (part == "targets") {
    head = "| target |"; line = "|---|"
    for (w = 1; w <= nw; w++) { head = head " N=" W[w] " |"; line = line "---|" }
    print "## Targets"
    print ""
    print "herd against the issue's targets, from the medians above (per-round ratios in brackets)."
    print ""
    print head; print line
    met = 0; total = 0
    for (c = 1; c <= nc; c++) {
      sc = C[c]
      if (sc == "keepalive") { trps = 0.95; trpc = 1.0 } else { trps = 0.9; trpc = 0.8 }
      for (t = 1; t <= 3; t++) {
        if (t == 1) { label = sprintf("%s: req/s ≥ %.2f× nginx", scname(sc), trps); peer = "nginx"; f = "rps"; th = trps }
        if (t == 2) { label = sprintf("%s: req/CPU-s ≥ %.2f× nginx", scname(sc), trpc); peer = "nginx"; f = "rpc"; th = trpc }
        if (t == 3) { label = sprintf("%s: req/s ≥ 5× node-cluster", scname(sc)); peer = "node-cluster"; f = "rps"; th = 5 }
        row = "| " label " |"
        for (w = 1; w <= nw; w++) {
          n = W[w]
          v = ratio(median(sc SUBSEP n SUBSEP "herd" SUBSEP f), median(sc SUBSEP n SUBSEP peer SUBSEP f))
          vd = verdict(v, ">=", th)
          if (vd != "n/a") { total++; if (vd == "met") met++ }
          row = row " " (v == "NA" ? "n/a" : sprintf("%.2f%s %s", v, round_ratios(sc, n, peer, f), vd)) " |"
        }
        print row
      }
    }
    for (c = 1; c <= nc; c++) {
      sc = C[c]; row = "| " scname(sc) ": herd master ≤ 5 µs CPU per handed-off connection |"
      for (w = 1; w <= nw; w++) {
        v = median(sc SUBSEP W[w] SUBSEP "herd" SUBSEP "upc")
        if (v == "NA") { row = row " n/a" (sc == "keepalive" ? " (keep-alive: only wrk's " conns " connections)" : "") " |"; continue }
        vd = verdict(v, "<=", 5); total++; if (vd == "met") met++
        row = row sprintf(" %.2f µs %s |", v, vd)
      }
      print row
    }
    for (t = 1; t <= 2; t++) {
      row = "| herd " (t == 1 ? "master" : "worker") " peak RSS ≤ 8 MiB |"
      for (w = 1; w <= nw; w++) {
        v = (t == 1) ? herd_rssm[W[w]] : herd_rssw[W[w]]
        if (v == "" || v == 0) { row = row " n/a |"; continue }
        vd = verdict(mib(v), "<=", 8); total++; if (vd == "met") met++
        row = row sprintf(" %.1f MiB %s |", mib(v), vd)
      }
      print row
    }
    row = "| herd: zero errors (all scenarios and rounds) |"
    for (w = 1; w <= nw; w++) {
      e = 0; runs = 0
      for (c = 1; c <= nc; c++) { e += herd_err[C[c], W[w]]; runs += herd_runs[C[c], W[w]] }
      if (runs == 0) { row = row " n/a |"; continue }
      vd = verdict(e, "==", 0); total++; if (vd == "met") met++
      row = row sprintf(" %d %s |", e, vd)
    }
    print row
    print ""
    printf "%d of %d met.\n", met, total
  }

  if (part == "notes") {
    for (i = 1; i <= nn; i++) print "- " note[i]
    if (nbusy) printf "- %d of %d runs had more than 0.4 cores of the machine busy with neither the server nor wrk (other processes, softirq not charged to a process): their figures may be low. Runs (cores): %s\n", nbusy, nruns, busy_runs
  }

  if (part == "chart") {
    # one line per scenario x N: label, then per server: rps median, min, max, req/CPU-s median
    for (c = 1; c <= nc; c++) for (w = 1; w <= nw; w++) {
      sc = C[c]; n = W[w]
      printf "\"%s N=%s\"", (sc == "keepalive" ? "keep-alive" : "conn. per request"), n
      for (s = 1; s <= ns; s++) {
        k = sc SUBSEP n SUBSEP S[s]
        r = median(k SUBSEP "rps"); q = median(k SUBSEP "rpc")
        if (r == "NA") printf " NaN NaN NaN"; else printf " %.0f %.0f %.0f", r, lo[k SUBSEP "rps"], hi[k SUBSEP "rps"]
        printf " %s", (q == "NA" ? "NaN" : sprintf("%.0f", q))
      }
      printf "\n"
    }
  }
}
