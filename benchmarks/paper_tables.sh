#!/usr/bin/env bash
# DynST paper-style tables (Tables 1, 2, 4, speedups.csv, accuracy-vs-sparsity plot) for all
# eight backbones on metr-la-week (graph) and era5-t2m-uk (grid). The README's tables come
# from this script's output (bench_out/<mode>/table*.md); quote the machine and date they print.
#   bash benchmarks/paper_tables.sh quick   # minutes (accuracies not representative)
#   bash benchmarks/paper_tables.sh         # the full sweep: hours on a 2-core CPU
set -euo pipefail
mode=${1:-full}
if [ "$mode" = quick ]; then
  exec python -m sparsest bench --quick --out bench_out/quick
fi
exec python -m sparsest bench --sparsities 0.1 0.2 0.3 0.4 0.5 0.6 --seeds 0 --epochs 20 --out bench_out/full
