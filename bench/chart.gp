# bench/chart.gp -- the chart of bench/run.sh: grouped bars per scenario x N,
# one bar per server; top: req/s (median, whiskers min-max over the rounds),
# bottom: requests per CPU-second of the server's processes (median).
#   gnuplot -e "datafile='d.dat'; outfile='o.png'; names='herd nginx node-cluster'; term='pngcairo'; subtitle='...'" chart.gp
# datafile: one line per group: "label" then, per server, rps rps_min rps_max req_per_cpu_s.
if (!exists("term")) term = 'pngcairo'
if (!exists("subtitle")) subtitle = ''
if (term eq 'pngcairo') {
  set terminal pngcairo size 1100,900 font 'sans,10' noenhanced
} else {
  set terminal png size 1100,900 noenhanced
}
set output outfile

ns = words(names)
stats datafile using 2 nooutput
ng = STATS_records
gap = 2  # as in "set style histogram ... gap 2" below
# x of bar i (1..ns) in group g (0..ng-1) of a clustered histogram
barx(g, i) = g + (i - (ns + 1) / 2.0) / (ns + gap)
kilo(v) = v != v ? '' : (v >= 10000 ? sprintf('%.0fk', v / 1000) : (v >= 1000 ? sprintf('%.1fk', v / 1000) : sprintf('%.0f', v)))
set xrange [-0.5:ng - 0.5]
set offsets 0, 0, graph 0.08, 0
set style data histograms
set style fill solid 0.85 border -1
set boxwidth 0.9
set grid ytics lc rgb '#dddddd'
set key top right
set yrange [0:*]
set format y '%.0f'
array colors[4] = ['#1b9e77', '#7570b3', '#d95f02', '#e7298a']

set multiplot layout 2,1 title 'herd vs nginx vs node-cluster on 127.0.0.1 -- '.subtitle
set title 'requests per second (median; whiskers: min-max over the rounds)'
set style histogram errorbars gap 2 lw 1
plot for [i=1:ns] datafile using (column(4*i-2)):(column(4*i-1)):(column(4*i)):xtic(1) \
       title word(names, i) lc rgb colors[(i-1)%4+1], \
     for [i=1:ns] datafile using (barx($0, i)):(column(4*i)):(kilo(column(4*i-2))) \
       with labels offset 0,0.7 font ',8' notitle

set title 'requests per CPU-second of the server processes (median)'
set style histogram clustered gap 2
plot for [i=1:ns] datafile using (column(4*i+1)):xtic(1) title word(names, i) lc rgb colors[(i-1)%4+1], \
     for [i=1:ns] datafile using (barx($0, i)):(column(4*i+1)):(kilo(column(4*i+1))) \
       with labels offset 0,0.7 font ',8' notitle
unset multiplot
