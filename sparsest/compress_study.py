"""Dyna-Pruner Tables III (sensitivity to the sparsity targets) and IV (ablation) from one
shared dense pre-training.

Paper: Zhang et al., arXiv:2606.15346, Sec. III-H / Table III (SimVP at (s_d, s_w) =
(0.5, 0.5), (0.7, 0.5), (0.7, 0.7), (0.9, 0.7), (0.9, 0.9): MSE, GFLOPs, latency) and
Sec. III-I / Table IV (dense; DP only; MP only; DP + MP "independent", i.e. without the
shared importance map; the full method with synergy). Our reading of the method:
``../shared/design/METHODS.md`` section 2 and :mod:`sparsest.pruning.adaptive`.

:func:`run_study` does what :func:`sparsest.compress.compress` does for Table I, for many
settings at once: the dense backbone is pre-trained **once** (``pretrain_epochs``), then every
row starts from those weights and gets the same ``epochs`` more epochs (best validation
epoch kept; every row sees the same batches in the same order):

==================  ==========================================================================
row                 model
==================  ==========================================================================
dense               the pre-trained backbone, trained on
dyna (s_d, s_w)     :class:`~sparsest.pruning.adaptive.DynaPruner` at that setting (Table III
                    rows; the full method of Table IV at the default setting)
DP only             ``DynaPruner(s_d, s_w=0)``: the generator's data mask, no channel gating
MP only             ``DynaPruner(s_d=0, s_w)``: channel gating from S, the input not masked
independent         ``DynaPruner(s_d, s_w=0)`` plus static L1-norm channel pruning of the same
                    gated layers at ratio s_w (:func:`~sparsest.pruning.adaptive.l1_prune_gates`,
                    the MP baseline's selection): the data mask and the channels are chosen
                    independently (channels by weight norm, not by S), no synergy
==================  ==========================================================================

Every model is then evaluated on the test split (MSE / MAE in physical units), and all are
measured together, interleaved, at batch size 1 (:func:`sparsest.compress.measure`):
GFLOPs per window and ms per window, Dyna-Pruner variants on their gated path (each
window computes only its active channels). The run is written to
``<out>/<time>_<data>_<backbone>_dynapruner-study_t<tables>_seed<k>/`` (``.partial`` until
finished) with ``config.json``, ``metrics.json`` (``method: "dynapruner-study"``, one entry
per row under ``rows``), ``checkpoints/`` and ``logs/``; :func:`study_tables` and
:func:`write_study_tables` turn such runs into Tables III and IV
(``sparsest bench --suite dyna-pruner --tables 3 4``).

Library code: reads no argv or config files.
"""

from __future__ import annotations

import copy
import json
import os
import time
from pathlib import Path

import lightning as L
import torch

from .backbones import create_backbone
from .compress import AdaptiveModule, CompressConfig, _fit, _metrics, _samples, measure, start_run
from .engine.module import evaluate
from .errors import ConfigError
from .experiment import _unique_dir
from .pruning.adaptive import DynaPruner, l1_prune_gates

SENSITIVITY = ((0.5, 0.5), (0.7, 0.5), (0.7, 0.7), (0.9, 0.7), (0.9, 0.9))  # paper Table III
STUDY_TABLES = (3, 4)
METHOD = "dynapruner-study"
ABLATION_ROWS = (  # Table IV: (name, DP, MP, synergy)
    ("Dense", False, False, False),
    ("DP only", True, False, False),
    ("MP only", False, True, False),
    ("DP + MP, independent (L1 channels)", True, True, False),
    ("Dyna-Pruner (DP + MP + synergy)", True, True, True),
)


def row_key(kind: str, data_sparsity: float = 0.0, model_sparsity: float = 0.0) -> str:
    """Name of a row in ``metrics.json`` ``rows``: ``"dense"``, ``"dyna_sd0.7_sw0.7"``
    (``sw0`` = DP only, ``sd0`` = MP only) or ``"independent_sd0.7_l1r0.7"``.

    Raises:
        ValueError: unknown ``kind``.
    """
    if kind == "dense":
        return "dense"
    if kind == "dyna":
        return f"dyna_sd{data_sparsity:g}_sw{model_sparsity:g}"
    if kind == "independent":
        return f"independent_sd{data_sparsity:g}_l1r{model_sparsity:g}"
    raise ValueError(f"row kind must be dense, dyna or independent, got {kind!r}")


