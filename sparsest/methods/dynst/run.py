"""``run(config)``: the DynST sensor-pruning job end to end, on the engine.

1. Prologue (:func:`sparsest.engine.prepare.start`): options checked, seed, data loaded,
   chronological split, scaler fitted on train only.
2. Persistence and historical-average baselines on the test split.
3. Phase ``dense``: the backbone trained with early stopping on validation MAE.
4. The keep-set: the default ``dynst`` starts from the QR placement of the training
   snapshots and exchanges sensors while the held-out full-field error of the dense model
   with a linear read-out drops (:mod:`sparsest.pruning.sensors.placement`); ``qr`` and
   ``keep-set`` are fixed before training; the training searches (dynst-paper, iterative,
   one-shot, dst) run as phase ``search`` from the dense weights
   (:mod:`sparsest.pruning.sensors.search`). Phase ``pruned``: the same fine-tuning for
   every scheme, keep-set fixed.
5. Test metrics of dense and pruned on the full field and on kept sensors only, measured
   latency / FLOPs, outputs and the deployable model, in one run directory.

Every phase is resumable (``sparsest run --resume RUN_DIR``, :mod:`sparsest.engine.fit`).

Source: Wu et al., DynST, KDD 2025 (arXiv:2403.02914), Alg. 1, Eqs. 3-7.
"""

from __future__ import annotations

import copy
import shutil
import time
from pathlib import Path

import numpy as np
import torch

from ...backbones import create_backbone
from ...efficiency import compare_dense_pruned, count_parameters
from ...engine.fit import fit_best, fit_steps
from ...engine.module import ForecastModule, evaluate
from ...engine.prepare import baselines, stack_batch, start
from ...engine.run import RunDirectory
from ...errors import ConfigError
from ...pruning.samples import EpochFractionLR
from ...pruning.sensors.layout import SensorLayout
from ...pruning.sensors.options import PLACEMENT_SCHEMES
from ...pruning.sensors.search import SearchSettings, SensorSearch, build_plan, init_keep, plan_steps, set_phase
from ...pruning.sensors.wrapper import SensorMaskedForecaster
from .config import RunConfig

SEARCH_BLOCKS = 5
"""dynst search: the training windows are cut into this many contiguous blocks, plus the
validation windows as one more, for the leave-one-block-out read-out error."""

RESUME_ONLY = ("checkpoints/*-last.ckpt", "checkpoints/*.tmp")


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


def _train_loader(config: RunConfig, prep, epochs: int | None, prune: bool = True):
    """The training loader, extra callbacks and trainer options: plain shuffled loader, or the
    sample-pruning loader + callback when ``config.sample_pruning`` is set and ``prune``."""
    if not prune or config.sample_pruning == "none":
        return prep.loaders["train"], [], {}
    from ...pruning.samples import TRAINER_KWARGS, build_sample_pruning

    sp = build_sample_pruning(prep.loaders["train"].dataset, config.batch_size, config.pruning(), epochs, config.seed)
    return sp.loader, [sp.callback], dict(TRAINER_KWARGS)


