"""The phases ``sparsest run`` and ``sparsest plan`` share, one function each, so the two
commands train, fine-tune, evaluate and export the same way (:mod:`.run`, :mod:`.plan`).

- :func:`sensor_layout`: the sensors of the data (graph nodes or grid patches).
- :func:`train_dense`: phase ``dense`` (or the ``--dense-checkpoint`` loaded).
- :func:`finetune`: a fine-tuning phase of a fixed keep-set (cosine or constant schedule).
- :func:`test_metrics`, :func:`val_metrics`, :func:`measure_costs`, :func:`efficiency`: what the run reports.
- :func:`export`: the deployable model (``deploy/``).
- :func:`isolated_rng`: work that must not move the random-number streams of training.
- :func:`phase_seconds`: a phase's wall-clock, also across a resume.

Every training phase is resumable (:mod:`sparsest.engine.fit`).
"""

from __future__ import annotations

import shutil
import time
from contextlib import contextmanager
from pathlib import Path

import torch

from ...backbones import create_backbone
from ...efficiency import compare_dense_pruned, count_parameters
from ...engine.fit import fit_best, rng_state, set_rng_state
from ...engine.module import ForecastModule, evaluate
from ...engine.prepare import stack_batch
from ...engine.run import RunDirectory
from ...errors import ConfigError
from ...pruning.samples import EpochFractionLR
from ...pruning.sensors.layout import SensorLayout
from ...pruning.sensors.search import set_phase
from ...pruning.sensors.wrapper import SensorMaskedForecaster


SEARCH_BLOCKS = 5
"""dynst search: the training windows are cut into this many contiguous blocks, plus the
validation windows as one more, for the leave-one-block-out read-out error."""


@contextmanager
def isolated_rng():
    """Run the body without moving the global torch / numpy / Python generators (their
    states are restored after it). Evaluating and searching iterate data loaders, and each
    iteration draws a seed from torch's global generator; a resumed run that skips (or adds)
    such work must still hand every training phase the same random stream."""
    state = rng_state()
    try:
        yield
    finally:
        set_rng_state(state)


def val_metrics(model, prep) -> dict:
    """Validation metrics of ``model`` over the whole horizon (physical units, missing
    readings masked: ``mae``, ``rmse``, ``mse``, ...), without touching the random streams."""
    with isolated_rng():
        return evaluate(model, prep.loaders["val"], prep.scaler, prep.spec.horizon)["all"]


def sensor_layout(data, patch_size: int) -> SensorLayout:
    """The sensors of ``data``: its nodes (graph) or its ``patch_size`` patches (grid)."""
    return SensorLayout(data.kind, data.n_nodes if data.kind == "graph" else 0,
                        data.grid_shape if data.kind == "grid" else None, patch_size)


