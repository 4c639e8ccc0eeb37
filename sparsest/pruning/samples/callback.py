"""The Lightning side of sample pruning: record losses, synchronise scores, select, schedule.

:class:`SamplePruning` reads the detached per-sample, per-node losses that
:class:`~sparsest.engine.module.ForecastModule` returns from its training step (no extra
forward), keeps each window's score from its last visit, all-reduces the epoch's new scores
across DDP ranks at the epoch end, and sets the next epoch's kept set and loss weights.
:class:`EpochFractionLR` keeps a learning-rate schedule correct when epochs change length.
:func:`build_sample_pruning` wires the dataset view, sampler, loader and callback.

The trainer must be built with ``reload_dataloaders_every_n_epochs=1`` (so each epoch's
length is re-read from the sampler) and ``use_distributed_sampler=False`` (the sampler
shards itself); :data:`TRAINER_KWARGS` holds both.

Source: ST-Prune (arXiv:2602.19113), METHODS.md section 3; InfoBatch (arXiv:2303.04947).
"""

from __future__ import annotations

import functools
import math
import time
from dataclasses import dataclass, field

import lightning as L
import torch
from torch.utils.data import DataLoader

from ...data.windows import collate_windows
from .options import PruningOptions
from .policy import SelectionPolicy, annealed_epochs
from .sampler import IndexedDataset, PrunedSampler
from .scores import complexity_score, mean_loss_score, quantile_strata, window_statistics

TRAINER_KWARGS = {"reload_dataloaders_every_n_epochs": 1, "use_distributed_sampler": False}
SCORE_CHUNK = 1 << 21  # node-loss entries (visits x nodes) buffered before they are scored: the per-call cost is paid once per chunk, memory stays ~8 MB


