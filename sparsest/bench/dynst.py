"""``sparsest bench --suite dynst``: DynST's paper-style tables over data sets, backbones,
sparsities and schemes.

For every (data set, backbone, seed) the dense model is trained once; every scheme and
sparsity then starts from that dense checkpoint (``RunConfig.dense_checkpoint``), runs the
search and the fine-tuning, and measures dense vs pruned latency and FLOPs side by side.

Outputs (in ``out``): ``table1.md/.csv`` (MAE dense / +DynST at ``table1_sparsity``,
persistence, measured batch-64 speedup and FLOPs ratio), ``table2.md/.csv`` (+DynST MAE at
each sparsity), ``table4.md/.csv`` (RMSE by scheme), ``speedups.csv``,
``accuracy_vs_sparsity.png`` and ``runs/`` with every run directory.
"""

from __future__ import annotations

import dataclasses
import platform
import time
from pathlib import Path

import pandas as pd
import torch

from ..backbones import get_backbone_entry, list_backbones
from ..datasets import get_dataset_entry
from ..engine.options import build_options
from ..errors import ConfigError
from ..methods.dynst.config import RunConfig
from ..methods.dynst.run import run
from .options import DEFAULT_SPARSITIES, SCHEMES, DynstBenchOptions
from .tables import markdown

QUICK_RUN = {"epochs": 2, "patience": 1, "limit_train_batches": 4, "batch_size": 16, "rounds": 2, "round_steps": 3,
             "mask_steps": 2, "max_swaps": 3, "bench_repeats": 3}

QUICK_SCHEMES = ["dynst", "qr", "random"]



def _kind(dataset: str) -> str | None:
    e = get_dataset_entry(dataset)
    return e.kind if e else None


def plan_runs(cfg: DynstBenchOptions) -> list[dict]:
    """The list of runs: dicts of RunConfig fields plus a ``role`` tag."""
    jobs = []
    for data in cfg.datasets:
        kind = _kind(data)
        names = cfg.backbones or list_backbones(kind, trainable=True)
        for b in names:
            e = get_backbone_entry(b)
            if kind is not None and e.kind not in (kind, "any"):
                continue
            for seed in cfg.seeds:
                sparsities = sorted(set(cfg.sparsities) | {cfg.table1_sparsity})
                for s in sparsities:
                    jobs.append({"data": data, "backbone": b, "seed": seed, "scheme": "dynst", "sparsity": s})
                for scheme in cfg.schemes:
                    if scheme != "dynst":
                        jobs.append({"data": data, "backbone": b, "seed": seed, "scheme": scheme, "sparsity": cfg.table1_sparsity})
    return jobs


def scheme_options(opts: dict) -> dict:
    """``opts`` without the options its run would refuse as ignored (a bench passes one set
    of run options to every scheme and to runs that load the dense model;
    :func:`~sparsest.methods.dynst.config.unused_options`)."""
    from ..methods.dynst.config import DEFAULT_FINETUNE_SCHEDULE, DEFAULT_SCHEME, unused_options

    drop = unused_options(opts.get("scheme", DEFAULT_SCHEME), bool(opts.get("dense_checkpoint")),
                          opts.get("finetune_schedule", DEFAULT_FINETUNE_SCHEDULE))
    return {k: v for k, v in opts.items() if k not in drop}


def run_bench(cfg: DynstBenchOptions, console=None) -> dict[str, Path]:
    """Run every job of :func:`plan_runs` and write the tables; return their paths."""
    say = console.print if console is not None else print
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    if cfg.quick:
        cfg = dataclasses.replace(cfg, sparsities=cfg.sparsities if cfg.sparsities != DEFAULT_SPARSITIES else [0.3, 0.5],
                                  schemes=cfg.schemes if cfg.schemes != list(SCHEMES) else QUICK_SCHEMES,
                                  run_options={**QUICK_RUN, **cfg.run_options})
    jobs = plan_runs(cfg)
    say(f"sparsest bench: {len(jobs)} runs -> {out}")
    dense_ckpt: dict[tuple, str] = {}
    records, speed_rows = [], []
    t_start = time.perf_counter()
    for i, job in enumerate(jobs, 1):
        key = (job["data"], job["backbone"], job["seed"])
        opts = {**cfg.run_options, **job, "out": str(out / "runs")}
        if key in dense_ckpt:
            opts["dense_checkpoint"] = dense_ckpt[key]
        opts = scheme_options(opts)
        say(f"[{i}/{len(jobs)}] {job['data']} {job['backbone']} {job['scheme']} s={job['sparsity']:g} seed {job['seed']} "
            f"({time.perf_counter() - t_start:.0f} s so far)")
        run_dir, m = run(build_options(RunConfig, ("--set", opts)))
        dense_ckpt.setdefault(key, str(run_dir / "checkpoints" / "dense.ckpt"))
        _append(records, speed_rows, job, m, run_dir)
    rec = pd.DataFrame(records).rename(columns={"data": "dataset"})
    return write_tables(rec, pd.DataFrame(speed_rows), cfg, out, time.perf_counter() - t_start)


