"""The one way every command trains: a Lightning trainer, ``fit_best`` / ``fit_steps``, resume.

Each training phase of a run has a name (``dense``, ``search``, ``pruned``, ``train``,
``pretrain``, ...). While it trains, a checkpoint of everything needed to continue is
written at every epoch end to ``checkpoints/<name>-last.ckpt`` (model, optimiser, loop
counters, the state of every callback that has one, the random-number generators and the
data loaders' shuffle generators), atomically. When the phase ends, ``state/<name>.pt``
records its result (best score, generator states, callback states). A resumed run
(:meth:`~sparsest.engine.run.RunDirectory.reopen`) replays the same code: finished phases
are loaded instead of trained, the interrupted one continues from its last checkpoint, so
it ends with the same weights as an uninterrupted run with the same seed.

No method names live here; methods plug in as callbacks (with ``state_dict`` /
``load_state_dict`` when they hold state) and through the model's hooks.
"""

from __future__ import annotations

import logging
import os
import random
import time
import warnings
from pathlib import Path

import lightning as L
import numpy as np
import torch

from .run import RunDirectory

LOG_NOISE = (
    ".*does not have many workers.*", ".*GPU available but not used.*", ".*Checkpoint directory.*exists and is not empty.*",
    ".*LeafSpec.*", ".*smaller than the logging interval.*", ".*no `val_dataloader`.*", ".*ended before the epoch ended.*",
    ".*is an invalid version and will not be supported.*", ".*`training_step` returned `None`.*",
    ".*You're resuming from a checkpoint that ended before.*", ".*Found keys that are in the model state dict.*",
    ".*TPU available but not used.*", ".*HPU available but not used.*", ".*IPU available but not used.*",
    ".*Experiment logs directory.*exists.*", ".*The number of training batches.*", ".*`weights_only` was not set.*",
    ".*It is recommended to use `self.log.*sync_dist=True.*",
)


def quiet_lightning() -> None:
    """Silence Lightning's banners and the warnings that say nothing to a sparsest user."""
    for name in ("lightning", "lightning.pytorch", "lightning.fabric", "pytorch_lightning", "lightning.pytorch.utilities.rank_zero",
                 "lightning.pytorch.accelerators.cuda", "lightning.fabric.utilities.seed"):
        logging.getLogger(name).setLevel(logging.ERROR)
    for pattern in LOG_NOISE:
        warnings.filterwarnings("ignore", message=pattern)


# --------------------------------------------------------------------------- random state


