# bench/compare's plots, from the sweep_SERVER.dat files compare_tables.awk
# writes (columns: sessions, CPU us per echo, p50 ms, p99 ms). Run in the
# directory that holds them; writes compare_cpu.png and compare_rtt.png.
servers = "floor kite kite-hash kite-tcp kite-tcp-hash kite-ws kcp-go enet"
file(s) = sprintf("sweep_%s.dat", s)
set terminal pngcairo size 900,520 font "sans,10"
set key outside right
set grid
set logscale x 2
set xlabel "sessions (each 20 echoes/s x 64 B)"
set xtics (250, 500, 1000, 2000)

set output "compare_cpu.png"
set title "Server CPU per echoed message (server on one core, load generator on the other)"
set ylabel "CPU us per echo"
set yrange [0:*]
plot for [s in servers] file(s) using 1:2 with linespoints lw 2 title s

set output "compare_rtt.png"
set title "Round trip, p50 (dashed) and p99 (solid)"
set ylabel "ms"
set logscale y
set yrange [*:*]
plot for [i=1:words(servers)] file(word(servers,i)) using 1:4 with linespoints lw 2 lc i title word(servers,i), \
     for [i=1:words(servers)] file(word(servers,i)) using 1:3 with linespoints lw 1 dt 2 lc i notitle