def readout_surrogate(prep, layout: SensorLayout, dense, batch_size: int):
    """The :class:`~sparsest.pruning.sensors.placement.ReadoutSurrogate` of the ``dynst``
    search: the dense forecaster's forecasts on the training windows (cut into
    :data:`SEARCH_BLOCKS` contiguous blocks) and the validation windows (one more block),
    for the held-out full-field error of a keep-set with a ridge kept-to-all read-out."""
    import numpy as np

    from ...pruning.sensors import placement as pl

    p2s = layout.pixel_to_sensor.numpy() if layout.kind == "grid" else None
    cols = [pl.forecast_columns(dense, prep.loaders[name].dataset, prep.scaler.mean, prep.scaler.std,
                                prep.data.kind, p2s, batch_size=batch_size) for name in ("train", "val")]
    x, y, obs = (np.concatenate([a, b]) for a, b in zip(*cols))
    n_t = len(cols[0][0])
    groups = np.concatenate([np.minimum(np.arange(n_t) * SEARCH_BLOCKS // n_t, SEARCH_BLOCKS - 1),
                             np.full(len(cols[1][0]), SEARCH_BLOCKS)])
    return pl.ReadoutSurrogate(x, y, obs, groups)


def train_loader(config, prep, epochs: int | None, prune: bool = True):
    """The training loader, extra callbacks and trainer options: plain shuffled loader, or the
    sample-pruning loader + callback when ``config.sample_pruning`` is set and ``prune``."""
    if not prune or config.sample_pruning == "none":
        return prep.loaders["train"], [], {}
    from ...pruning.samples import TRAINER_KWARGS, build_sample_pruning

    sp = build_sample_pruning(prep.loaders["train"].dataset, config.batch_size, config.pruning(), epochs, config.seed)
    return sp.loader, [sp.callback], dict(TRAINER_KWARGS)


def phase_started(rd: RunDirectory, name: str) -> bool:
    """Whether phase ``name`` has a checkpoint already (a resumed run continues or reloads it)."""
    return any((rd.checkpoints / f).exists() for f in (f"{name}.ckpt", f"{name}-last.ckpt"))


def phase_seconds(rd: RunDirectory, name: str, measured: float, started: bool) -> float:
    """Wall-clock seconds of phase ``name``: ``measured`` by this process, or, when the phase
    had ``started`` in an earlier process (resume), the phase's own clock (the last
    ``time_s`` of ``logs/<name>/metrics.csv``, :class:`~sparsest.engine.fit.WallClock`:
    training and validation of every epoch, across processes; ``measured`` when the phase
    has no such log, e.g. a dense model loaded with ``--dense-checkpoint``)."""
    if not started:
        return measured
    from ...report.rundir import read_curve

    path = rd.logs / name / "metrics.csv"
    curve = read_curve(path) if path.is_file() else None
    return float(curve["time_s"][-1]) if curve and curve["time_s"] else measured


def train_dense(config, prep, rd: RunDirectory, layout: SensorLayout, say=print, name: str = "dense",
                prune: bool = True) -> tuple[SensorMaskedForecaster, float]:
    """Phase ``name`` (default ``dense``): the backbone in its sensor-mask wrapper (every
    sensor kept), trained with early stopping on validation MAE (on the sample-pruned windows
    when ``config.sample_pruning`` is set and ``prune``), or loaded from ``config.dense_checkpoint``.

    Returns:
        ``(dense, seconds)``.

    Raises:
        ConfigError: a missing ``--dense-checkpoint`` or one that does not fit.
    """
    backbone = create_backbone(config.backbone, prep.spec, **config.backbone_options)
    dense = SensorMaskedForecaster(backbone, layout, mask_l1=config.mask_l1, mask_lr=config.mask_lr)
    set_phase(dense, "finetune")
    dense_module = ForecastModule(dense, prep.scaler, config.lr, config.weight_decay)
    t0, started = time.perf_counter(), phase_started(rd, name)
    if config.dense_checkpoint:
        src = Path(config.dense_checkpoint)
        if not src.is_file():
            raise ConfigError(f"--dense-checkpoint {src}: no such file")
        say(f"[bold]dense[/] loading {src}")
        try:
            dense_module.load_state_dict(torch.load(src, map_location="cpu", weights_only=True)["state_dict"])
        except (RuntimeError, KeyError, OSError, EOFError, ValueError) as e:
            raise ConfigError(f"--dense-checkpoint {src}: does not fit {config.backbone} on {prep.data.name} "
                              f"({str(e).splitlines()[0][:120] if str(e) else e.__class__.__name__})") from None
        if not (rd.checkpoints / "dense.ckpt").exists():
            shutil.copy(src, rd.checkpoints / "dense.ckpt")
    else:
        say(f"[bold]{name}[/] training {config.backbone} (at most {config.epochs} epochs, early stopping on validation MAE"
            + (f", windows pruned by {config.sample_pruning})" if prune and config.sample_pruning != "none" else ")"))
        loader, extra, kw = train_loader(config, prep, config.epochs, prune)
        fit_best(dense_module, loader, prep.loaders["val"], rd, name, config, max_epochs=config.epochs,
                 patience=config.patience, callbacks=extra, generators=[prep.generator], trainer_kwargs=kw)
    return dense, phase_seconds(rd, name, time.perf_counter() - t0, started)


def finetune(config, prep, rd: RunDirectory, module: ForecastModule, name: str, epochs: int, monitor: str = "val_mae",
             progress: bool = True, prune: bool = False) -> float:
    """Phase ``name``: the network and the kept-to-all propagation of ``module.model`` (a
    :class:`SensorMaskedForecaster`, keep-set fixed) trained on every training window (on the
    sample-pruned ones when ``prune`` and ``config.sample_pruning`` is set) for ``epochs``; ``config.finetune_schedule`` ``cosine`` (lr decays to 1% of ``config.lr``,
    every epoch runs) or ``constant`` (early stopping after ``config.patience``). The best
    validation epoch by ``monitor`` is kept, or the last one (``config.finetune_epoch``, cosine only).
    Returns its seconds."""
    model = module.model
    set_phase(model, "finetune")
    model.subset = True  # backbones with forward_subset run on kept sensors only
    t0, started = time.perf_counter(), phase_started(rd, name)
    if config.finetune_schedule == "cosine":  # the schedule sets the length: every epoch runs
        callbacks, patience = [EpochFractionLR(epochs)], None
    else:
        callbacks, patience = [], config.patience
    loader, extra, kw = train_loader(config, prep, epochs, prune)
    fit_best(module, loader, prep.loaders["val"], rd, name, config, max_epochs=epochs, patience=patience,
             callbacks=callbacks + extra, generators=[prep.generator], monitor=monitor, progress=progress, trainer_kwargs=kw,
             keep=config.finetune_epoch)  # "last" only with cosine: RunConfig.check refuses it with constant
    return phase_seconds(rd, name, time.perf_counter() - t0, started)


def test_metrics(prep, layout: SensorLayout, dense, pruned) -> dict:
    """Test metrics of dense and pruned: full field, kept sensors only, switched-off only
    (the keys of ``sparsest run``'s ``metrics.json``)."""
    kept_loc = layout.node_mask(pruned.keep)
    off_loc = layout.node_mask(~pruned.keep)
    masks = {"kept": kept_loc, "off": off_loc}
    dense_eval = evaluate(dense, prep.loaders["test"], prep.scaler, prep.spec.horizon, masks)
    pruned_eval = evaluate(pruned, prep.loaders["test"], prep.scaler, prep.spec.horizon, masks)
    return {"dense": dense_eval["all"], "pruned": pruned_eval["all"],
            "dense_kept_only": dense_eval["kept"], "pruned_kept_only": pruned_eval["kept"],
            "pruned_switched_off_only": pruned_eval["off"]}


def measure_costs(dense: torch.nn.Module, pruned: torch.nn.Module, dataset, batch: int = 64, repeats: int = 10) -> dict:
    """Latency (ms per forward at ``batch``), GFLOPs per sample, peak memory and parameters of
    dense and pruned, measured side by side (:func:`sparsest.efficiency.compare_dense_pruned`)."""
    b = stack_batch(dataset, batch)
    dense.eval()
    pruned.eval()
    c = compare_dense_pruned(
        lambda: dense(b["x"], b["tod"], b["dow"]),
        lambda: pruned(b["x"], b["tod"], b["dow"]),
        batch=batch,
        params=(count_parameters(dense), count_parameters(pruned)),
        repeats=repeats,
    )
    d = c.to_dict()
    d["gflops_dense"] /= batch  # per sample
    d["gflops_pruned"] /= batch
    return d


def efficiency(config, prep, dense, pruned) -> dict:
    """``latency_ms``, ``gflops`` and ``costs`` (batch 1 and ``config.bench_batch``) of
    ``metrics.json``: the dense backbone against the pruned model, side by side."""
    costs = [measure_costs(dense.backbone, pruned, prep.loaders["test"].dataset, batch=b, repeats=config.bench_repeats)
             for b in sorted({1, config.bench_batch})]
    main_cost = costs[-1]
    return {
        "latency_ms": {"dense": main_cost["latency_ms_dense"], "pruned": main_cost["latency_ms_pruned"],
                       "batch": main_cost["batch"], "speedup": main_cost["speedup"]},
        "gflops": {"dense": main_cost["gflops_dense"], "pruned": main_cost["gflops_pruned"], "per": "sample",
                   "ratio": main_cost["flops_ratio"]},
        "costs": costs,
    }


def export(prep, rd: RunDirectory, layout: SensorLayout, pruned) -> None:
    """``deploy/model.ts`` and ``deploy/sensors.json`` (:func:`sparsest.deploy.export_pruned`),
    rewritten whole (a resumed run may have been killed while exporting)."""
    from ...deploy import export_pruned, time_info
    from ...report import sensor_ids

    deploy = rd.path / "deploy"
    if deploy.exists():
        shutil.rmtree(deploy)
    export_pruned(pruned, prep.scaler, stack_batch(prep.loaders["test"].dataset, 2), deploy, sensor_ids(prep.data, layout),
                  prep.data.units, time=time_info(prep.data, prep.day_of_week))


__all__ = ["SEARCH_BLOCKS", "isolated_rng", "phase_started", "phase_seconds", "readout_surrogate", "sensor_layout", "train_loader", "train_dense", "finetune",
           "test_metrics", "measure_costs", "efficiency", "export"]
