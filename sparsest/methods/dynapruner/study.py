"""Dyna-Pruner Tables III (sensitivity to the sparsity targets) and IV (ablation) from one
shared dense pre-training.

Paper: Zhang et al., arXiv:2606.15346, Sec. III-H / Table III (SimVP at (s_d, s_w) =
(0.5, 0.5), (0.7, 0.5), (0.7, 0.7), (0.9, 0.7), (0.9, 0.9): MSE, GFLOPs, latency) and
Sec. III-I / Table IV (dense; DP only; MP only; DP + MP "independent", i.e. without the
shared importance map; the full method with synergy). Our reading of the method:
``../shared/design/METHODS.md`` section 2 and :mod:`sparsest.pruning.adaptive`.

:func:`run_study` does what :func:`sparsest.methods.dynapruner.run.compress` does for Table I, for many
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
measured together, interleaved, at batch size 1 (:func:`sparsest.methods.dynapruner.measure.measure`):
GFLOPs per window and ms per window, Dyna-Pruner variants on their gated path (each
window computes only its active channels). The run is written to
``<out>/<time>_<data>_<backbone>_dynapruner-study_t<tables>_seed<k>/`` (``.partial`` until
finished) with ``config.yaml``, ``metrics.json`` (``method: "dynapruner-study"``, one entry
per row under ``rows``), ``checkpoints/`` and ``logs/``;
:func:`sparsest.bench.dynapruner.study_tables` turns such runs into Tables III and IV
(``sparsest bench --suite dyna-pruner --tables 3 4``). Every row is a resumable phase.
"""

from __future__ import annotations

import copy
import time
from pathlib import Path

import lightning as L
import torch

from ...backbones import create_backbone
from ...engine.module import evaluate
from ...engine.run import RunDirectory
from ...errors import ConfigError
from ...pruning.adaptive import DynaPruner, l1_prune_gates
from .config import CompressConfig
from .measure import mask_stats, measure, metrics_of, samples
from .run import fit_row, start_grid

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


def run_study(config: CompressConfig, tables=STUDY_TABLES, settings=SENSITIVITY, console=None,
              resume: RunDirectory | None = None) -> tuple[Path, dict]:
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
    say, prep = start_grid(config, console)
    data = prep.data
    t_start = prep.t_start
    stem = (f"{time.strftime('%Y%m%d-%H%M%S')}_{data.name}_{config.backbone}_{METHOD}_t{''.join(map(str, tables))}"
            f"_seed{config.seed}")
    rd = resume or RunDirectory.create(config.out, stem, config.to_dict())
    with rd.guard():
        rd.write_json("study.json", {"tables": tables, "settings": [list(s) for s in settings]})
        return _study(config, prep, rd, say, rows, tables, settings, t_start)


def _study(config, prep, rd, say, rows, tables, settings, t_start):
    data, spec = prep.data, prep.spec
    pre_epochs = config.pretrain_epochs or config.epochs
    say(f"[bold]Dyna-Pruner study[/] Tables {', '.join(map(str, tables))} on {data.name} / {config.backbone}: "
        f"{len(rows)} rows, {pre_epochs} shared pre-training epochs + {config.epochs} per row")

    t0 = time.perf_counter()
    backbone = create_backbone(config.backbone, spec, **config.backbone_options)
    fit_row(backbone, prep, config, rd, "pretrain", pre_epochs)
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
        val = fit_row(model, prep, config, rd, key, config.epochs)
        models[key] = model.eval()
        info[key] = {"kind": kind, "data_sparsity": sd, "model_sparsity": sw, "val_mae": val, "train_s": time.perf_counter() - t0}

    say("[bold]evaluation[/] test MSE / MAE, mask statistics")
    for key, m in models.items():
        info[key].update(metrics_of(evaluate(m, prep.loaders["test"], prep.scaler, spec.horizon)["all"]))
        info[key].update(mask_stats(m, prep.loaders["test"]))

    say("[bold]efficiency[/] GFLOPs and batch-1 latency, all rows interleaved (gated path)")
    windows = samples(prep.loaders["test"].dataset, config.latency_samples)
    wrappers = [m for m in models.values() if isinstance(m, DynaPruner)]
    for m in wrappers:
        m.mode = "gated"
    try:
        torch.manual_seed(config.seed)
        costs = measure({k: (m, None) for k, m in models.items()}, windows, None, config.bench_repeats)
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
                    "samples": len(windows), "repeats": config.bench_repeats, "per": "window"},
        "rows": info,
        "time_s": {**times, **{k: v["train_s"] for k, v in info.items()}, "total": time.perf_counter() - t_start},
    }
    rd.write_json("metrics.json", metrics)
    return rd.finish(cleanup=("checkpoints/*-last.ckpt",)), metrics