def _append(records: list, speed_rows: list, job: dict, m: dict, run_dir) -> None:
    records.append({**job, "mae_dense": m["dense"]["mae"], "mae_pruned": m["pruned"]["mae"],
                    "rmse_dense": m["dense"]["rmse"], "rmse_pruned": m["pruned"]["rmse"],
                    "mae_persistence": m["baselines"]["persistence"]["mae"],
                    "mae_historical_average": m["baselines"]["historical_average"]["mae"],
                    "runs_on_kept_only": m["runs_on_kept_sensors_only"], "run_dir": str(run_dir)})
    for c in m["costs"]:
        speed_rows.append({"backbone": job["backbone"], "dataset": job["data"], "scheme": job["scheme"], "seed": job["seed"],
                           "sparsity": job["sparsity"], "batch": c["batch"],
                           "latency_ms_dense": c["latency_ms_dense"], "latency_ms_pruned": c["latency_ms_pruned"],
                           "speedup": c["speedup"], "flops_dense": c["gflops_dense"] * 1e9,
                           "flops_pruned": c["gflops_pruned"] * 1e9, "mae_dense": m["dense"]["mae"],
                           "mae_pruned": m["pruned"]["mae"], "runs_on_kept_only": m["runs_on_kept_sensors_only"]})


def tables_from_runs(runs_dirs: list[str | Path], out: str | Path, table1_sparsity: float = 0.3) -> dict[str, Path]:
    """Rebuild the tables from finished run directories (e.g. of an interrupted bench).

    Reads every ``*/metrics.json`` (unfinished ``.partial`` runs are skipped).
    """
    import json

    records, speed_rows = [], []
    seeds = set()
    for d in runs_dirs:
        for mpath in sorted(Path(d).glob("*/metrics.json")):
            if mpath.parent.name.endswith(".partial"):
                continue
            m = json.loads(mpath.read_text())
            job = {"data": m["data"], "backbone": m["backbone"], "seed": m["seed"], "scheme": m["scheme"],
                   "sparsity": m.get("target_sensor_sparsity", m.get("target_sparsity"))}
            seeds.add(m["seed"])
            _append(records, speed_rows, job, m, mpath.parent)
    if not records:
        raise ConfigError(f"--from-runs: no finished run (metrics.json) under {', '.join(map(str, runs_dirs))}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    cfg = DynstBenchOptions(seeds=sorted(seeds), table1_sparsity=table1_sparsity, out=str(out))
    rec = pd.DataFrame(records).rename(columns={"data": "dataset"})
    return write_tables(rec, pd.DataFrame(speed_rows), cfg, out,
                        source=f"rebuilt from {len(records)} run directories (each run's options are in its config.yaml)")


def write_tables(rec: pd.DataFrame, speed: pd.DataFrame, cfg: DynstBenchOptions, out: Path, seconds: float = 0.0,
                 source: str | None = None) -> dict[str, Path]:
    """Tables 1, 2, 4, speedups.csv and the accuracy-vs-sparsity plot from run records."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = {}
    speed_cols = ["backbone", "dataset", "sparsity", "batch", "latency_ms_dense", "latency_ms_pruned", "speedup",
                  "flops_dense", "flops_pruned", "mae_dense", "mae_pruned"]
    dyn_speed = speed[speed["scheme"] == "dynst"].groupby(["backbone", "dataset", "sparsity", "batch"], as_index=False)[speed_cols[4:]].mean()
    dyn_speed[speed_cols].to_csv(out / "speedups.csv", index=False)
    paths["speedups"] = out / "speedups.csv"

    s1 = cfg.table1_sparsity
    dyn = rec[rec["scheme"] == "dynst"]
    t1 = dyn[dyn["sparsity"] == s1].groupby(["dataset", "backbone"], as_index=False).agg(
        persistence=("mae_persistence", "mean"), hist_avg=("mae_historical_average", "mean"),
        mae_dense=("mae_dense", "mean"), mae_dynst=("mae_pruned", "mean"), kept_only_path=("runs_on_kept_only", "first"))
    t1["change_%"] = 100 * (t1["mae_dynst"] / t1["mae_dense"] - 1)
    sp = dyn_speed[(dyn_speed["sparsity"] == s1) & (dyn_speed["batch"] == dyn_speed["batch"].max())]
    t1 = t1.merge(sp[["dataset", "backbone", "speedup", "flops_dense", "flops_pruned"]], on=["dataset", "backbone"], how="left")
    t1["flops_ratio"] = t1["flops_dense"] / t1["flops_pruned"]
    t1 = t1.drop(columns=["flops_dense", "flops_pruned"]).rename(columns={"speedup": f"speedup_b{int(dyn_speed['batch'].max())}"})
    t2 = dyn.groupby(["dataset", "backbone", "sparsity"], as_index=False)["mae_pruned"].mean().pivot_table(
        index=["dataset", "backbone"], columns="sparsity", values="mae_pruned").reset_index()
    t2.columns = [c if isinstance(c, str) else f"MAE@{c:g}" for c in t2.columns]
    t4 = rec[rec["sparsity"] == s1].groupby(["dataset", "backbone", "scheme"], as_index=False)["rmse_pruned"].mean().pivot_table(
        index=["dataset", "backbone"], columns="scheme", values="rmse_pruned").reset_index()
    t4.columns.name = None
    header = (f"Machine: {platform.machine()} CPU, {torch.get_num_threads()} threads, torch {torch.__version__}; "
              f"{time.strftime('%Y-%m-%d')}; seeds {cfg.seeds}; "
              + (source or f"{'quick' if cfg.quick else 'full'} mode; {seconds / 60:.1f} min"))
    for name, df, title in (("table1", t1, f"Table 1: MAE dense / +DynST at sparsity {s1:g}, measured speedup"),
                            ("table2", t2, "Table 2: +DynST MAE by sparsity"),
                            ("table4", t4, f"Table 4: RMSE by training scheme at sparsity {s1:g}")):
        df.to_csv(out / f"{name}.csv", index=False)
        (out / f"{name}.md").write_text(f"### {title}\n\n{header}\n\n{markdown(df)}\n")
        paths[name] = out / f"{name}.md"
    fig, axes = plt.subplots(1, max(1, rec["dataset"].nunique()), figsize=(6 * max(1, rec["dataset"].nunique()), 4), squeeze=False)
    for ax, (data, g) in zip(axes[0], dyn.groupby("dataset")):
        for b, gb in g.groupby("backbone"):
            m = gb.groupby("sparsity")["mae_pruned"].mean()
            d = gb["mae_dense"].mean()
            ax.plot([0.0, *m.index], [d, *m.values], marker="o", label=b)
        ax.set_title(data)
        ax.set_xlabel("sparsity (fraction of sensors switched off)")
        ax.set_ylabel("test MAE, full field")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "accuracy_vs_sparsity.png", dpi=120)
    plt.close(fig)
    paths["plot"] = out / "accuracy_vs_sparsity.png"
    return paths


def suite(options: DynstBenchOptions, console) -> int:
    """``sparsest bench --suite dynst``: train (or ``from_runs``: rebuild) and print the tables."""
    if options.from_runs:
        paths = tables_from_runs(options.from_runs, options.out, options.table1_sparsity)
    else:
        opts = dict(options.run_options)
        for key in ("epochs", "data_dir"):
            if getattr(options, key) is not None:
                opts[key] = getattr(options, key)
        for scheme in options.schemes or ["dynst"]:  # every per-run option checked before the first run
            build_options(RunConfig, ("--set", scheme_options({**opts, "scheme": scheme})))
        paths = run_bench(dataclasses.replace(options, run_options=opts), console=console)
    for name in ("table1", "table2", "table4"):
        console.print(paths[name].read_text(), markup=False, highlight=False)
    console.print(f"written: {', '.join(str(p) for p in paths.values())}")
    return 0
