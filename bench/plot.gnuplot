# bench/plot.gnuplot - the benchmark plots, drawn by scripts/bench.sh and
# scripts/bench-scale.sh from the load generator's --series and --cdf files.
#
#   gnuplot -e "mode='memory'; out='x.png'; ttl='...'; parley_files='a b c'; peer_files='d e f'" bench/plot.gnuplot
#   gnuplot -e "mode='cdf'; ..."      same variables, latency CDF (log x)
#   gnuplot -e "mode='scale'; out='x.png'; ttl='...'; parley_files='one file'; peer_files='one file or empty';
#               a=INTERCEPT_KIB; b=SLOPE_KIB_PER_CONN" bench/plot.gnuplot
#
# Memory files: "connections rss_kib tcp_kib" lines; CDF files: "latency_ms fraction".
# Every run of a server is one line in that server's colour; only the first is named.

if (!exists("parley_files")) parley_files = ""
if (!exists("peer_files")) peer_files = ""
if (!exists("ttl")) ttl = ""

set terminal pngcairo size 900,560 font "DejaVu Sans,10" noenhanced
set output out
set title ttl
set grid
set key top left
c_parley = "#1f6fb4"
c_peer = "#d9541e"

if (mode eq "memory") {
    set xlabel "connections held (idle, each through the Socket.IO CONNECT)"
    set ylabel "server RSS (MiB)"
    set format x "%.0f"
    plot for [f in parley_files] f using 1:($2/1024.0) with linespoints pt 7 ps 0.6 lc rgb c_parley \
             title (f eq word(parley_files, 1) ? "parley" : ""), \
         for [f in peer_files] f using 1:($2/1024.0) with linespoints pt 5 ps 0.6 lc rgb c_peer \
             title (f eq word(peer_files, 1) ? "node socket.io peer" : "")
}

if (mode eq "cdf") {
    set logscale x 10
    set xlabel "end-to-end latency (ms, log scale)"
    set ylabel "fraction of deliveries at or below"
    set yrange [0:1.02]
    set key bottom right
    plot for [f in parley_files] f using 1:2 with lines lw 2 lc rgb c_parley \
             title (f eq word(parley_files, 1) ? "parley" : ""), \
         for [f in peer_files] f using 1:2 with lines lw 2 lc rgb c_peer \
             title (f eq word(peer_files, 1) ? "node socket.io peer" : "")
}

if (mode eq "scale") {
    set xlabel "connections held in one server process"
    set ylabel "server RSS (MiB)"
    set format x "%.0f"
    fit_line(x) = (a + b * x) / 1024.0
    set xrange [0:*]
    if (peer_files ne "") {
        plot for [f in parley_files] f using 1:($2/1024.0) with points pt 7 ps 1.2 lc rgb c_parley title "parley (measured)", \
             fit_line(x) with lines dt 2 lc rgb c_parley title "parley, least-squares line", \
             for [f in peer_files] f using 1:($2/1024.0) with linespoints pt 5 ps 1.2 lc rgb c_peer title "node socket.io peer (measured)"
    } else {
        plot for [f in parley_files] f using 1:($2/1024.0) with points pt 7 ps 1.2 lc rgb c_parley title "parley (measured)", \
             fit_line(x) with lines dt 2 lc rgb c_parley title "parley, least-squares line"
    }
}
