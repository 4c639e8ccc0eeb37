"""``train(config)``: one backbone trained with (or without) sample pruning, timed, on the engine.

Loads the data like every command (:func:`sparsest.engine.prepare.start`), trains the
backbone for ``epochs`` epochs on the windows each epoch's pruning policy keeps
(:mod:`sparsest.pruning.samples`) in one resumable phase ``train``, keeps the
best-validation weights, and writes ``metrics.json`` with test MAE / RMSE / MAPE, wall times
per epoch, samples seen and the measured scoring / selection overhead.

Source: ST-Prune (arXiv:2602.19113), METHODS.md section 3; InfoBatch (Qin et al., ICLR 2024).
"""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path

import lightning as L
import torch

from ...backbones import create_backbone
from ...engine.fit import fit_best
from ...engine.module import ForecastModule, evaluate
from ...engine.prepare import baselines, start
from ...engine.run import RunDirectory
from ...pruning.samples import TRAINER_KWARGS, EpochFractionLR, build_sample_pruning
from .config import TrainConfig


class EpochClock(L.Callback):
    """Wall time per epoch: training part (without validation) and cumulative since fit start,
    plus the validation MAE of each epoch. Resumable: a resumed fit continues the cumulative
    clock from the last checkpoint's value."""

    def __init__(self):
        self.epoch_time_s: list[float] = []
        self.cum_time_s: list[float] = []
        self.val_mae: list[float] = []
        self._fit0 = self._e0 = self._v0 = 0.0
        self._val_s = 0.0
        self._offset = 0.0

    @property
    def state_key(self) -> str:
        return "EpochClock"

    def state_dict(self) -> dict:
        return {"epoch_time_s": self.epoch_time_s, "cum_time_s": self.cum_time_s, "val_mae": self.val_mae}

    def load_state_dict(self, state: dict) -> None:
        self.epoch_time_s, self.cum_time_s, self.val_mae = (list(state[k]) for k in ("epoch_time_s", "cum_time_s", "val_mae"))
        self._offset = self.cum_time_s[-1] if self.cum_time_s else 0.0

    def on_fit_start(self, trainer, pl_module):
        self._fit0 = time.perf_counter() - self._offset

    def on_train_epoch_start(self, trainer, pl_module):
        self._e0, self._val_s = time.perf_counter(), 0.0

    def on_validation_epoch_start(self, trainer, pl_module):
        self._v0 = time.perf_counter()

    def on_validation_epoch_end(self, trainer, pl_module):
        self._val_s += time.perf_counter() - self._v0

    def on_train_epoch_end(self, trainer, pl_module):
        now = time.perf_counter()
        self.epoch_time_s.append(now - self._e0 - self._val_s)
        self.cum_time_s.append(now - self._fit0)
        v = trainer.callback_metrics.get("val_mae")
        self.val_mae.append(float(v) if v is not None else float("nan"))


def run_name(config: TrainConfig, data_name: str) -> str:
    """``<time>_<data>_<backbone>_<sample pruning>[_r<prune ratio>]_seed<k>``."""
    r = f"_r{config.prune_ratio:g}" if config.sample_pruning != "none" else ""
    return f"{time.strftime('%Y%m%d-%H%M%S')}_{data_name}_{config.backbone}_{config.sample_pruning}{r}_seed{config.seed}"


def train(config: TrainConfig, console=None, resume: RunDirectory | None = None) -> tuple[Path, dict]:
    """Train with the configured sample pruning; return ``(run_dir, metrics)``.

    Written to ``<out>/<name>.partial`` and renamed when finished. Contents: ``config.yaml``,
    ``metrics.json``, ``checkpoints/train.ckpt``, ``logs/``. ``metrics.json`` keys: ``test``
    (mae, rmse, mape, physical units; MAPE in %), ``best_val_mae``, ``val_mae`` (per epoch),
    ``train_time_s`` (wall time of fit; of the last process if resumed), ``epoch_time_s``
    (training part of each epoch), ``cum_time_s``, ``samples_seen``, ``kept_per_epoch``,
    ``overhead`` (scoring / selection, seconds and %), ``baselines`` (full-data runs only:
    test metrics of persistence and the historical average), ``data_notes``.

    Args:
        resume: an unfinished run directory to continue (:meth:`RunDirectory.reopen`).

    Raises:
        SparsestError: bad data or options.
    """
    say, prep = start(config, console)
    data, spec = prep.data, prep.spec
    rd = resume or RunDirectory.create(config.out, run_name(config, data.name), config.to_dict())
    with rd.guard():
        model = create_backbone(config.backbone, spec, **config.backbone_options)
        module = ForecastModule(model, prep.scaler, config.lr, config.weight_decay)
        sp = build_sample_pruning(prep.loaders["train"].dataset, config.batch_size, config.pruning(), config.epochs, config.seed)
        clock = EpochClock()
        callbacks = [sp.callback, clock]
        if config.lr_schedule == "cosine":
            callbacks.append(EpochFractionLR(config.epochs))
        say(f"[bold]train[/] {config.backbone} on {data.name}: {config.epochs} epochs, sample pruning {config.sample_pruning}"
            + (f" (R={config.prune_ratio:g})" if config.sample_pruning != "none" else ""))
        t0 = time.perf_counter()
        best = fit_best(module, sp.loader, prep.loaders["val"], rd, "train", config, max_epochs=config.epochs,
                        patience=config.patience, callbacks=callbacks, generators=[prep.generator], trainer_kwargs=TRAINER_KWARGS,
                        progress=console is not None)
        train_time = time.perf_counter() - t0
        if not rd.primary:  # a DDP worker: training done, rank 0 evaluates and writes
            return rd.path, None
        rd.phase("evaluation")
        test = evaluate(module.model, prep.loaders["test"], prep.scaler, spec.horizon)["all"]
        base = baselines(prep) if config.sample_pruning == "none" else {}
        metrics = {
            "data": data.name, "backbone": config.backbone, "sample_pruning": config.sample_pruning,
            "prune_ratio": config.prune_ratio if config.sample_pruning != "none" else 0.0, "seed": config.seed,
            "units": data.units, "n_train_windows": sp.policy.n, "epochs": len(clock.epoch_time_s),
            "test": {k: test[k] for k in ("mae", "rmse", "mape")},
            "test_per_horizon": {k: test[f"{k}_per_horizon"] for k in ("mae", "rmse", "mape") if f"{k}_per_horizon" in test},
            "best_val_mae": best, "val_mae": clock.val_mae, "train_time_s": train_time,
            "epoch_time_s": clock.epoch_time_s, "cum_time_s": clock.cum_time_s,
            "samples_seen": sp.callback.samples_seen,
            "kept_per_epoch": [h["kept"] for h in sp.callback.history[: len(clock.epoch_time_s)]],
            "overhead": sp.callback.overhead(module), "resumed": rd.resumed,
            "baselines": {k: {m: v[m] for m in ("mae", "rmse", "mape")} for k, v in base.items()},
            "data_notes": list(data.notes), "n_sensors": data.n_nodes,
            "machine": f"{platform.machine()}, {os.cpu_count()} cores, {torch.get_num_threads()} threads, torch {torch.__version__}",
        }
        rd.write_json("metrics.json", metrics)
        return rd.finish(cleanup=("checkpoints/*-last.ckpt",)), metrics
