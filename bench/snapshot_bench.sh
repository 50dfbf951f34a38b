#!/usr/bin/env bash
# Issue 18's snapshot row and its plot: bench/snapshot_bench for the lane,
# the reliable stream and ENet, at 1,000 sessions x 20 Hz x 200 B through
# kite-chaos at 5% loss each way (30 +- 10 ms), then the age against loss
# (0, 5, 10, 20%) at 200 sessions. Results in BUILD_DIR/snapshot/*.jsonl,
# the plot in docs/img/snapshot_age.png (docs/BENCHMARKS.md, "Snapshots").
#   bench/snapshot_bench.sh [--plot-only] [BUILD_DIR]   (--plot-only: no runs,
#   the plot from BUILD_DIR/snapshot/sweep.jsonl as it is)
set -euo pipefail
plot_only=0
[ "${1:-}" = --plot-only ] && { plot_only=1; shift; }
build=${1:-build/release}
bin=$build/bench/snapshot_bench
out=$build/snapshot
mkdir -p "$out"
if [ $plot_only = 0 ]; then
  : >"$out/row.jsonl"
  for s in lane stream enet; do
    "$bin" --server $s --sessions 1000 --seconds 10 | tee -a "$out/row.jsonl"
  done
  : >"$out/sweep.jsonl"
  for l in 0 0.05 0.1 0.2; do
    for s in lane stream enet; do
      "$bin" --server $s --sessions 200 --seconds 5 --loss $l | tee -a "$out/sweep.jsonl"
    done
  done
fi
# loss%, then p50 and p99 for lane, stream, enet
awk 'function get(k) { if (!match($0, "\"" k "\":\"?[^,\"}]*")) return "";
                        return substr($0, RSTART + length(k) + 3, RLENGTH - length(k) - 3) }
  { s = get("server"); sub(/^"/, "", s); k = get("loss") * 100;
    p50[k, s] = get("age_p50_ms"); p99[k, s] = get("age_p99_ms");
    if (!(k in seen)) { seen[k] = 1; order[n++] = k } }
  END { for (i = 0; i < n; i++) { k = order[i];
    print k, p50[k, "lane"], p99[k, "lane"], p50[k, "stream"], p99[k, "stream"],
          p50[k, "enet"], p99[k, "enet"] } }' "$out/sweep.jsonl" >"$out/sweep.dat"
gnuplot -e "dat='$out/sweep.dat'; png='docs/img/snapshot_age.png'" bench/snapshot.gp
echo "snapshot_bench.sh: $out/row.jsonl, $out/sweep.jsonl, docs/img/snapshot_age.png"