def rng_state(generators=()) -> dict:
    """Global torch / numpy / Python generators and the given ``torch.Generator`` s, as
    tensors and plain containers (loadable with ``torch.load(weights_only=True)``)."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    return {"torch": torch.get_rng_state(), "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, gauss],
            "python": list(random.getstate()), "generators": [g.get_state() for g in generators]}


def set_rng_state(state: dict, generators=()) -> None:
    """Restore what :func:`rng_state` returned."""
    torch.set_rng_state(state["torch"])
    kind, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(internal), gauss_next))
    for g, s in zip(generators, state["generators"]):
        g.set_state(s)


class ResumeState(L.pytorch.callbacks.Checkpoint):
    """Writes ``<name>-last.ckpt`` atomically at every epoch end, with the generators.

    A :class:`~lightning.pytorch.callbacks.Checkpoint` subclass, so Lightning runs its epoch-end
    hook after every other callback's (their state is final when it is saved). The stop
    decision of early stopping is kept too, so a run killed after its last epoch does not
    train one more on resume.
    """

    def __init__(self, path: Path, generators=()):
        self.path = Path(path)
        self.generators = list(generators)
        self._stop = False

    @property
    def state_key(self) -> str:
        return "ResumeState"

    def state_dict(self) -> dict:
        return {"rng": rng_state(self.generators), "should_stop": bool(self._stop)}

    def load_state_dict(self, state: dict) -> None:
        set_rng_state(state["rng"], self.generators)
        self._stop = bool(state.get("should_stop", False))

    def on_train_start(self, trainer, pl_module) -> None:
        if self._stop:
            trainer.should_stop = True

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self._stop = bool(trainer.should_stop)
        tmp = self.path.with_name(self.path.name + ".tmp")
        trainer.save_checkpoint(str(tmp))
        if trainer.is_global_zero:
            os.replace(tmp, self.path)


class WallClock(L.Callback):
    """Logs ``time_s`` beside ``val_mae`` at every validation: wall-clock seconds since the
    phase began training (training and validation). A resumed phase continues the clock of
    its last checkpoint (the epoch a kill interrupted is not counted)."""

    def __init__(self):
        self.offset = 0.0
        self.t0: float | None = None

    @property
    def state_key(self) -> str:
        return "WallClock"

    def elapsed(self) -> float:
        return self.offset + (time.perf_counter() - self.t0 if self.t0 is not None else 0.0)

    def state_dict(self) -> dict:
        return {"elapsed": self.elapsed()}

    def load_state_dict(self, state: dict) -> None:
        self.offset = float(state.get("elapsed", 0.0))

    def on_train_start(self, trainer, pl_module) -> None:
        self.t0 = time.perf_counter()

    def on_validation_epoch_end(self, trainer, pl_module) -> None:
        if not trainer.sanity_checking:
            pl_module.log("time_s", self.elapsed(), on_step=False, on_epoch=True)


class StopAfterSteps(L.Callback):
    """Stops an epoch-based fit after ``steps`` optimiser steps (so a step-limited phase
    resumes from an epoch end like any other: Lightning's iteration-based restart replays
    data differently)."""

    def __init__(self, steps: int):
        self.steps = steps

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step >= self.steps:
            trainer.should_stop = True

    def on_train_start(self, trainer, pl_module) -> None:
        if trainer.global_step >= self.steps:
            trainer.should_stop = True


class StepProgress(L.Callback):
    """A progress bar in optimiser steps for a step-limited phase (e.g. a sensor search),
    with the postfix ``describe()`` returns (if given)."""

    def __init__(self, label: str, total: int, describe=None):
        self.label, self.total, self.describe, self.bar = label, total, describe, None

    def on_train_start(self, trainer, pl_module) -> None:
        if trainer.is_global_zero:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=self.total, desc=self.label, unit="step", initial=trainer.global_step, leave=False)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self.bar is not None:
            self.bar.n = trainer.global_step
            if self.describe is not None:
                self.bar.set_postfix_str(self.describe(), refresh=False)
            self.bar.refresh()

    def on_train_end(self, trainer, pl_module) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


# --------------------------------------------------------------------------- trainer


def make_trainer(opts, run: RunDirectory, name: str, max_epochs: int = -1, max_steps: int = -1, callbacks=(), validate=True,
                 progress: bool = True, **trainer_kwargs) -> L.Trainer:
    """The Lightning trainer of phase ``name``: ``opts`` (a
    :class:`~sparsest.engine.options.CommonOptions`) gives accelerator, devices, strategy,
    ``limit_train_batches`` and ``grad_clip`` (gradient-norm clipping, Lightning's
    ``gradient_clip_val`` with ``gradient_clip_algorithm="norm"``; none when 0); CSV logs go
    to ``logs/<name>``.

    Raises:
        ConfigError: Lightning refuses ``--accelerator`` / ``--devices`` / ``--strategy``.
    """
    from ..errors import ConfigError

    if "spawn" in str(opts.strategy):
        # spawned workers receive the data through shared memory; file descriptors of large
        # tensors fail in small /dev/shm sandboxes, files do not
        torch.multiprocessing.set_sharing_strategy("file_system")
        os.environ.setdefault("PYTHONWARNINGS", "ignore")  # spawned workers start without our filters
    # wrapped models leave some parameters out of the loss in some phases (frozen mask scores,
    # a gate that is off): DDP must look for unused parameters
    strategy = {"ddp": "ddp_find_unused_parameters_true", "ddp_spawn": "ddp_spawn_find_unused_parameters_true"}.get(
        opts.strategy, opts.strategy)
    if opts.grad_clip > 0:  # Lightning clips before every optimiser step (automatic optimisation)
        trainer_kwargs = {"gradient_clip_val": float(opts.grad_clip), "gradient_clip_algorithm": "norm", **trainer_kwargs}
    try:
        return L.Trainer(
            **trainer_kwargs, accelerator=opts.accelerator, devices=opts.devices, strategy=strategy,
            max_epochs=max_epochs, max_steps=max_steps, callbacks=list(callbacks),
            logger=L.pytorch.loggers.CSVLogger(str(run.logs), name=name, version=""),
            enable_checkpointing=True, enable_model_summary=False, enable_progress_bar=progress,
            limit_train_batches=opts.limit_train_batches, limit_val_batches=1.0 if validate else 0,
            num_sanity_val_steps=0, log_every_n_steps=10, deterministic=False,
        )
    except (ValueError, RuntimeError, TypeError, ImportError, L.fabric.utilities.exceptions.MisconfigurationException) as e:
        raise ConfigError(f"--accelerator {opts.accelerator} / --devices {opts.devices} / --strategy {opts.strategy}: "
                          f"{str(e).strip().splitlines()[0] if str(e).strip() else e.__class__.__name__}") from None


def check_trainer_options(opts) -> None:
    """Build (and discard) a trainer now, so a bad ``--accelerator`` / ``--devices`` /
    ``--strategy`` is one line before any data is read. Raises ConfigError."""
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        make_trainer(opts, RunDirectory(Path(d)), "check", max_epochs=1, progress=False)


def _phase_file(run: RunDirectory, name: str) -> Path:
    return run.state / f"{name}.pt"


def phase_done(run: RunDirectory, name: str) -> bool:
    """Whether phase ``name`` of ``run`` has finished (its record exists)."""
    return _phase_file(run, name).exists()


def _stateful(callbacks) -> dict:
    return {cb.state_key: cb for cb in callbacks if type(cb).state_dict is not L.Callback.state_dict}


def _load_callback_states(callbacks, states: dict) -> None:
    """``load_state_dict`` of every stateful callback that has an entry in ``states``."""
    for key, cb in _stateful(callbacks).items():
        if key in states:
            cb.load_state_dict(states[key])


def _last_score(trainer, run: RunDirectory, name: str, monitor: str) -> float:
    """The last epoch's ``monitor``: from the trainer, or (spawned workers) the phase's CSV log."""
    value = trainer.callback_metrics.get(monitor)
    if value is not None:
        return float(value)
    import csv

    rows = [r.get(monitor) for r in csv.DictReader((run.logs / name / "metrics.csv").open())]
    return float([v for v in rows if v not in (None, "")][-1])


def _record(run: RunDirectory, name: str, score, callbacks, generators) -> None:
    rec = {"score": score, "rng": rng_state(generators), "callbacks": {k: cb.state_dict() for k, cb in _stateful(callbacks).items()}}
    tmp = _phase_file(run, name).with_suffix(".tmp")
    torch.save(rec, tmp)
    os.replace(tmp, _phase_file(run, name))


def _restore(run: RunDirectory, name: str, callbacks, generators) -> dict:
    rec = torch.load(_phase_file(run, name), map_location="cpu", weights_only=True)
    set_rng_state(rec["rng"], generators)
    _load_callback_states(callbacks, rec["callbacks"])
    return rec


def _load_weights(module, path: Path) -> None:
    best = torch.load(path, map_location="cpu", weights_only=True)
    module.load_state_dict(best["state_dict"])


def _spawned(trainer) -> bool:
    return type(getattr(trainer.strategy, "launcher", None)).__name__ == "_MultiProcessingLauncher"


def _sync_from_last(trainer, last: Path) -> dict:
    """After a spawned fit (``ddp_spawn``) the workers' callback states never come back to this
    process: take them (and the random-number state) from rank 0's last resume checkpoint,
    which is returned."""
    ck = torch.load(last, map_location="cpu", weights_only=True)
    _load_callback_states(trainer.callbacks, ck.get("callbacks", {}))
    return ck


def _fit(trainer, module, *args, **kwargs) -> None:
    """``trainer.fit`` that lets Ctrl-C through as KeyboardInterrupt: Lightning catches it and
    either returns as if fit had finished or exits with status 1. The module is put in
    training mode first: Lightning keeps the mode it finds each submodule in, so a model
    copied after an evaluation (``eval()``) would otherwise train with frozen BatchNorm
    statistics."""
    module.train()
    try:
        trainer.fit(module, *args, **kwargs)
    except SystemExit:
        if trainer.interrupted:
            raise KeyboardInterrupt from None
        raise
    if trainer.interrupted:
        raise KeyboardInterrupt


class DeferringEarlyStopping(L.pytorch.callbacks.EarlyStopping):
    """Lightning's early stopping, except that a callback with a ``defer_stop(epoch) -> bool``
    method may postpone a stop it fires (sample pruning runs its annealed full-data epochs
    first, :meth:`~sparsest.pruning.samples.callback.SamplePruning.defer_stop`, and stops
    after them itself). The decision is the same on every rank (deterministic in the epoch)."""

    def _run_early_stopping_check(self, trainer) -> None:
        was = trainer.should_stop
        super()._run_early_stopping_check(trainer)
        if trainer.should_stop and not was:
            for cb in trainer.callbacks:
                defer = getattr(cb, "defer_stop", None)
                if callable(defer) and defer(trainer.current_epoch):
                    trainer.should_stop = False
                    self.stopped_epoch = 0
                    break


def weight_averaging(half_life: float, train_loader, limit=1.0):
    """Lightning's :class:`~lightning.pytorch.callbacks.EMAWeightAveraging` with a half-life of
    ``half_life`` epochs (decay ``0.5 ** (1 / (half_life x steps per epoch))`` per optimiser step),
    or None when ``half_life`` is 0. Validation (so the best-epoch choice and early stopping)
    runs on the averaged weights and the checkpoints hold them; the raw weights go on training.

    A moving average of the weights (Polyak and Juditsky, SIAM J. Control Optim. 30(4), 1992)
    smooths the epoch-to-epoch noise of the validation error, so the best epoch is chosen among
    models, not among lucky validation passes (README, "sparsest plan against the Table 2 sweep").
    """
    if not half_life:
        return None
    try:
        steps = len(train_loader)
    except TypeError:
        steps = 1
    steps = min(steps, int(limit)) if isinstance(limit, int) else max(1, int(steps * float(limit)))
    decay = 0.5 ** (1.0 / (float(half_life) * max(1, steps)))
    cb = L.pytorch.callbacks.EMAWeightAveraging(decay=decay)
    cb.decay = decay
    return cb


def fit_best(module: L.LightningModule, train_loader, val_loader, run: RunDirectory, name: str, opts, *, max_epochs: int,
             patience: int | None = None, callbacks=(), generators=(), trainer_kwargs=None, progress: bool = True,
             monitor: str = "val_mae", keep: str = "best") -> float:
    """Train phase ``name`` for at most ``max_epochs`` with early stopping on validation MAE
    (``patience`` epochs; None or 0 = off; :class:`DeferringEarlyStopping`), keep the best epoch's weights
    (``checkpoints/<name>.ckpt``) and load them into ``module``. Resumable (module doc).

    Args:
        monitor: the validation metric that picks the best epoch (and stops early):
            ``"val_mae"`` or ``"val_mse"`` (physical units; what the module logs).
        keep: ``"best"`` (the epoch with the lowest ``monitor``) or ``"last"`` (the last epoch run,
            e.g. the annealed end of a schedule; its ``monitor`` is returned).
        generators: the ``torch.Generator`` s the loaders shuffle with (saved and restored).
        callbacks: method callbacks; their ``state_dict`` travels with the checkpoints.

    Returns:
        the best value of ``monitor``.
    """
    callbacks = list(callbacks)
    run.phase(name)
    if phase_done(run, name):
        _load_weights(module, run.checkpoints / f"{name}.ckpt")
        return float(_restore(run, name, callbacks, generators)["score"])
    if keep not in ("best", "last"):
        raise ValueError(f"fit_best: keep must be 'best' or 'last', not {keep!r}")
    # keep last: no monitor, so every epoch's checkpoint replaces the one before (its score is read below)
    ckpt = L.pytorch.callbacks.ModelCheckpoint(dirpath=str(run.checkpoints), filename=name,
                                               monitor=monitor if keep == "best" else None, mode="min",
                                               save_top_k=1, enable_version_counter=False)
    last = run.checkpoints / f"{name}-last.ckpt"
    extra = [ckpt, WallClock(), ResumeState(last, generators)]
    averaging = weight_averaging(opts.ema, train_loader, opts.limit_train_batches)
    if averaging is not None:
        extra.insert(0, averaging)  # before the checkpoint callbacks: they save the averaged weights
    if patience:
        extra.append(DeferringEarlyStopping(monitor=monitor, mode="min", patience=patience))
    trainer = make_trainer(opts, run, name, max_epochs=max_epochs, callbacks=[*callbacks, *extra], progress=progress,
                           **(trainer_kwargs or {}))
    _fit(trainer, module, train_loader, val_loader, ckpt_path=str(last) if last.exists() else None)
    if _spawned(trainer):
        states = _sync_from_last(trainer, last)["callbacks"]
        best = states[ckpt.state_key]
        ckpt.best_model_path, ckpt.best_model_score = best["best_model_path"], best["best_model_score"]
    _load_weights(module, Path(ckpt.best_model_path))
    if keep == "last":
        score = _last_score(trainer, run, name, monitor)
    else:
        score = float(ckpt.best_model_score)
    if trainer.is_global_zero:
        _record(run, name, score, callbacks, generators)
    return score


def fit_steps(module: L.LightningModule, train_loader, run: RunDirectory, name: str, opts, *, max_steps: int, callbacks=(),
              generators=(), trainer_kwargs=None, describe=None) -> None:
    """Train phase ``name`` for exactly ``max_steps`` optimiser steps, no validation (e.g. a
    sensor search driven by a callback); the final weights go to ``checkpoints/<name>.ckpt``.
    Resumable from its last epoch end (module doc). A step progress bar replaces Lightning's
    epoch bar (``describe()`` -> its postfix)."""
    callbacks = list(callbacks)
    run.phase(name)
    if phase_done(run, name):
        _load_weights(module, run.checkpoints / f"{name}.ckpt")
        _restore(run, name, callbacks, generators)
        return
    last = run.checkpoints / f"{name}-last.ckpt"
    extra = [StopAfterSteps(max_steps), ResumeState(last, generators), StepProgress(name, max_steps, describe)]
    trainer = make_trainer(opts, run, name, max_epochs=-1, callbacks=[*callbacks, *extra], validate=False, progress=False,
                           **(trainer_kwargs or {}))
    _fit(trainer, module, train_loader, ckpt_path=str(last) if last.exists() else None)
    if _spawned(trainer):
        module.load_state_dict(_sync_from_last(trainer, last)["state_dict"])
    if trainer.is_global_zero:
        torch.save({"state_dict": module.state_dict()}, run.checkpoints / f"{name}.ckpt")
        _record(run, name, None, callbacks, generators)


__all__ = ["fit_best", "fit_steps", "make_trainer", "check_trainer_options", "quiet_lightning", "rng_state", "set_rng_state",
           "ResumeState", "StepProgress", "WallClock", "phase_done"]
