"""``sparsest bench --suite st-prune``: the sample-pruning budget sweep.

For each data set, backbone and seed: full data once, then every method at per-epoch
budgets of 10, 30, 50, 70, 90 % of the full data (prune ratio R = 1 - budget); writes
``results.csv``, ``stprune_tables.md`` and ``figure4.png`` (test MAE against measured
per-epoch time, one line per method; ST-Prune paper, Figure 4 style).
"""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

import torch

from ..engine.options import build_options
from ..methods.stprune.config import TrainConfig
from ..methods.stprune.run import train
from .options import BUDGETS, SWEEP_METHODS, StPruneBenchOptions
from .tables import markdown

def time_to_target(val_mae: list[float], cum_time_s: list[float], target: float) -> float:
    """Wall time [s] until the first epoch whose validation MAE is <= ``target``; inf if never."""
    for v, t in zip(val_mae, cum_time_s):
        if v <= target:
            return t
    return float("inf")


def _row(m: dict, budget: float, run_dir: Path) -> dict:
    return {
        "dataset": m["data"], "backbone": m["backbone"], "seed": m["seed"], "method": m["sample_pruning"],
        "budget": budget, "prune_ratio": m["prune_ratio"], "test_mae": m["test"]["mae"], "test_rmse": m["test"]["rmse"],
        "test_mape": m["test"]["mape"], "best_val_mae": m["best_val_mae"], "train_time_s": m["train_time_s"],
        "mean_epoch_time_s": sum(m["epoch_time_s"]) / len(m["epoch_time_s"]), "samples_seen": m["samples_seen"],
        "overhead_pct": m["overhead"]["overhead_pct"], "val_mae": json.dumps(m["val_mae"]),
        "cum_time_s": json.dumps(m["cum_time_s"]), "run_dir": str(run_dir),
    }


def sweep(datasets, backbones, seeds, out, base: dict, budgets=BUDGETS, methods=SWEEP_METHODS, console=None) -> Path:
    """Run the budget sweep; append one row per run to ``out/results.csv`` as it finishes.

    Order: data set, backbone, seed, then full data and every (budget, method) in turn, so
    machine contention hits all methods alike. Returns the CSV path.
    """
    import pandas as pd

    say = console.print if console is not None else print
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    csv = out / "results.csv"
    for ds in datasets:
        for bb in backbones:
            for seed in seeds:
                jobs = [("none", 1.0)] + [(mth, b) for b in budgets for mth in methods]
                for mth, b in jobs:
                    cfg = build_options(TrainConfig, ("--set", {**base, "data": ds, "backbone": bb, "seed": seed, "sample_pruning": mth,
                                                                "prune_ratio": round(1.0 - b, 6) if mth != "none" else 0.0,
                                                                "out": str(out / "runs")}))
                    run_dir, m = train(cfg)
                    row = _row(m, b, run_dir)
                    pd.DataFrame([row]).to_csv(csv, mode="a", header=not csv.exists(), index=False)
                    say(f"{ds} {bb} seed {seed} {mth:<9} budget {b:.1f}: test MAE {row['test_mae']:.4f}, "
                        f"epoch {row['mean_epoch_time_s']:.2f} s, fit {row['train_time_s']:.1f} s, overhead {row['overhead_pct']:.2f}%")
    return csv


