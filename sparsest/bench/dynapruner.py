"""``sparsest bench --suite dyna-pruner``: Dyna-Pruner Tables I-IV.

Tables I (accuracy and cost vs dense, MP and random) and II (robustness) come from one
``sparsest compress`` run per data set x backbone x seed; Tables III (sensitivity to s_d,
s_w) and IV (ablation) from one study run (:func:`sparsest.methods.dynapruner.study.run_study`).
Paper: Zhang et al., arXiv:2606.15346.
"""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path

import torch

from ..engine.options import build_options
from ..errors import ConfigError
from ..methods.dynapruner.config import CompressConfig
from ..methods.dynapruner.run import compress, summary
from ..methods.dynapruner.study import ABLATION_ROWS, STUDY_TABLES, row_key, run_study
from ..methods.dynapruner.study import METHOD as STUDY
from .options import DynaPrunerBenchOptions
from .tables import markdown

def table_rows(metrics_list: list[tuple[dict, Path | None]]):
    """Table I (one row per backbone x method) and Table II (robustness) as DataFrames."""
    import pandas as pd

    t1, t2 = [], []
    for m, run_dir in metrics_list:
        base = {"dataset": m["data"], "backbone": m["backbone"], "seed": m["seed"]}
        dense_mse, dense_gf = m["mse"]["dense"], m["gflops"]["dense"]
        rows = [("Dense", m["mse"]["dense"], m["mae"]["dense"], m["gflops"]["dense"], m["latency_ms_b1"]["dense"], m["latency_ms_b64"]["dense"])]
        if "mp" in m:
            r = m["mp"]
            rows.append(("MP (L1, matched FLOPs)", r["mse"], r["mae"], r["gflops"], r["latency_ms_b1"], r.get("latency_ms_b64")))
            r = m["random"]
            rows.append(("Random", r["mse"], r["mae"], r["gflops"], r["latency_ms_b1"], r.get("latency_ms_b64")))
        rows.append(("Dyna-Pruner", m["mse"]["pruned"], m["mae"]["pruned"], m["gflops"]["pruned"], m["latency_ms_b1"]["pruned"],
                     m["latency_ms_b64"]["pruned"]))
        for method, mse, mae, gf, l1, l64 in rows:
            t1.append({**base, "method": method, "mse": mse, "mse_change_%": 100 * (mse / dense_mse - 1), "mae": mae,
                       "gflops": gf, "gflops_change_%": 100 * (gf / dense_gf - 1), "latency_ms_b1": l1,
                       "speedup_b1": m["latency_ms_b1"]["dense"] / l1 if l1 else None,
                       "latency_ms_b64": l64, "speedup_b64": (m["latency_ms_b64"]["dense"] / l64) if l64 else None,
                       "run_dir": str(run_dir) if run_dir else ""})
        names = {"dense": "Dense", "random": "Random", "dyna": "Dyna-Pruner"}
        for key, r in m["robustness"].items():
            row = {**base, "method": names[key], "clean_mse": r["clean"]}
            for k, v in r.items():
                if k != "clean":
                    row[k] = v
                    row[k + "_change_%"] = None if v is None else 100 * (v / r["clean"] - 1)
            t2.append(row)
    return pd.DataFrame(t1), pd.DataFrame(t2)


def write_bench_tables(metrics_list, out: Path, header: str) -> dict[str, Path]:
    """Write ``dynapruner_table1.{md,csv}`` and ``dynapruner_table2.{md,csv}`` under ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    t1, t2 = table_rows(metrics_list)
    paths = {}
    for name, df, title in (("dynapruner_table1", t1.drop(columns=["run_dir"]), "Table I: Dyna-Pruner vs dense, MP and random (test MSE / MAE, GFLOPs per sample, latency)"),
                            ("dynapruner_table2", t2, "Table II: robustness, test MSE under Gaussian input noise (sigma, scaled units) and mask failure")):
        df.to_csv(out / f"{name}.csv", index=False)
        (out / f"{name}.md").write_text(f"### {title}\n\n{header}\n\n{markdown(df)}\n")
        paths[name] = out / f"{name}.md"
    t1.to_csv(out / "dynapruner_runs.csv", index=False)
    return paths


def _row(m: dict, key: str) -> dict | None:
    return m["rows"].get(key)


def _cells(r: dict | None, dense: dict) -> dict:
    """MSE, GFLOPs, latency and each divided by the dense row's (None where not run)."""
    if r is None:
        return {k: None for k in ("mse", "mse_x_dense", "gflops", "gflops_x_dense", "latency_ms_b1", "latency_x_dense")}
    return {"mse": r["mse"], "mse_x_dense": r["mse"] / dense["mse"], "gflops": r["gflops"], "gflops_x_dense": r["gflops"] / dense["gflops"],
            "latency_ms_b1": r["latency_ms_b1"], "latency_x_dense": r["latency_ms_b1"] / dense["latency_ms_b1"]}


