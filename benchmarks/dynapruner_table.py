"""Dyna-Pruner on era5-t2m-uk with SimVP, ConvLSTM and TAU: paper Tables I-II and the
numbers issue 4 asks for, printed from the runs' metrics.json; with ``--sensitivity`` /
``--ablation``, paper Tables III (s_d, s_w sweep) and IV (ablation) on SimVP instead.

    OMP_NUM_THREADS=1 python benchmarks/dynapruner_table.py --epochs 2 --out bench_dynapruner
    python benchmarks/dynapruner_table.py --from-runs bench_dynapruner/runs   # rebuild only
    python benchmarks/dynapruner_table.py --from-runs bench_dynapruner/runs --remeasure --out bench_dynapruner/remeasured

    # Tables III and IV (one shared 1-epoch dense pre-training, then 1 epoch per row; SimVP)
    OMP_NUM_THREADS=1 python benchmarks/dynapruner_table.py --sensitivity --ablation --epochs 1 --out bench_dynapruner/study
    python benchmarks/dynapruner_table.py --sensitivity --ablation --from-runs bench_dynapruner/study/runs --out bench_dynapruner/study

``--sensitivity`` / ``--ablation`` run ``sparsest bench --suite dyna-pruner --tables 3 4``
(either flag alone: that table only): one :func:`sparsest.methods.dynapruner.study.run_study` per
backbone, i.e. one dense pre-training of ``--epochs`` epochs shared by every row, then
``--epochs`` more epochs each for dense, the five (s_d, s_w) settings of Table III and the
DP-only, MP-only and independent rows of Table IV (the full method is the (0.7, 0.7) row of
Table III). Columns: test MSE, GFLOPs per window, ms per window at batch 1 (Dyna-Pruner
rows on their gated path), each also as a ratio to dense.

Every row of a backbone gets the same budget: a shared dense pre-training of ``--epochs``
epochs, then ``--epochs`` more epochs each for dense, Dyna-Pruner, MP and random (see
``sparsest.methods.dynapruner.run``). Latency: all models of one backbone are measured in one process,
interleaved (dense, Dyna-Pruner, MP, random, dense, ...), so machine load hits them alike;
ratios are what to compare. Batch 1: ms per window, Dyna-Pruner runs its gated path (only
the active channels of each sample are computed); batch 64: Dyna-Pruner runs its static
compact model.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch


def check(metrics: list[dict]) -> str:
    """The issue's five requirements, one block per backbone (numbers from metrics.json)."""
    lines = []
    for m in metrics:
        g, l1, l64 = m["gflops"], m["latency_ms_b1"], m["latency_ms_b64"]
        mse = m["mse"]
        lines.append(f"== {m['backbone']} on {m['data']} (s_d={m['data_sparsity']:g}, s_w={m['model_sparsity']:g}, "
                     f"{m['pretrain_epochs']}+{m['epochs']} epochs, measured model sparsity {m['model_sparsity_measured']['mean']:.3f})")
        lines.append(f"1. GFLOPs/sample dense {g['dense']:.4f} -> Dyna-Pruner {g['pruned']:.4f}: -{100 * g['reduction']:.1f}% "
                     f"[{'OK' if g['reduction'] >= 0.6 else 'SHORT'} >= 60%]")
        lines.append(f"2. batch 1: dense {l1['dense']:.2f} ms -> gated {l1['pruned']:.2f} ms: x{l1['speedup']:.2f} "
                     f"[{'OK' if l1['speedup'] >= 2 else 'SHORT'} >= 2x]; batch 64: dense {l64['dense']:.0f} ms -> compact "
                     f"{l64['pruned']:.0f} ms: x{l64['speedup']:.2f} [{'OK' if l64['speedup'] > 1 else 'SHORT'} > 1x]; "
                     f"compact removed {m['compaction']['removed']}/{m['compaction']['total']} channels")
        if "mp" in m:
            mp, rnd = m["mp"], m["random"]
            lines.append(f"   MP: b1 {mp['latency_ms_b1']:.2f} ms (x{l1['dense'] / mp['latency_ms_b1']:.2f}), b64 {mp['latency_ms_b64']:.0f} ms "
                         f"(x{l64['dense'] / mp['latency_ms_b64']:.2f}), GFLOPs {mp['gflops']:.4f}; random: b1 {rnd['latency_ms_b1']:.2f} ms, "
                         f"GFLOPs {rnd['gflops']:.4f}")
            lines.append(f"3. MSE (K^2) dense {mse['dense']:.4f}, Dyna-Pruner {mse['pruned']:.4f} ({m['mse_increase_pct']:+.2f}%) "
                         f"[{'OK' if m['mse_increase_pct'] <= 3 else 'SHORT'} <= +3%], MP {mp['mse']:.4f} "
                         f"[{'OK' if mse['pruned'] < mp['mse'] else 'SHORT'} Dyna < MP], random {rnd['mse']:.4f}; "
                         f"compact model {mse['compact']:.4f}")
        rob = m["robustness"]
        lines.append("4. robustness, test MSE: " + "; ".join(
            f"{k}: " + ", ".join(f"{c}={v:.4f}" for c, v in r.items() if v is not None) for k, r in rob.items()))
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backbones", nargs="+", default=None,
                    help="[default: simvp convlstm tau; with --sensitivity / --ablation: simvp]")
    ap.add_argument("--epochs", type=int, default=2, help="pre-training epochs and epochs per row [default: 2]")
    ap.add_argument("--data", default="era5-t2m-uk")
    ap.add_argument("--out", default="bench_dynapruner")
    ap.add_argument("--seeds", nargs="+", default=["0"])
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="CompressConfig options for every run")
    ap.add_argument("--from-runs", nargs="+", default=None, help="rebuild tables and checks from finished runs")
    ap.add_argument("--remeasure", action="store_true",
                    help="with --from-runs: rebuild each run's models from its checkpoints and measure GFLOPs and latency "
                    "again (accuracy is unchanged); tables go to --out")
    ap.add_argument("--repeats", type=int, default=None, help="timed repeats for --remeasure [default: the run's]")
    ap.add_argument("--sensitivity", action="store_true", help="paper Table III: MSE, GFLOPs, latency at five (s_d, s_w) settings")
    ap.add_argument("--ablation", action="store_true", help="paper Table IV: dense, DP only, MP only, independent DP + MP, full")
    args = ap.parse_args(argv)
    study = [t for t, on in ((3, args.sensitivity), (4, args.ablation)) if on]
    if study and args.remeasure:
        ap.error("--remeasure rebuilds Tables I-II only; drop --sensitivity / --ablation")
    if args.backbones is None:
        args.backbones = ["simvp"] if study else ["simvp", "convlstm", "tau"]
    torch.set_num_threads(1)
    from sparsest.cli import main as cli

    if args.remeasure:
        import platform
        import time

        from rich.console import Console

        from sparsest.bench.dynapruner import write_bench_tables
        from sparsest.methods.dynapruner.run import remeasure

        if not args.from_runs:
            ap.error("--remeasure needs --from-runs")
        dirs = [p.parent for d in args.from_runs for p in sorted(Path(d).glob("*/metrics.json")) if not p.parent.name.endswith(".partial")]
        merged = [(remeasure(d, args.repeats, Console()), d) for d in dirs]
        merged = [(m, d) for m, d in merged if m.get("method") == "dynapruner"]
        header = (f"Machine: {platform.machine()} CPU, {torch.get_num_threads()} threads, torch {torch.__version__}; "
                  f"{time.strftime('%Y-%m-%d')}; accuracy from {len(merged)} run directories, GFLOPs and latency re-measured "
                  "from their checkpoints (benchmarks/dynapruner_table.py --remeasure). Latency: ms per sample at batch 1 "
                  "(Dyna-Pruner: gated execution), ms per batch at 64 (Dyna-Pruner: static compact model), models interleaved.")
        for p in write_bench_tables(merged, Path(args.out), header).values():
            print(p.read_text())
        print(check([m for m, _ in merged]))
        return 0

    bench = ["bench", "--suite", "dyna-pruner", "--out", args.out] + (["--tables", *map(str, study)] if study else [])
    if args.from_runs:
        bench += ["--from-runs", *args.from_runs]
    else:
        bench += ["--datasets", args.data, "--backbones", *args.backbones, "--epochs", str(args.epochs), "--seeds", *args.seeds]
        if args.set:
            bench += ["--set", *args.set]
    code = cli(bench)
    if code or study:
        return code
    runs = [Path(p) for p in args.from_runs] if args.from_runs else [Path(args.out) / "runs"]
    metrics = [json.loads(p.read_text()) for d in runs for p in sorted(d.glob("*/metrics.json"))]
    metrics = [m for m in metrics if m.get("method") == "dynapruner" and (args.from_runs or m["backbone"] in args.backbones)]
    print(check(metrics))
    return 0


if __name__ == "__main__":
    sys.exit(main())
