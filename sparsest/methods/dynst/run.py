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

from ...engine.fit import fit_steps
from ...engine.module import ForecastModule
from ...engine.prepare import baselines, start
from ...engine.run import RunDirectory
from ...pruning.sensors.layout import SensorLayout
from ...pruning.sensors.options import PLACEMENT_SCHEMES
from ...pruning.sensors.search import SearchSettings, SensorSearch, build_plan, init_keep, plan_steps, set_phase
from .config import RunConfig
from .pieces import (SEARCH_BLOCKS, efficiency, export, finetune, measure_costs, readout_surrogate,  # noqa: F401 - re-exported
                     sensor_layout, test_metrics, train_dense, train_loader, val_metrics)

RESUME_ONLY = ("checkpoints/*-last.ckpt", "checkpoints/*.tmp")


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
            sur = readout_surrogate(prep, layout, dense, config.batch_size)
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
    layout = sensor_layout(data, config.patch_size)
    placed, placed_info = placement(config, prep, layout) if config.scheme != "dynst" else (None, {})

    # ---- dense
    dense, dense_time = train_dense(config, prep, rd, layout, say)
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
        loader, extra, kw = train_loader(config, prep, None)  # step-limited: no annealing
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
    finetune_time = finetune(config, prep, rd, module, "pruned", config.finetune_epochs or config.epochs)
    if not rd.primary:  # a DDP worker: training done, rank 0 evaluates and writes
        return rd.path, None

    # ---- evaluation
    rd.phase("evaluation")
    metrics.update(test_metrics(prep, layout, dense, pruned))
    metrics.update({"dense_val": val_metrics(dense, prep), "pruned_val": val_metrics(pruned, prep)})
    metrics.update({
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
    metrics.update(efficiency(config, prep, dense, pruned))
    from ...report import write_outputs  # matplotlib only when writing

    write_outputs(rd.path, config, data, layout, pruned, metrics)
    export(prep, rd, layout, pruned)
    rd.write_json("metrics.json", metrics)
    shutil.rmtree(rd.logs / "search" / "checkpoints", ignore_errors=True)
    return rd.finish(cleanup=RESUME_ONLY), metrics
