#!/usr/bin/env bash
# DynST paper-style tables (Tables 1, 2, 4, speedups.csv, accuracy-vs-sparsity plot) for all
# eight backbones on metr-la-week (graph) and era5-t2m-uk (grid). The README's tables come
# from this script's output (bench_out/paper/table*.md); it prints the machine and date.
#   bash benchmarks/paper_tables.sh quick   # minutes (accuracies not representative)
#   bash benchmarks/paper_tables.sh         # the sweep behind the README: ~2-3 h on a 2-core CPU
#
# Full mode, one seed: Table 2 (sparsity 0.1 .. 0.6) and Table 4 (all five schemes at 0.3) for
# STID; Table 1 (DynST and random at 0.3) for the other seven backbones (Graph WaveNet: DynST
# only, ~3 min per epoch when the machine is shared; TAU and ConvLSTM likewise DynST only). STAEformer gets 10
# epochs (about a minute per epoch on 2 cores), ViT 10, the CNN / RNN grid backbones 5
# (TAU and ConvLSTM take ~2 min per epoch here). Fine-tuning after the search is capped
# (finetune_epochs): it starts from the trained dense weights. Graph WaveNet and STAEformer run
# their small preset (backbone_options; `backbone=` in --set only so the options are checked
# against that backbone): at the reference configuration one metr-la-week epoch takes ~2.5 min
# (GWN) and ~20 min (STAEformer) on this 2-core CPU while it is shared.
# Each part is its own `sparsest bench`; the last call rebuilds one set of tables from all runs.
set -euo pipefail
mode=${1:-full}
py=${PYTHON:-python}
echo "machine: $(uname -m), $(nproc) cores, torch $($py -c 'import torch; print(torch.__version__)'), $(date -u +%Y-%m-%d)"
if [ "$mode" = quick ]; then
  exec $py -m sparsest bench --quick --out bench_out/quick
fi
$py -m sparsest bench --datasets metr-la-week --backbones stid --sparsities 0.1 0.2 0.3 0.4 0.5 0.6 --seeds 0 --epochs 20 --set patience=4 finetune_epochs=8 --out bench_out/full_stid
$py -m sparsest bench --datasets metr-la-week --backbones stgcn --sparsities 0.3 --schemes dynst random --seeds 0 --epochs 20 --set patience=4 finetune_epochs=8 --out bench_out/t1_graph
$py -m sparsest bench --datasets metr-la-week --backbones gwn --sparsities 0.3 --schemes dynst --seeds 0 --epochs 20 --set patience=5 backbone=gwn 'backbone_options={preset: small}' --out bench_out/t1_gwn
$py -m sparsest bench --datasets metr-la-week --backbones staeformer --sparsities 0.3 --schemes dynst random --seeds 0 --epochs 10 --set patience=3 finetune_epochs=5 backbone=staeformer 'backbone_options={preset: small}' --out bench_out/t1_stae
$py -m sparsest bench --datasets era5-t2m-uk --backbones vit --sparsities 0.3 --schemes dynst random --seeds 0 --epochs 10 --set batch_size=16 finetune_epochs=5 --out bench_out/t1_vit
$py -m sparsest bench --datasets era5-t2m-uk --backbones simvp --sparsities 0.3 --schemes dynst random --seeds 0 --epochs 5 --set patience=2 batch_size=16 round_steps=6 mask_steps=3 --out bench_out/t1_cnn
$py -m sparsest bench --datasets era5-t2m-uk --backbones tau convlstm --sparsities 0.3 --schemes dynst --seeds 0 --epochs 5 --set patience=2 batch_size=16 round_steps=6 mask_steps=3 --out bench_out/t1_cnn_slow
$py -m sparsest bench --from-runs bench_out/full_stid/runs bench_out/t1_graph/runs bench_out/t1_gwn/runs bench_out/t1_stae/runs bench_out/t1_vit/runs bench_out/t1_cnn/runs bench_out/t1_cnn_slow/runs --out bench_out/paper