def study_tables(metrics_list: list[tuple[dict, Path | None]]):
    """Tables III and IV as DataFrames from study runs (``metrics.json`` dicts of
    :func:`run_study`, each with its run directory or None).

    Table III: per run, the dense row then one row per ``(s_d, s_w)`` setting; Table IV:
    per run, the five rows of :data:`ABLATION_ROWS`. Columns: ``dataset``, ``backbone``,
    ``seed``, row labels, ``mse`` [units²], ``gflops`` [per window], ``latency_ms_b1`` [ms
    per window] and each divided by the run's dense row (``*_x_dense``). Runs without a
    table's rows contribute nothing to it.

    Returns:
        ``(table3, table4)``, ``pandas.DataFrame`` each (possibly empty).
    """
    import pandas as pd

    t3, t4 = [], []
    for m, _ in metrics_list:
        base = {"dataset": m["data"], "backbone": m["backbone"], "seed": m["seed"]}
        dense = _row(m, "dense")
        sd0, sw0 = m["default"]["data_sparsity"], m["default"]["model_sparsity"]
        if 3 in m["tables"]:
            t3.append({**base, "row": "dense", "s_d": 0.0, "s_w": 0.0, **_cells(dense, dense)})
            for sd, sw in m["settings"]:
                label = "Dyna-Pruner (default)" if (sd, sw) == (sd0, sw0) else "Dyna-Pruner"
                t3.append({**base, "row": label, "s_d": sd, "s_w": sw, **_cells(_row(m, row_key("dyna", sd, sw)), dense)})
        if 4 in m["tables"]:
            keys = ("dense", row_key("dyna", sd0, 0.0), row_key("dyna", 0.0, sw0), row_key("independent", sd0, sw0), row_key("dyna", sd0, sw0))
            sparsities = ((0.0, 0.0), (sd0, 0.0), (0.0, sw0), (sd0, sw0), (sd0, sw0))
            for (name, dp, mp, syn), key, (sd, sw) in zip(ABLATION_ROWS, keys, sparsities):
                t4.append({**base, "row": name, "DP": "✓" if dp else "", "MP": "✓" if mp else "", "synergy": "✓" if syn else "",
                           "s_d": sd, "s_w": sw, **_cells(_row(m, key), dense)})
    return pd.DataFrame(t3), pd.DataFrame(t4)


TITLES = {
    3: "Table III: sensitivity to the sparsity targets (test MSE, GFLOPs per window, batch-1 latency per window; x dense = ratio to the dense row)",
    4: "Table IV: ablation of the collaborative pruning (DP = data mask, MP = channel gating; independent = generator data mask + static L1 channels at ratio s_w)",
}


def write_study_tables(metrics_list: list[tuple[dict, Path | None]], out: Path, header: str, tables=STUDY_TABLES) -> dict[str, Path]:
    """Write ``dynapruner_table3.{md,csv}`` and / or ``dynapruner_table4.{md,csv}`` under ``out``.

    Raises:
        ConfigError: a requested table has no rows in ``metrics_list``.
    """
    out.mkdir(parents=True, exist_ok=True)
    frames = dict(zip(STUDY_TABLES, study_tables(metrics_list)))
    paths = {}
    for t in sorted(set(tables)):
        df = frames[t]
        if df.empty:
            raise ConfigError(f"--tables {t}: no Dyna-Pruner study run made Table {'III' if t == 3 else 'IV'}")
        name = f"dynapruner_table{t}"
        df.to_csv(out / f"{name}.csv", index=False)
        (out / f"{name}.md").write_text(f"### {TITLES[t]}\n\n{header}\n\n{markdown(df)}\n")
        paths[name] = out / f"{name}.md"
    return paths


def _grid_datasets(names, console) -> list[str]:
    from ..datasets import get_dataset_entry

    datasets = []
    for name in names:
        try:
            kind = get_dataset_entry(name).kind
        except Exception:  # noqa: BLE001 - a path: let compress() decide
            kind = "grid"
        if kind == "grid":
            datasets.append(name)
        else:
            console.print(f"dyna-pruner suite: skipping {name} ({kind} data; Dyna-Pruner gates grid backbones)")
    if not datasets:
        raise ConfigError("--datasets: the dyna-pruner suite needs a grid data set, e.g. era5-t2m-uk")
    return datasets