def placement(config: RunConfig, prep, layout: SensorLayout, dense=None, say=print) -> tuple[np.ndarray | None, dict]:
    """The keep-set of a placement scheme, fitted without test data; ``(None, {})`` for the
    schemes that search by training (dynst-paper, iterative, one-shot, dst) and random.

    - ``qr``: PySensors QR pivoting on the training snapshots.
    - ``keep-set``: the user's file.
    - ``dynst`` (default): the QR keep-set, then drop / regrow exchanges that lower the
      held-out full-field MAE of ``dense`` (the trained dense forecaster) with a ridge
      kept-to-all read-out, leave one time block out over the training and validation
      windows (:func:`~sparsest.pruning.sensors.placement.swap_search`).

    Returns:
        ``keep`` ``[N_s]`` bool (or None) and ``info`` (scheme, seconds, QR modes, swaps).

    Raises:
        ConfigError: a bad ``--keep-set`` file or ``--qr-modes`` out of range.
    """
    if config.scheme not in PLACEMENT_SCHEMES:
        return None, {}
    from ...pruning.masks import n_to_prune
    from ...pruning.sensors import placement as pl
    from ...report import sensor_ids

    t0 = time.perf_counter()
    info: dict = {"scheme": config.scheme, "from": {"keep-set": "your file", "qr": "training split only"}.get(
        config.scheme, "training and validation windows")}
    n_s = layout.n_sensors
    if config.scheme == "keep-set":
        keep = pl.read_keep_set(config.keep_set, sensor_ids(prep.data, layout))
        info["file"] = str(config.keep_set)
    else:
        p2s = layout.pixel_to_sensor.numpy() if layout.kind == "grid" else None
        n_off = n_to_prune(n_s, config.sensor_sparsity)
        z = pl.snapshot_matrix(prep.data.values, prep.data.kind, prep.split.train, prep.scaler.mean, prep.scaler.std, p2s)
        selected = pl.qr_ranking(z, n_s - n_off, config.qr_modes, seed=config.seed)
        keep = pl.keep_from_selected(selected, n_s)
        info["qr_modes"] = pl.qr_modes(z.shape, n_s - n_off, config.qr_modes)
        info["snapshots"] = int(z.shape[0])
        if config.scheme == "dynst" and config.max_swaps > 0 and 0 < n_off:
            cols = [pl.forecast_columns(dense, prep.loaders[name].dataset, prep.scaler.mean, prep.scaler.std,
                                        prep.data.kind, p2s, batch_size=config.batch_size) for name in ("train", "val")]
            x, y, obs = (np.concatenate([a, b]) for a, b in zip(*cols))
            n_t = len(cols[0][0])
            groups = np.concatenate([np.minimum(np.arange(n_t) * SEARCH_BLOCKS // n_t, SEARCH_BLOCKS - 1),
                                     np.full(len(cols[1][0]), SEARCH_BLOCKS)])
            sur = pl.ReadoutSurrogate(x, y, obs, groups)
            keep, swaps = pl.swap_search(keep, sur, config.swap_candidates, config.max_swaps)
            info["swaps"] = len(swaps) - 1
            info["heldout_mae_std"] = [swaps[0]["heldout_mae_std"], swaps[-1]["heldout_mae_std"]]
            info["exchanges"] = [(h["dropped"], h["regrown"]) for h in swaps[1:]]
            say(f"  drop / regrow from the QR keep-set: {info['swaps']} exchanges, held-out full-field MAE of the "
                f"read-out {info['heldout_mae_std'][0]:.4f} -> {info['heldout_mae_std'][1]:.4f} (standardised)")
    info["seconds"] = time.perf_counter() - t0
    return keep, info


def run_name(config: RunConfig, data_name: str) -> str:
    """``<time>_<data>_<backbone>_<scheme>_s<sensor sparsity>_seed<k>`` (keep-set: no sparsity)."""
    tag = "keep-set" if config.scheme == "keep-set" else f"{config.scheme}_s{config.sensor_sparsity:g}"
    return f"{time.strftime('%Y%m%d-%H%M%S')}_{data_name}_{config.backbone}_{tag}_seed{config.seed}"


def run(config: RunConfig, console=None, resume: RunDirectory | None = None) -> tuple[Path, dict]:
    """Run the sensor-pruning job; return ``(run_dir, metrics)``.

    Written to ``<out>/<name>.partial`` (:class:`~sparsest.engine.run.RunDirectory`) and
    renamed when finished. Contents: ``config.yaml``, ``status.json`` (while unfinished),
    ``metrics.json``, ``sensors.csv``, ``sensor_importance.png``,
    ``checkpoints/{dense,search,pruned}.ckpt``, ``report.md``, ``deploy/``, ``logs/``.

    Args:
        resume: an unfinished run directory (:meth:`RunDirectory.reopen`) to continue.

    Raises:
        SparsestError: bad data or options (one-line message naming the file / option).
    """
    say, prep = start(config, console)
    data = prep.data
    say(prep.summary())
    rd = resume or RunDirectory.create(config.out, run_name(config, data.name), config.to_dict())
    if resume is not None:
        say(f"[bold]resume[/] {rd.path}")
    with rd.guard():
        return _run(config, prep, rd, say)


def _run(config: RunConfig, prep, rd: RunDirectory, say) -> tuple[Path, dict]:
    data, spec = prep.data, prep.spec
    gens = [prep.generator]
    metrics: dict = {"data": data.name, "backbone": config.backbone, "scheme": config.scheme, "seed": config.seed,
                     "units": data.units, "window": spec.window, "horizon": spec.horizon, "missing_readings": prep.n_missing}
    say("[bold]baselines[/] persistence, historical average" + (", extrapolation (optical flow)" if spec.kind == "grid" else ""))
    metrics["baselines"] = baselines(prep)

    # ---- the keep-set of a placement scheme: before any training, so a bad file fails at once
    layout = SensorLayout(data.kind, data.n_nodes if data.kind == "graph" else 0,
                          data.grid_shape if data.kind == "grid" else None, config.patch_size)
    placed, placed_info = placement(config, prep, layout) if config.scheme != "dynst" else (None, {})

    # ---- dense
    backbone = create_backbone(config.backbone, spec, **config.backbone_options)
    dense = SensorMaskedForecaster(backbone, layout, mask_l1=config.mask_l1, mask_lr=config.mask_lr)
    set_phase(dense, "finetune")
    dense_module = ForecastModule(dense, prep.scaler, config.lr, config.weight_decay)
    t0 = time.perf_counter()
    if config.dense_checkpoint:
        src = Path(config.dense_checkpoint)
        if not src.is_file():
            raise ConfigError(f"--dense-checkpoint {src}: no such file")
        say(f"[bold]dense[/] loading {src}")
        try:
            dense_module.load_state_dict(torch.load(src, map_location="cpu", weights_only=True)["state_dict"])
        except (RuntimeError, KeyError, OSError, EOFError, ValueError) as e:
            raise ConfigError(f"--dense-checkpoint {src}: does not fit {config.backbone} on {data.name} "
                              f"({str(e).splitlines()[0][:120] if str(e) else e.__class__.__name__})") from None
        if not (rd.checkpoints / "dense.ckpt").exists():
            shutil.copy(src, rd.checkpoints / "dense.ckpt")
    else:
        say(f"[bold]dense[/] training {config.backbone} (at most {config.epochs} epochs, early stopping on validation MAE)")
        loader, extra, kw = _train_loader(config, prep, config.epochs)
        fit_best(dense_module, loader, prep.loaders["val"], rd, "dense", config, max_epochs=config.epochs,
                 patience=config.patience, callbacks=extra, generators=gens, trainer_kwargs=kw)
    dense_time = time.perf_counter() - t0
    if config.scheme == "dynst":  # needs the trained dense forecaster
        placed, placed_info = placement(config, prep, layout, dense, say)
    if placed is not None:
        say(f"[bold]placement[/] {config.scheme}: {int(placed.sum())} of {layout.n_sensors} sensors kept "
            f"({placed_info['seconds']:.2f} s; {placed_info['from']})")

    # ---- sensor search from the dense weights
    pruned = copy.deepcopy(dense)
    settings = SearchSettings(config.sensor_sparsity, config.rounds, config.round_steps, config.mask_steps, config.regrow_fraction)
    plan, _ = build_plan(config.scheme, layout.n_sensors, settings)
    init_keep(pruned, config.scheme, settings, config.seed)
    search = SensorSearch(pruned, plan)
    module = ForecastModule(pruned, prep.scaler, config.lr, config.weight_decay)
    t0 = time.perf_counter()
    if placed is not None:
        pruned.keep.copy_(torch.from_numpy(placed))
        search.history.append({"action": "placement", **placed_info, "n_off": int((~pruned.keep).sum()),
                               "sparsity": pruned.sparsity})
    if plan_steps(plan) > 0:
        say(f"[bold]search[/] {config.scheme}: {config.rounds} rounds x ({config.round_steps} network + {config.mask_steps} "
            f"mask steps) -> sensor sparsity {config.sensor_sparsity:g}")
        loader, extra, kw = _train_loader(config, prep, None)  # step-limited: no annealing
        fit_steps(module, loader, rd, "search", config, max_steps=plan_steps(plan), callbacks=[search, *extra], generators=gens,
                  trainer_kwargs=kw, describe=search.describe)
    elif placed is None:
        say(f"[bold]search[/] {config.scheme}: random keep-set, no search")
        for phase in plan:  # zero-step plans still apply their actions
            for action, n in phase.actions:
                search.apply(action, n)
    set_phase(pruned, "finetune")
    pruned.subset = True  # backbones with forward_subset now run on kept sensors only
    search_time = time.perf_counter() - t0 + placed_info.get("seconds", 0.0)
    say(f"[bold]fine-tune[/] keep-set fixed: {int(pruned.keep.sum())} of {pruned.n_sensors} sensors kept")
    t0 = time.perf_counter()
    ft_epochs = config.finetune_epochs or config.epochs
    if config.finetune_schedule == "cosine":  # the schedule sets the length: every epoch runs
        ft_callbacks, ft_patience = [EpochFractionLR(ft_epochs)], None
    else:
        ft_callbacks, ft_patience = [], config.patience
    fit_best(module, prep.loaders["train"], prep.loaders["val"], rd, "pruned", config, max_epochs=ft_epochs,
             patience=ft_patience, callbacks=ft_callbacks, generators=gens)
    finetune_time = time.perf_counter() - t0
    if not rd.primary:  # a DDP worker: training done, rank 0 evaluates and writes
        return rd.path, None

    # ---- evaluation
    rd.phase("evaluation")
    kept_loc = layout.node_mask(pruned.keep)
    off_loc = layout.node_mask(~pruned.keep)
    dense_eval = evaluate(dense, prep.loaders["test"], prep.scaler, spec.horizon, {"kept": kept_loc, "off": off_loc})
    pruned_eval = evaluate(pruned, prep.loaders["test"], prep.scaler, spec.horizon, {"kept": kept_loc, "off": off_loc})
    metrics.update({
        "dense": dense_eval["all"], "pruned": pruned_eval["all"],
        "dense_kept_only": dense_eval["kept"], "pruned_kept_only": pruned_eval["kept"],
        "pruned_switched_off_only": pruned_eval["off"],
        "sensor_sparsity": pruned.sparsity,
        "target_sensor_sparsity": pruned.sparsity if config.scheme == "keep-set" else config.sensor_sparsity,
        "n_sensors": pruned.n_sensors, "n_kept": int(pruned.keep.sum()),
        "search_history": search.history,
        "time_s": {"dense_train": dense_time, "search": search_time, "finetune": finetune_time,
                   "total": time.perf_counter() - prep.t_start},
        "resumed": rd.resumed,
    })
    metrics["mae_increase_pct"] = 100.0 * (metrics["pruned"]["mae"] / metrics["dense"]["mae"] - 1.0)
    metrics["runs_on_kept_sensors_only"] = pruned.runs_subset
    say("[bold]efficiency[/] latency (median of interleaved runs) and FLOPs, dense vs pruned")
    costs = [measure_costs(dense.backbone, pruned, prep.loaders["test"].dataset, batch=b, repeats=config.bench_repeats)
             for b in sorted({1, config.bench_batch})]
    main_cost = costs[-1]
    metrics.update({
        "latency_ms": {"dense": main_cost["latency_ms_dense"], "pruned": main_cost["latency_ms_pruned"],
                       "batch": main_cost["batch"], "speedup": main_cost["speedup"]},
        "gflops": {"dense": main_cost["gflops_dense"], "pruned": main_cost["gflops_pruned"], "per": "sample",
                   "ratio": main_cost["flops_ratio"]},
        "costs": costs,
    })
    from ...deploy import export_pruned, time_info
    from ...report import sensor_ids, write_outputs  # matplotlib only when writing

    write_outputs(rd.path, config, data, layout, pruned, metrics)

    deploy = rd.path / "deploy"
    if deploy.exists():  # a resumed run that was killed while exporting
        shutil.rmtree(deploy)
    export_pruned(pruned, prep.scaler, stack_batch(prep.loaders["test"].dataset, 2), deploy, sensor_ids(data, layout), data.units,
                  time=time_info(data, prep.day_of_week))
    rd.write_json("metrics.json", metrics)
    shutil.rmtree(rd.logs / "search" / "checkpoints", ignore_errors=True)
    return rd.finish(cleanup=RESUME_ONLY), metrics