def plan_rows(tables, settings, data_sparsity: float, model_sparsity: float) -> list[tuple[str, float, float]]:
    """The rows a study trains, each once: ``[(kind, s_d, s_w), ...]`` (dense first).

    Args:
        tables: subset of ``(3, 4)``.
        settings: Table III's ``(s_d, s_w)`` pairs (used if 3 in ``tables``).
        data_sparsity, model_sparsity: the default setting: Table IV's full method; DP only
            keeps its s_d, MP only its s_w, the independent row uses both.

    Raises:
        ConfigError: empty or unknown tables, a setting outside [0, 1) or with both 0, or
            Table IV with a default setting that has a 0 (nothing left to ablate).
    """
    tables = sorted({int(t) for t in tables})
    if not tables or not set(tables) <= set(STUDY_TABLES):
        raise ConfigError(f"--tables: a study makes Tables 3 and / or 4, got {tables}")
    rows = [("dense", 0.0, 0.0)]
    if 3 in tables:
        if not settings:
            raise ConfigError("Table III: no (s_d, s_w) setting given")
        for sd, sw in settings:
            if not (0 <= sd < 1 and 0 <= sw < 1) or (sd == 0 and sw == 0):
                raise ConfigError(f"Table III setting (s_d={sd}, s_w={sw}): each must be in [0, 1), not both 0")
            rows.append(("dyna", float(sd), float(sw)))
    if 4 in tables:
        sd, sw = float(data_sparsity), float(model_sparsity)
        if not (0 < sd < 1 and 0 < sw < 1):
            raise ConfigError(f"Table IV ablates s_d and s_w: both must be in (0, 1), got s_d={sd}, s_w={sw}")
        rows += [("dyna", sd, sw), ("dyna", sd, 0.0), ("dyna", 0.0, sw), ("independent", sd, sw)]
    seen, out = set(), []
    for r in rows:
        if row_key(*r) not in seen:
            seen.add(row_key(*r))
            out.append(r)
    return out


@torch.no_grad()
def _mask_stats(model, loader) -> dict:
    """Mean share of gated units computed and of pixels kept per test window (masked mode)."""
    if not isinstance(model, DynaPruner):
        return {"units_active": 1.0, "pixels_kept": 1.0}
    kept = torch.tensor([g.n_units if g.keep is None else g.keep.numel() for g in model.gates], dtype=torch.float)
    static = float(kept.sum()) / sum(model.sizes)
    units, pixels = [], []
    model.eval()
    for batch in loader:
        model(batch["x"], batch["tod"], batch["dow"])
        units.append(model.last["filter_mask"].detach().mean(1))
        pixels.append(model.last["data_mask"].detach().flatten(1).mean(1))
    return {"units_active": float(torch.cat(units).mean()) * static, "pixels_kept": float(torch.cat(pixels).mean())}