def suite_run_options(options: DynaPrunerBenchOptions) -> dict:
    """Compress options shared by every run of the suite (``--set``, ``--epochs``,
    ``--quick``, ``--data-dir``), checked.

    Raises:
        ConfigError: a bad ``--set`` key or value.
    """
    opts = dict(options.run_options)
    if options.epochs is not None:
        opts["epochs"] = options.epochs
    if options.quick:
        opts = {"epochs": 1, "limit_train_batches": 3, "bench_repeats": 3, "latency_samples": 2, "n_maps": 1, **opts}
    if options.data_dir is not None:
        opts["data_dir"] = options.data_dir
    build_options(CompressConfig, ("--set", opts))
    return opts


def suite(options: DynaPrunerBenchOptions, console) -> int:
    """``sparsest bench --suite dyna-pruner``: the paper's Tables I-IV of Dyna-Pruner.

    ``options.tables`` picks them (default 1 2): Tables I-II from one compress run per data
    set x backbone x seed (backbones default simvp convlstm tau); Tables III-IV from one
    study run per data set x backbone x seed (default simvp, as the paper). With
    ``from_runs`` nothing is trained: compress runs give Tables I-II, study runs Tables
    III-IV; without ``tables`` every table the runs support is written.

    Raises:
        ConfigError: no grid data set given, a bad per-run option, or (``from_runs``) no
            finished run for a requested table.
    """
    out = Path(options.out)
    requested = options.tables
    metrics_list, studies = [], []
    t0 = time.perf_counter()
    if options.from_runs:
        for d in options.from_runs:
            for mpath in sorted(Path(d).glob("*/metrics.json")):
                if mpath.parent.name.endswith(".partial"):
                    continue
                m = json.loads(mpath.read_text())
                if m.get("method") == "dynapruner":
                    metrics_list.append((m, mpath.parent))
                elif m.get("method") == STUDY:
                    studies.append((m, mpath.parent))
        if not metrics_list and not studies:
            raise ConfigError(f"--from-runs: no finished Dyna-Pruner run under {', '.join(options.from_runs)}")
        tables = set(requested) if requested else ({1, 2} if metrics_list else set()) | {t for m, _ in studies for t in m["tables"]}
        if tables & {1, 2} and not metrics_list:
            raise ConfigError(f"--tables 1 2: no finished compress run (Tables I-II) under {', '.join(options.from_runs)}")
        source = f"rebuilt from {len(metrics_list) + len(studies)} run directories"
    else:
        tables = set(requested or (1, 2))
        datasets = _grid_datasets(options.datasets, console)
        opts = suite_run_options(options)
        jobs = []
        if tables & {1, 2}:
            jobs += [("compress", d, b, s) for d in datasets for b in (options.backbones or ["simvp", "convlstm", "tau"]) for s in options.seeds]
        if tables & {3, 4}:
            jobs += [("study", d, b, s) for d in datasets for b in (options.backbones or ["simvp"]) for s in options.seeds]
        for i, (what, d, b, s) in enumerate(jobs, 1):
            console.print(f"[{i}/{len(jobs)}] {what} {d} {b} seed {s} ({time.perf_counter() - t0:.0f} s so far)")
            cfg = build_options(CompressConfig, ("--set", {**opts, "data": d, "backbone": b, "seed": s, "out": str(out / "runs")}))
            if what == "compress":
                run_dir, m = compress(cfg, console=console)
                summary(m, console, run_dir)
                metrics_list.append((m, run_dir))
            else:
                run_dir, m = run_study(cfg, tables=sorted(tables & {3, 4}), console=console)
                console.print(f"run directory: {run_dir}")
                studies.append((m, run_dir))
        source = f"{'quick' if options.quick else 'full'} mode; {(time.perf_counter() - t0) / 60:.1f} min"
    header = (f"Machine: {platform.machine()} CPU, {torch.get_num_threads()} threads, torch {torch.__version__}; "
              f"{time.strftime('%Y-%m-%d')}; {source}.")
    paths = {}
    if tables & {1, 2}:
        paths.update(write_bench_tables(metrics_list, out, header + " Latency: ms per sample at batch 1 (Dyna-Pruner: gated "
                                        "execution), ms per batch at 64 (Dyna-Pruner: static compact model), models interleaved "
                                        "in one measurement."))
    if tables & {3, 4}:
        budgets = sorted({f"{m['pretrain_epochs']} + {m['epochs']}" for m, _ in studies})
        paths.update(write_study_tables(studies, out, header + f" Epochs (shared dense pre-training + per row): {', '.join(budgets)}. "
                                        "Latency: ms per window at batch 1, Dyna-Pruner rows on their gated path, all rows of a "
                                        "run interleaved in one measurement.", sorted(tables & {3, 4})))
    for p in paths.values():
        console.print(p.read_text(), markup=False, highlight=False)
    console.print(f"written: {', '.join(str(p) for p in paths.values())}")
    return 0