class SamplePruning(L.Callback):
    """Records per-sample scores from training steps and sets each epoch's kept set.

    Args:
        policy: the method's :class:`SelectionPolicy`.
        dataset: the :class:`IndexedDataset` the loader reads (its ``weights`` are set here).
        sampler: the loader's :class:`PrunedSampler`.
        options: :class:`PruningOptions` (score hyper-parameters).
        complexity: ``[n]`` intrinsic complexity per window (ST-Prune), or None.
        strata: ``[n]`` long stationarity stratum per window, or None (one stratum).

    Scores use the observed nodes only; a visit without any observed target node leaves the
    window's previous score unchanged (+inf if it never had one), so no NaN enters the score
    table or the DDP all-reduce (which sums ``new * seen``).

    State after fitting: ``scores`` ``[n]`` (+inf = never scored), ``history`` (per epoch:
    kept count, ratio), ``samples_seen`` (real windows trained on, all ranks),
    ``overhead_s`` (recording + synchronisation + selection + sampler time on this rank),
    ``step_time_s`` (training-step time between batch start and end hooks, this rank).

    Requires the module to return ``{"loss", "sample_node_loss" [B, N]}`` from
    ``training_step`` when ``record_sample_loss`` is True (the callback sets it).
    """

    def __init__(self, policy: SelectionPolicy, dataset: IndexedDataset, sampler: PrunedSampler, options: PruningOptions,
                 complexity: torch.Tensor | None = None, strata: torch.Tensor | None = None):
        self.policy, self.dataset, self.sampler, self.options = policy, dataset, sampler, options
        n = policy.n
        self.factor = None
        if complexity is not None and options.complexity_weight > 0:
            c = complexity.double()
            self.factor = (c / c.mean().clamp_min(1e-12)).clamp_min(1e-6) ** options.complexity_weight  # [n]
        self.strata = strata if strata is not None else torch.zeros(n, dtype=torch.long)
        self.scores = torch.full((n,), math.inf, dtype=torch.float64)
        self._new = torch.zeros(n, dtype=torch.float64)
        self._seen = torch.zeros(n, dtype=torch.float64)
        self._pending: list[tuple[torch.Tensor, torch.Tensor]] = []  # (node losses [b, N], window index [b]) not yet scored
        self._pending_entries = 0  # node losses buffered in _pending
        self.history: list[dict] = []
        self.samples_seen = 0
        self.overhead_s = 0.0
        self.setup_s = 0.0
        self.step_time_s = 0.0
        self._t_batch = 0.0
        self.stop_at: int | None = None  # last epoch of an early-stopped run's annealed tail
        self.apply(0)

    # -- state (resume)
    @property
    def state_key(self) -> str:
        return "SamplePruning"

    def state_dict(self) -> dict:
        """Scores, the current selection (kept windows and loss weights), history and the
        measured counters: what a resumed run needs to continue the same schedule."""
        w = self.dataset.weights
        return {"scores": self.scores.clone(), "kept": self.sampler.kept.clone(),
                "weights": None if w is None else torch.as_tensor(w).clone(), "history": self.history,
                "samples_seen": self.samples_seen, "overhead_s": self.overhead_s, "step_time_s": self.step_time_s,
                "sampler_time_s": self.sampler.time_s, "anneal_from": self.policy.anneal_from, "stop_at": self.stop_at}

    def load_state_dict(self, state: dict) -> None:
        self.scores = state["scores"].clone()
        self.sampler.set_selection(state["kept"])
        self.dataset.weights = state["weights"]
        self.history = list(state["history"])
        self.samples_seen = int(state["samples_seen"])
        self.overhead_s, self.step_time_s = float(state["overhead_s"]), float(state["step_time_s"])
        self.sampler.time_s = float(state["sampler_time_s"])
        self.policy.anneal_from, self.stop_at = state.get("anneal_from"), state.get("stop_at")  # absent before they existed

    # -- selection
    def apply(self, epoch: int) -> None:
        """Select for ``epoch`` from the current scores and hand it to sampler and dataset."""
        sel = self.policy.select(epoch, self.scores, self.strata)
        self.sampler.set_selection(sel.indices)
        self.dataset.weights = sel.weights
        self.history.append({"epoch": epoch, "kept": sel.n_kept, "ratio": self.policy.ratio(epoch)})

    def defer_stop(self, epoch: int) -> bool:
        """Early stopping fired at the end of ``epoch``: if the run is still in its pruned
        epochs, run the annealed full-data epochs first (as many as the schedule ends with,
        :func:`~.policy.annealed_epochs`) and stop after them; returns whether the stop is
        deferred (then the caller cancels it).

        InfoBatch's annealing (Qin et al., ICLR 2024, Sec. 3.3: the last ``1 - delta`` of the
        epochs train on the full data to remove the remaining gradient bias) is part of the
        method: an early stop during the pruned epochs would end the run on a model trained
        only on pruned, re-weighted epochs. Ours (the paper trains a fixed number of epochs).
        No deferral for ``none`` / ``static`` (no annealing) or when the next epoch is full
        data anyway."""
        pol = self.policy
        tail = annealed_epochs(pol.epochs, pol.anneal)
        if pol.method == "static" or tail == 0 or pol.ratio(epoch + 1) == 0.0:  # ratio 0: none, or annealing anyway
            return False
        pol.anneal_from, self.stop_at = epoch + 1, epoch + tail
        if self.history and self.history[-1]["epoch"] == epoch + 1:  # re-select the next epoch: full data now
            self.history.pop()
        self.apply(epoch + 1)
        return True

    def score(self, node_loss: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        """Score of each visited window from its per-node losses ``[B, N]`` (NaN = node not
        observed) -> ``[B]`` (float64), over the observed nodes; NaN for a window with none."""
        nl = node_loss.detach().double()
        if self.policy.method == "st-prune":
            s = complexity_score(nl, self.options.beta, self.options.topk_fraction)
            if self.factor is not None:
                s = s * self.factor[index]
            return s
        return mean_loss_score(nl)

    # -- hooks
    def setup(self, trainer, pl_module, stage=None) -> None:
        pl_module.record_sample_loss = self.policy.needs_scores

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self._t_batch = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        t0 = time.perf_counter()
        self.step_time_s += t0 - self._t_batch
        pad = batch["pad"]
        n_pad = int(pad.sum())
        self.samples_seen += int(pad.numel()) - n_pad  # this rank; summed over ranks at epoch end
        if self.policy.needs_scores and isinstance(outputs, dict) and "sample_node_loss" in outputs:
            nl, idx = outputs["sample_node_loss"].cpu(), batch["index"].cpu()
            if n_pad:
                real = ~pad.cpu()
                nl, idx = nl[real], idx[real]
            self._pending.append((nl, idx))  # scored in chunks: one vectorised call per SCORE_CHUNK entries
            self._pending_entries += nl.numel()
            if self._pending_entries >= SCORE_CHUNK:
                self._flush()
        self.overhead_s += time.perf_counter() - t0

    def _flush(self) -> None:
        """Score the buffered visits (each window is visited at most once per epoch)."""
        if not self._pending:
            return
        nl = torch.cat([p[0] for p in self._pending])
        idx = torch.cat([p[1] for p in self._pending])
        self._pending, self._pending_entries = [], 0
        s = self.score(nl, idx)
        ok = ~torch.isnan(s)  # no observed node this visit: keep the previous score
        self._new[idx[ok]] = s[ok]
        self._seen[idx[ok]] = 1.0

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        t0 = time.perf_counter()
        if self.policy.needs_scores:
            self._flush()
            new, seen = self._new, self._seen
            if trainer.world_size > 1:  # shards are disjoint: one contributor per visited window
                both = torch.stack([new * seen, seen]).to(pl_module.device)
                both = trainer.strategy.reduce(both, reduce_op="sum").cpu()
                new, seen = both[0], both[1]
            upd = seen > 0
            self.scores[upd] = new[upd] / seen[upd]
            self._new.zero_()
            self._seen.zero_()
        self.apply(trainer.current_epoch + 1)
        if self.stop_at is not None and trainer.current_epoch >= self.stop_at:  # the deferred stop (defer_stop)
            trainer.should_stop = True
        self.overhead_s += time.perf_counter() - t0

    def on_train_end(self, trainer, pl_module) -> None:
        if trainer.world_size > 1:
            t = torch.tensor([float(self.samples_seen)], device=pl_module.device)
            self.samples_seen = int(trainer.strategy.reduce(t, reduce_op="sum").item())
        pl_module.record_sample_loss = False

    def overhead(self, module=None) -> dict:
        """Measured overhead of scoring and selection, seconds and % of the training-step time.

        Counts recording (this callback's batch hook), the module's per-node loss reduction
        (``module.sample_loss_time_s`` if given), epoch-end sync + selection, the sampler's
        ordering, and the one-off window statistics (``setup_s``).
        """
        module_s = float(getattr(module, "sample_loss_time_s", 0.0)) if module is not None else 0.0
        total = self.overhead_s + self.sampler.time_s + module_s + self.setup_s
        return {"overhead_s": total, "callback_s": self.overhead_s, "sampler_s": self.sampler.time_s,
                "module_s": module_s, "setup_s": self.setup_s, "step_time_s": self.step_time_s,
                "overhead_pct": 100.0 * total / self.step_time_s if self.step_time_s > 0 else float("nan")}


class EpochFractionLR(L.Callback):
    """Sets every param group's lr to ``base_lr * fn(progress)`` before each optimiser step.

    ``progress = (epoch + batch_idx / batches_this_epoch) / max_epochs`` in [0, 1), with the
    epoch's actual (pruned) batch count, so the schedule spans the whole training whatever
    the epoch lengths: a fixed-total-steps scheduler would end early or late when pruning
    changes them.

    Args:
        max_epochs: planned epochs.
        fn: ``progress -> factor``; default :func:`cosine` (1 -> ``min_factor``).
    """

    def __init__(self, max_epochs: int, fn=None, min_factor: float = 0.01):
        self.max_epochs = max_epochs
        self.fn = fn or functools.partial(cosine, min_factor=min_factor)  # picklable (ddp_spawn)
        self.base: list[float] | None = None
        self.trace: list[tuple[int, int, float]] = []  # (epoch, batch_idx, lr of group 0)

    @property
    def state_key(self) -> str:
        return "EpochFractionLR"

    def state_dict(self) -> dict:
        return {"base": self.base}

    def load_state_dict(self, state: dict) -> None:
        self.base = state["base"]  # the restored optimiser holds the scheduled lr, not the base

    def on_train_start(self, trainer, pl_module) -> None:
        if self.base is None:
            self.base = [g["lr"] for g in trainer.optimizers[0].param_groups]

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        nb = max(1, int(trainer.num_training_batches))
        p = (trainer.current_epoch + batch_idx / nb) / self.max_epochs
        f = self.fn(min(max(p, 0.0), 1.0))
        for g, b in zip(trainer.optimizers[0].param_groups, self.base):
            g["lr"] = b * f
        self.trace.append((trainer.current_epoch, batch_idx, trainer.optimizers[0].param_groups[0]["lr"]))


def cosine(progress: float, min_factor: float = 0.01) -> float:
    """Cosine decay from 1 at progress 0 to ``min_factor`` at progress 1."""
    return min_factor + (1 - min_factor) * 0.5 * (1 + math.cos(math.pi * progress))


@dataclass
class SamplePruningSetup:
    """What :func:`build_sample_pruning` returns: the loader to train on and its callback."""

    loader: DataLoader
    callback: SamplePruning
    dataset: IndexedDataset
    sampler: PrunedSampler
    policy: SelectionPolicy
    extra: dict = field(default_factory=dict)


def build_sample_pruning(dataset, batch_size: int, options: PruningOptions, epochs: int | None, seed: int = 0,
                         num_workers: int = 0) -> SamplePruningSetup:
    """Wrap ``dataset`` for sample pruning: indexed view, sharded sampler, loader, callback.

    Works for every method, ``none`` included (then every epoch visits all windows, weight 1,
    through the same code path). Window statistics (ST-Prune) are computed here, once, and
    their time is counted in the overhead.

    Args:
        dataset: training windows (items with ``x``, ``x_mask``, ...).
        batch_size: windows per batch (per rank).
        options: method and hyper-parameters (checked).
        epochs: planned epochs (annealing); ``None`` = no annealing.
        seed: selection and shuffle seed.

    Raises:
        ConfigError: bad options.
    """
    options.check()
    t0 = time.perf_counter()
    n = len(dataset)
    complexity = strata = None
    if options.method == "st-prune":  # computed once per dataset: a plan builds a loader for every fine-tuning
        stats = getattr(dataset, "_window_statistics", None)
        if stats is None:
            stats = window_statistics(dataset)
            try:
                dataset._window_statistics = stats
            except AttributeError:  # a dataset with __slots__: computed again next time
                pass
        complexity, stationarity = stats
        strata = quantile_strata(stationarity, options.n_strata)
    setup_s = time.perf_counter() - t0
    policy = SelectionPolicy(options.method, n, options.prune_ratio, epochs, seed, options.anneal,
                             options.warmup_epochs, options.hard_cap, options.rescale)
    view = IndexedDataset(dataset)
    sampler = PrunedSampler(n, seed=seed)
    cb = SamplePruning(policy, view, sampler, options, complexity, strata)
    cb.setup_s = setup_s
    loader = DataLoader(view, batch_size=batch_size, sampler=sampler, num_workers=num_workers, collate_fn=collate_windows)
    return SamplePruningSetup(loader, cb, view, sampler, policy)