def summarize(csv: str | Path, out: str | Path, note: str = "") -> dict:
    """Requirement tables (Markdown) and the Figure 4 plot from a sweep's ``results.csv``.

    Returns ``{"tables": markdown, "req1": DataFrame, "req2": DataFrame, "req3": DataFrame,
    "figure": path}``. Requirement 1: per run, ST-Prune's time to reach the full-data run's
    best validation MAE x 1.01 (same seed) over the full run's fit time, and test MAE change.
    Requirement 2: mean test MAE per budget and method. Requirement 3: overhead %.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    df = pd.read_csv(csv)
    # merged sweeps (a "sweep" column): pair each run with the full-data run of its own sweep,
    # measured under the same machine load
    key_cols = ["dataset", "backbone", "seed"] + (["sweep"] if "sweep" in df.columns else [])
    full = df[df.method == "none"].set_index(key_cols)
    r1 = []
    for _, r in df[df.method != "none"].iterrows():
        key = tuple(r[c] for c in key_cols)
        if key not in full.index:
            continue
        f = full.loc[key]
        f = f.iloc[0] if isinstance(f, pd.DataFrame) else f
        ttt = time_to_target(json.loads(r.val_mae), json.loads(r.cum_time_s), 1.01 * f.best_val_mae)
        r1.append({"dataset": r.dataset, "backbone": r.backbone, "seed": r.seed, "method": r.method, "budget": r.budget,
                   "full_time_s": f.train_time_s, "time_s": r.train_time_s, "time_to_target_s": ttt,
                   "ttt_over_full": ttt / f.train_time_s, "full_test_mae": f.test_mae, "test_mae": r.test_mae,
                   "test_mae_change_pct": 100 * (r.test_mae / f.test_mae - 1),
                   "best_val_mae": r.best_val_mae, "full_best_val_mae": f.best_val_mae,
                   "full_val_at_same_time": min([v for v, t in zip(json.loads(f.val_mae), json.loads(f.cum_time_s))
                                                 if t <= r.train_time_s] or [float("nan")]),
                   "epoch_time_frac": r.mean_epoch_time_s / f.mean_epoch_time_s})
    r1 = pd.DataFrame(r1)
    lines = [f"# ST-Prune budget sweep\n\n{note}\n"]
    g1 = r1.groupby(["dataset", "backbone", "method", "budget"]).agg(
        full_time_s=("full_time_s", "mean"), time_s=("time_s", "mean"), ttt_over_full=("ttt_over_full", "mean"),
        ttt_max=("ttt_over_full", "max"), full_test_mae=("full_test_mae", "mean"), test_mae=("test_mae", "mean"),
        test_mae_change_pct=("test_mae_change_pct", "mean"), epoch_time_frac=("epoch_time_frac", "mean"),
        best_val_mae=("best_val_mae", "mean"), full_best_val_mae=("full_best_val_mae", "mean"),
        full_val_at_same_time=("full_val_at_same_time", "mean"),
        seeds=("seed", "nunique")).reset_index()
    g1["req1_pass"] = (g1.ttt_max <= 0.5) & (g1.test_mae_change_pct.abs() <= 1.0)
    lines += ["## Requirement 1: time to reach the full-data validation MAE (x1.01), mean over seeds\n",
              "ttt/full = time-to-target over the full-data run's fit time (worst seed in ttt_max; inf = never reached); "
              "full_val_at_same_time = best validation MAE the full-data run had reached after the method's whole fit time.\n",
              markdown(g1.round(4)), ""]
    mae = df[df.method != "none"].groupby(["dataset", "backbone", "budget", "method"]).test_mae.mean().unstack("method")
    fullm = df[df.method == "none"].groupby(["dataset", "backbone"]).test_mae.mean()
    mae["full"] = [fullm.get((d, b), float("nan")) for d, b, _ in mae.index]
    if {"st-prune", "infobatch", "random"} <= set(mae.columns):
        mae["st<=ib&rnd"] = (mae["st-prune"] <= mae["infobatch"]) & (mae["st-prune"] <= mae["random"])
    if {"st-prune", "infobatch-budget", "random"} <= set(mae.columns):  # InfoBatch held to the budget
        mae["st<=ibb&rnd"] = (mae["st-prune"] <= mae["infobatch-budget"]) & (mae["st-prune"] <= mae["random"])
    # what each method really visited: samples seen over the full-data run's (InfoBatch cannot
    # go below the share of above-mean windows, so at small budgets it trains on more)
    seen = df.groupby(["dataset", "backbone", "budget", "method"]).samples_seen.mean().unstack("method")
    full_seen = df[df.method == "none"].groupby(["dataset", "backbone"]).samples_seen.mean()
    for mth in [c for c in ("st-prune", "infobatch", "infobatch-budget", "random") if c in seen.columns]:
        mae[f"{mth}_visited_pct"] = [100 * seen.loc[i, mth] / full_seen.get(i[:2], float("nan")) if i in seen.index else float("nan")
                                     for i in mae.index]
    if "infobatch_visited_pct" in mae and "st-prune_visited_pct" in mae:
        # InfoBatch visiting > 10% more windows than ST-Prune is not an equal-budget comparison
        mae["ib_at_budget"] = mae["infobatch_visited_pct"] <= 1.1 * mae["st-prune_visited_pct"]
    r2 = mae.reset_index()
    lines += ["## Requirement 2: test MAE at equal per-epoch budgets (mean over seeds)\n",
              "*_visited_pct = windows trained on over the full-data run's; ib_at_budget = InfoBatch visited at most 10% "
              "more than ST-Prune (otherwise it could not prune down to the budget and trained on more); "
              "infobatch-budget = InfoBatch held to the budget (the same as infobatch where that meets it).\n",
              markdown(r2.round(4)), ""]
    win_cols = [c for c in ("st<=ib&rnd", "st<=ibb&rnd", "ib_at_budget") if c in r2]
    if win_cols:
        wins = r2.groupby(["dataset", "backbone"])[win_cols].sum().astype(int)
        wins["budgets"] = r2.groupby(["dataset", "backbone"]).size()
        lines += ["Budgets where ST-Prune <= InfoBatch (as published / held to the budget) and random:\n",
                  markdown(wins.reset_index()), ""]
    r3 = df[df.method != "none"].groupby(["dataset", "backbone", "method"]).overhead_pct.agg(["mean", "max"]).reset_index()
    lines += ["## Requirement 3: scoring + selection overhead, % of training-step time\n",
              markdown(r3.round(3)), ""]
    tables = "\n".join(lines)
    (out / "stprune_tables.md").write_text(tables)
    r1.to_csv(out / "req1_runs.csv", index=False)

    groups = list(df.groupby(["dataset", "backbone"]).groups)
    fig, axes = plt.subplots(1, len(groups), figsize=(5 * len(groups), 4), squeeze=False)
    for ax, (ds, bb) in zip(axes[0], groups):
        sub = r1[(r1.dataset == ds) & (r1.backbone == bb)]
        for mth, g in sub.groupby("method"):
            p = g.groupby("budget").agg(x=("epoch_time_frac", "mean"), y=("test_mae", "mean")).sort_index()
            (line,) = ax.plot(100 * p.x, p.y, marker="o", label=mth)  # joined in budget order
            for b, row in p.iterrows():
                ax.annotate(f"{100 * b:.0f}", (100 * row.x, row.y), fontsize=6, color=line.get_color(),
                            textcoords="offset points", xytext=(3, 3))
        ax.axhline(fullm.get((ds, bb)), color="k", ls="--", label="full data (vanilla)")
        ax.set_xlabel("measured per-epoch time, % of full data")
        ax.set_ylabel("test MAE")
        ax.set_title(f"{ds} · {bb} (labels: budget %)")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig_path = out / "figure4.png"
    fig.savefig(fig_path, dpi=110)
    plt.close(fig)
    return {"tables": tables, "req1": g1, "req2": r2, "req3": r3, "figure": fig_path}


def suite(options: StPruneBenchOptions, console) -> int:
    """``sparsest bench --suite st-prune``: the budget sweep (or ``from_runs``: not supported,
    the sweep's ``results.csv`` is the record; :func:`summarize` rebuilds the tables).

    Backbones default to stid for graph data and simvp for grids; ``quick`` = 2 epochs of 4
    batches, budgets 0.3 / 0.7.

    Raises:
        ConfigError: a bad per-run option (``--set``).
    """
    from ..datasets import get_dataset_entry
    from ..errors import ConfigError

    if options.from_runs:
        raise ConfigError("--from-runs: the st-prune suite rebuilds its tables from results.csv: "
                          "python benchmarks/stprune_table.py --summarize-only --csv OUT/results.csv")
    base = dict(options.run_options)
    for key in ("epochs", "data_dir"):
        if getattr(options, key) is not None:
            base[key] = getattr(options, key)
    budgets = tuple(options.budgets)
    if options.quick:
        base.update({"epochs": base.get("epochs", 2), "limit_train_batches": 4, "batch_size": 16})
        budgets = budgets if list(budgets) != BUDGETS else (0.3, 0.7)
    build_options(TrainConfig, ("--set", base))  # every per-run option checked before the first run

    def default(ds):
        entry = get_dataset_entry(ds)
        return "simvp" if entry is not None and entry.kind == "grid" else "stid"

    pairs = [(ds, bb) for ds in options.datasets for bb in options.backbones] if options.backbones else \
        [(ds, default(ds)) for ds in options.datasets]
    out = Path(options.out)
    t0 = time.perf_counter()
    for ds, bb in pairs:
        sweep([ds], [bb], options.seeds, out, base, budgets, methods=tuple(options.methods), console=console)
    note = (f"Machine: {platform.machine()}, {os.cpu_count()} cores, {torch.get_num_threads()} threads, torch {torch.__version__}; "
            f"{time.strftime('%Y-%m-%d')}; sweep wall time {time.perf_counter() - t0:.0f} s.")
    res = summarize(out / "results.csv", out, note)
    console.print(res["tables"], markup=False, highlight=False)
    console.print(f"written: {out / 'results.csv'}, {out / 'stprune_tables.md'}, {res['figure']}")
    return 0
