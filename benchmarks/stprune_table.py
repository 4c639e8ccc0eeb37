"""ST-Prune results (issue 5): requirement 1-3 numbers, the budget table and Figure 4.

Runs :func:`sparsest.bench.stprune.sweep` (full data, then ST-Prune, InfoBatch, random and static at
per-epoch budgets of 10..90 % of the full data, R = 1 - budget) per data set / backbone /
seed, appending to ``<out>/results.csv``, then prints the tables of
:func:`sparsest.bench.stprune.summarize` and writes ``<out>/figure4.png``. Methods run interleaved
(seed outer, budget and method inner) so that machine contention hits all alike.

Usage:
    OMP_NUM_THREADS=1 python benchmarks/stprune_table.py --data metr-la-week --backbone stid --seeds 0 1 2 --epochs 10
    OMP_NUM_THREADS=1 python benchmarks/stprune_table.py --data metr-la-week --backbone gwn --seeds 0 --epochs 6 \\
        --budgets 0.3 --methods st-prune infobatch random
    python benchmarks/stprune_table.py --summarize-only            # tables + plot from <out>/results.csv
    python benchmarks/stprune_table.py --summarize-only --csv A/results.csv B/results.csv --out C   # merged
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import torch

from sparsest.bench.options import BUDGETS, SWEEP_METHODS
from sparsest.bench.stprune import summarize, sweep


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", nargs="+", default=["metr-la-week"])
    ap.add_argument("--backbone", nargs="+", default=["stid"])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--budgets", type=float, nargs="+", default=list(BUDGETS))
    ap.add_argument("--methods", nargs="+", default=list(SWEEP_METHODS))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default="bench_out/stprune")
    ap.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE",
                    help="more options of every run (sparsest train's), YAML values, e.g. time_slice=-20000: patience=3 "
                         "'backbone_options={hidden_size: 16}'")
    ap.add_argument("--summarize-only", action="store_true")
    ap.add_argument("--csv", nargs="+", help="with --summarize-only: results.csv files of separate sweeps to merge into <out>")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    if not args.summarize_only:
        import yaml

        base = {"epochs": args.epochs, "batch_size": args.batch_size}
        for kv in args.set:
            key, _, value = kv.partition("=")
            base[key.strip()] = value if key.strip() == "time_slice" else yaml.safe_load(value)
        sweep(args.data, args.backbone, args.seeds, args.out, base, tuple(args.budgets), tuple(args.methods))
    note = (f"Machine: {platform.machine()}, {os.cpu_count()} cores, {args.threads} torch thread(s), "
            f"torch {torch.__version__}; {time.strftime('%Y-%m-%d')}; methods interleaved per seed.")
    csv = f"{args.out}/results.csv"
    if args.csv:
        import pandas as pd

        os.makedirs(args.out, exist_ok=True)
        csv = f"{args.out}/merged_results.csv"
        pd.concat([pd.read_csv(c).assign(sweep=c) for c in args.csv], ignore_index=True).to_csv(csv, index=False)
    res = summarize(csv, args.out, note)
    print(res["tables"])
    print(f"figure: {res['figure']}; this call {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
