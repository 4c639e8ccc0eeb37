"""Results table of DynST sensor pruning (issue: part 1).

Runs ``sparsest.run`` for each data set / backbone / scheme / seed and prints a Markdown
table of test MAE (dense, +scheme, baselines), the relative change and the wall time.
Every number in the README's DynST table comes from this script.

Usage:
    python benchmarks/dynst_table.py                       # metr-la-week STID, 3 seeds
    python benchmarks/dynst_table.py --suite all           # + era5-t2m-uk SimVP, ghcnd-us STID
    python benchmarks/dynst_table.py --seeds 0 --schemes dynst random --out bench_out
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import torch

from sparsest.engine.options import build_options
from sparsest.methods.dynst.config import RunConfig
from sparsest.methods.dynst.run import run

SUITES = {
    "metr": [("metr-la-week", "stid", {})],
    "all": [
        ("metr-la-week", "stid", {}),
        ("era5-t2m-uk", "simvp", {"epochs": 15, "patience": 4, "batch_size": 16, "round_steps": 10, "mask_steps": 5}),
        ("ghcnd-us", "stid", {}),
    ],
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--suite", choices=sorted(SUITES), default="metr")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--schemes", nargs="+", default=["dynst", "random"])
    ap.add_argument("--sparsity", type=float, default=0.3)
    ap.add_argument("--out", default="bench_out/dynst")
    ap.add_argument("--json", default=None, help="also write all metrics to this JSON file")
    args = ap.parse_args()

    rows = []
    for data, backbone, opts in SUITES[args.suite]:
        for scheme in args.schemes:
            for seed in args.seeds:
                cfg = build_options(RunConfig, ("--set", dict(data=data, backbone=backbone, scheme=scheme, seed=seed,
                                                             sensor_sparsity=args.sparsity, out=args.out, **opts)))
                t0 = time.perf_counter()
                run_dir, m = run(cfg)
                rows.append({"data": data, "backbone": backbone, "scheme": scheme, "seed": seed,
                             "persistence": m["baselines"]["persistence"]["mae"],
                             "historical_average": m["baselines"]["historical_average"]["mae"],
                             "dense": m["dense"]["mae"], "pruned": m["pruned"]["mae"],
                             "pruned_rmse": m["pruned"]["rmse"], "dense_rmse": m["dense"]["rmse"],
                             "kept_only": m["pruned_kept_only"]["mae"], "n_kept": m["n_kept"], "n_sensors": m["n_sensors"],
                             "time_s": time.perf_counter() - t0, "run_dir": str(run_dir)})
                r = rows[-1]
                print(f"{data} {backbone} {scheme} seed {seed}: dense {r['dense']:.4f} pruned {r['pruned']:.4f} "
                      f"({100 * (r['pruned'] / r['dense'] - 1):+.2f}%) persistence {r['persistence']:.4f} "
                      f"HA {r['historical_average']:.4f} [{r['time_s']:.0f} s]", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))

    def mean_sd(vals):
        return f"{statistics.mean(vals):.3f} ± {statistics.stdev(vals):.3f}" if len(vals) > 1 else f"{vals[0]:.3f}"

    print()
    print(f"Machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, "
          f"torch {torch.__version__}; date {time.strftime('%Y-%m-%d')}; sparsity {args.sparsity}; seeds {args.seeds}")
    print()
    print("| data | backbone | persistence | hist. avg. | dense | scheme | +scheme (full field) | change vs dense | kept-only |")
    print("|---|---|---|---|---|---|---|---|---|")
    for data, backbone, _ in SUITES[args.suite]:
        for scheme in args.schemes:
            sel = [r for r in rows if r["data"] == data and r["backbone"] == backbone and r["scheme"] == scheme]
            if not sel:
                continue
            change = [100 * (r["pruned"] / r["dense"] - 1) for r in sel]
            print(f"| {data} | {backbone} | {mean_sd([r['persistence'] for r in sel])} | "
                  f"{mean_sd([r['historical_average'] for r in sel])} | {mean_sd([r['dense'] for r in sel])} | {scheme} | "
                  f"{mean_sd([r['pruned'] for r in sel])} | {statistics.mean(change):+.2f}% | {mean_sd([r['kept_only'] for r in sel])} |")


if __name__ == "__main__":
    main()
