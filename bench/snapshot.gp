# Snapshot age against loss (bench/snapshot_bench.sh): p99 solid, p50
# dashed, for the lane, the reliable stream and ENet.
set terminal pngcairo size 800,450 font ",10"
set output png
set title "Snapshot age, 200 sessions x 20 Hz x 200 B, 30 +- 10 ms each way"
set xlabel "loss each way (%)"
set ylabel "age (ms)"
set key top left
set grid
plot dat using 1:3 with linespoints lw 2 lc rgb "#1b9e77" title "kite lane p99", \
     dat using 1:2 with linespoints dt 2 lc rgb "#1b9e77" title "kite lane p50", \
     dat using 1:5 with linespoints lw 2 lc rgb "#d95f02" title "kite stream p99", \
     dat using 1:4 with linespoints dt 2 lc rgb "#d95f02" title "kite stream p50", \
     dat using 1:7 with linespoints lw 2 lc rgb "#7570b3" title "ENet unreliable sequenced p99", \
     dat using 1:6 with linespoints dt 2 lc rgb "#7570b3" title "ENet p50"