def run_study(config: CompressConfig, tables=STUDY_TABLES, settings=SENSITIVITY, console=None) -> tuple[Path, dict]:
    """Train and measure the rows of Tables III and / or IV (module doc); return
    ``(run_dir, metrics)``.

    Args:
        config: data, backbone, budget (``pretrain_epochs``, ``epochs``), the default
            setting (``data_sparsity``, ``model_sparsity``: Table IV's full method), fill,
            ``latency_samples`` / ``bench_repeats`` of the batch-1 measurement. ``baselines``,
            ``min_usage`` and ``n_maps`` are not used.
        tables: which tables, a subset of ``(3, 4)``.
        settings: Table III's ``(s_d, s_w)`` pairs (default: the paper's five).

    Returns:
        the run directory and ``metrics.json`` as a dict: ``rows`` maps :func:`row_key` to
        ``{"kind", "data_sparsity", "model_sparsity", "mse" [units²], "mae" [units], "rmse",
        "gflops" [per window], "latency_ms_b1" [ms per window], "units_active",
        "pixels_kept" [mean share per test window], "val_mae" [scaled], "train_s"}``.

    Raises:
        SparsestError: bad options or data (one-line message naming the option / file).
    """
    config.check()
    rows = plan_rows(tables, settings, config.data_sparsity, config.model_sparsity)
    tables = sorted({int(t) for t in tables})
    say, t_start, rc, prep = start_run(config, console)
    data, spec = prep.data, prep.spec
    stem = (f"{time.strftime('%Y%m%d-%H%M%S')}_{data.name}_{config.backbone}_{METHOD}_t{''.join(map(str, tables))}"
            f"_seed{config.seed}")
    final_dir = _unique_dir(Path(config.out), stem)
    run_dir = final_dir.with_name(final_dir.name + ".partial")
    run_dir.mkdir(parents=True)
    (run_dir / "config.json").write_text(json.dumps({**config.to_dict(), "tables": tables, "settings": [list(s) for s in settings]}, indent=2))
    pre_epochs = config.pretrain_epochs or config.epochs
    say(f"[bold]Dyna-Pruner study[/] Tables {', '.join(map(str, tables))} on {data.name} / {config.backbone}: "
        f"{len(rows)} rows, {pre_epochs} shared pre-training epochs + {config.epochs} per row")

    def module_for(model):
        return AdaptiveModule(model, prep.scaler, config.lr, config.weight_decay, config.tau_lr)

    t0 = time.perf_counter()
    backbone = create_backbone(config.backbone, spec, **config.backbone_options)
    _fit(rc, module_for(backbone), prep, run_dir, "pretrain", pre_epochs)
    pretrained = copy.deepcopy(backbone)
    times = {"pretrain": time.perf_counter() - t0}

    models, info = {}, {}
    for i, (kind, sd, sw) in enumerate(rows, 1):
        key = row_key(kind, sd, sw)
        say(f"[{i}/{len(rows)}] {key}: {config.epochs} epochs")
        L.seed_everything(config.seed, verbose=False)
        t0 = time.perf_counter()
        if kind == "dense":
            model = backbone
        else:
            model = DynaPruner(copy.deepcopy(pretrained), spec, sd, sw if kind == "dyna" else 0.0, policy="dyna", fill=config.fill)
            if kind == "independent":
                l1_prune_gates(model.gates, sw)
            model.calibrate_thresholds(next(iter(prep.loaders["train"]))["x"])
        prep.loaders["train"].generator.manual_seed(config.seed + 1)  # the same batches, in the same order, for every row
        val = _fit(rc, module_for(model), prep, run_dir, key, config.epochs)
        models[key] = model.eval()
        info[key] = {"kind": kind, "data_sparsity": sd, "model_sparsity": sw, "val_mae": val, "train_s": time.perf_counter() - t0}

    say("[bold]evaluation[/] test MSE / MAE, mask statistics")
    for key, m in models.items():
        info[key].update(_metrics(evaluate(m, prep.loaders["test"], prep.scaler, spec.horizon)["all"]))
        info[key].update(_mask_stats(m, prep.loaders["test"]))

    say("[bold]efficiency[/] GFLOPs and batch-1 latency, all rows interleaved (gated path)")
    samples = _samples(prep.loaders["test"].dataset, config.latency_samples)
    wrappers = [m for m in models.values() if isinstance(m, DynaPruner)]
    for m in wrappers:
        m.mode = "gated"
    try:
        torch.manual_seed(config.seed)
        costs = measure({k: (m, None) for k, m in models.items()}, samples, None, config.bench_repeats)
    finally:
        for m in wrappers:
            m.mode = "masked"
    for key, c in costs.items():
        info[key].update(gflops=c["gflops"], latency_ms_b1=c["latency_ms_b1"])

    metrics = {
        "method": METHOD, "tables": tables, "data": data.name, "backbone": config.backbone, "seed": config.seed,
        "units": data.units, "window": spec.window, "horizon": spec.horizon, "fill": config.fill,
        "epochs": config.epochs, "pretrain_epochs": pre_epochs,
        "default": {"data_sparsity": config.data_sparsity, "model_sparsity": config.model_sparsity},
        "settings": [list(s) for s in settings] if 3 in tables else [],
        "latency": {"path": "batch 1, one window at a time; Dyna-Pruner rows gated (active channels only)",
                    "samples": len(samples), "repeats": config.bench_repeats, "per": "window"},
        "rows": info,
        "time_s": {**times, **{k: v["train_s"] for k, v in info.items()}, "total": time.perf_counter() - t_start},
    }
    (run_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
    os.replace(run_dir, final_dir)
    return final_dir, metrics


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
    from .bench import _md

    out.mkdir(parents=True, exist_ok=True)
    frames = dict(zip(STUDY_TABLES, study_tables(metrics_list)))
    paths = {}
    for t in sorted(set(tables)):
        df = frames[t]
        if df.empty:
            raise ConfigError(f"--tables {t}: no Dyna-Pruner study run made Table {'III' if t == 3 else 'IV'}")
        name = f"dynapruner_table{t}"
        df.to_csv(out / f"{name}.csv", index=False)
        (out / f"{name}.md").write_text(f"### {TITLES[t]}\n\n{header}\n\n{_md(df)}\n")
        paths[name] = out / f"{name}.md"
    return paths


__all__ = ["run_study", "plan_rows", "row_key", "study_tables", "write_study_tables", "SENSITIVITY", "STUDY_TABLES",
           "ABLATION_ROWS", "METHOD"]
