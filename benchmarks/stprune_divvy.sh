#!/usr/bin/env bash
# ST-Prune on a long real series (issue: "ST-Prune where it matters"): divvy-chicago, the last
# 20,000 valid five-minute steps (2014-03-31 .. 2015-03-17, 5 unbroken runs in the training
# split, 300 stations; ~13.9k training windows), STID at a small width (hidden_size 16, 2
# layers: a 2-core CPU trains an epoch in ~20 s), 8 epochs, early stopping (patience 3),
# batch 32. Each call appends to bench_out/stprune_divvy/results.csv and skips runs already
# there (resumable). Prints the tables; writes figure4.png and val_mae_vs_time.png.
#   bash benchmarks/stprune_divvy.sh headline   # seeds 0-2 at the 30% budget, all methods
#   bash benchmarks/stprune_divvy.sh sweep      # seed 0 at 10/50/70/90% (30% from headline)
#   bash benchmarks/stprune_divvy.sh gwn        # Graph WaveNet (small preset), seed 0, 30%
#   SEEDS="0 1 2" bash benchmarks/stprune_divvy.sh full   # the whole series (74,695 steps, ~52k
#                                               # training windows, ~80 s an epoch), 30%, all methods
#   bash benchmarks/stprune_divvy.sh full-sweep # the whole series, seed 0, 10/50/70/90%
set -euo pipefail
part=${1:-headline}
py=${PYTHON:-python}
echo "machine: $(uname -m), $(nproc) cores, torch $($py -c 'import torch; print(torch.__version__)'), $(date -u +%Y-%m-%dT%H:%M)"
common=(--data divvy-chicago --epochs 8 --batch-size 32 --threads 2)
methods=(--methods st-prune infobatch infobatch-budget random)
whole=(patience=3 "backbone_options={hidden_size: 16, n_layers: 2}")  # the whole series
stid=(time_slice=-20000: "${whole[@]}")  # the last 20,000 steps
case $part in
  headline) $py benchmarks/stprune_table.py "${common[@]}" "${methods[@]}" --backbone stid --seeds 0 1 2 --budgets 0.3 \
              --out bench_out/stprune_divvy --set "${stid[@]}" ;;
  sweep) $py benchmarks/stprune_table.py "${common[@]}" "${methods[@]}" --backbone stid --seeds 0 --budgets 0.1 0.3 0.5 0.7 0.9 \
              --out bench_out/stprune_divvy --set "${stid[@]}" ;;
  gwn) $py benchmarks/stprune_table.py "${common[@]}" "${methods[@]}" --backbone gwn --seeds 0 --budgets 0.3 \
              --out bench_out/stprune_divvy_gwn --set time_slice=-20000: patience=3 "backbone_options={preset: small}" ;;
  full) $py benchmarks/stprune_table.py "${common[@]}" "${methods[@]}" --backbone stid --seeds ${SEEDS:-0 1 2} --budgets 0.3 \
              --out bench_out/stprune_divvy_full --set "${whole[@]}" ;;
  full-sweep) $py benchmarks/stprune_table.py "${common[@]}" "${methods[@]}" --backbone stid --seeds 0 --budgets 0.1 0.3 0.5 0.7 0.9 \
              --out bench_out/stprune_divvy_full --set "${whole[@]}" ;;
  *) echo "unknown part $part (headline, sweep, gwn, full, full-sweep)"; exit 2 ;;
esac
