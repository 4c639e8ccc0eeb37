"""Which training windows an epoch visits, and with what loss weight: one policy per method.

Every policy maps ``(epoch, scores, strata)`` to a :class:`Selection` (kept indices and a
per-sample loss weight) deterministically from ``(seed, epoch)``, so every DDP rank that
holds the same score table derives the same kept set. ``prune_ratio`` is one option for all
methods, but it does not mean the same for all (n = training windows):

- for ``random``, ``infobatch-budget``, ``st-prune`` and ``static`` it is R, the fraction of
  *all* n windows skipped in a pruned epoch: they keep exactly ``round((1 - R) n)``;
- for ``infobatch`` it is InfoBatch's r, the fraction of the *below-mean* windows dropped:
  it keeps every window at or above the mean plus ``(1 - r)`` of the rest, so it visits more
  than ``(1 - r) n`` windows, and its measured epoch time shows it.

Methods:

- ``none``: every window, weight 1.
- ``random``: a uniformly random ``round((1 - R) n)`` windows each epoch, weight 1.
- ``infobatch`` (Qin et al., ICLR 2024, arXiv:2303.04947; as the authors' code
  ``infobatch/infobatch.py`` does it): score = the window's training loss at its last visit;
  threshold = mean of all scores; windows at or above it are kept; of the ``n_below`` windows
  below it exactly ``round(r n_below)`` are dropped, drawn uniformly without replacement; the
  kept below-mean windows weigh ``1 / (1 - r)``, all others 1 (:func:`select_infobatch`).
- ``infobatch-budget`` (ours, not in the paper): InfoBatch held to the budget
  ``round((1 - R) n)`` of all windows, for equal-budget comparisons. r is chosen each epoch so
  that exactly the budget is kept (above-mean windows + ``round((1 - R) n) - n_above`` drawn
  below-mean ones, weight ``1 / (1 - r)``); where the above-mean windows alone exceed the
  budget it caps them as ST-Prune does (the highest ``hard_cap (1 - R) n`` kept outright, the
  rest of the budget drawn uniformly from all other windows, weight ``1 / p``, p = the kept
  fraction of that pool) (:func:`select_infobatch_budget`).
- ``st-prune`` (Chen et al., 2026, arXiv:2602.19113; our reading, METHODS.md section 3):
  complexity-informed score; windows above the mean score are kept, at most
  ``hard_cap (1 - R) n`` of them (the highest); the rest of the budget is drawn from the
  below-threshold windows *stratified by stationarity* (proportional allocation, at least one
  per non-empty stratum); a kept low-score window of stratum s is weighted in proportion to
  ``|low_s| / kept_s`` (``rescale="strata"``: normalised to mean 1 over the low pool, so
  every stratum keeps its share of the low pool's loss; ``"mass"``: unnormalised, so every
  stratum keeps its whole loss mass).
- ``static``: after the warm-up epoch(s), score once and keep the ``round((1 - R) n)``
  highest-scoring windows for all later epochs, weight 1 (no annealing).

Scores are the last visit's per-node losses averaged over the nodes the window observes
(:mod:`.scores`); a loss weight multiplies the window's mean loss over its observed entries
(:meth:`sparsest.engine.module.ForecastModule.training_step`), so it does not depend on how
many entries the window observes.

Schedule (:func:`prune_ratio_at`): the first ``warmup_epochs`` see all data (every score
is still unknown = +inf), then the method's ratio, and the dynamic methods train on the full
data (weights 1) again once ``epoch + 1 > anneal * epochs`` (InfoBatch's annealing, delta =
0.875, with the authors' epoch boundary; see :func:`prune_ratio_at`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .options import METHODS, RESCALE  # noqa: E402


@dataclass(frozen=True)
class Selection:
    """The windows one epoch visits.

    Attributes:
        indices: ``[K]`` long, sorted, distinct indices into the training set.
        weights: ``[n]`` float32 loss weight of each window when visited (1 = unscaled).
    """

    indices: torch.Tensor
    weights: torch.Tensor

    @property
    def n_kept(self) -> int:
        return int(self.indices.numel())


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    """The CPU generator of one epoch's random draws: the same on every rank."""
    return torch.Generator().manual_seed(int(seed) * 1_000_003 + int(epoch) * 7919 + 17)


def annealed_epochs(epochs: int | None, anneal: float = 0.875) -> int:
    """How many full-data epochs end a schedule of ``epochs`` (those with ``epoch + 1 > anneal *
    epochs``, :func:`prune_ratio_at`): 1 for E = 8, 2 for E = 10 at delta = 0.875; 0 without
    annealing."""
    if epochs is None:
        return 0
    return sum(1 for e in range(epochs) if prune_ratio_at(e, epochs, 0.5, anneal, warmup_epochs=0) == 0.0)


def prune_ratio_at(epoch: int, epochs: int | None, prune_ratio: float, anneal: float = 0.875, warmup_epochs: int = 1) -> float:
    """The keep-ratio schedule: the prune ratio of ``epoch`` (0-based).

    0 for the first ``warmup_epochs``; ``prune_ratio`` after; 0 again (full data, weights 1)
    in every epoch with ``epoch + 1 > anneal * epochs``, i.e. from epoch
    ``floor(anneal * epochs)`` on. ``epochs=None`` (unknown length, e.g. a step-limited
    phase) or ``anneal >= 1`` never anneals.

    The boundary is InfoBatch's, as the authors' code computes it (NUS-HPC-AI-Lab/InfoBatch,
    ``infobatch/infobatch.py``, ``IBSampler``): ``stop_prune = num_epochs * delta``; the
    sampler's ``reset()`` runs once in ``__init__`` and once at the start of every epoch, so
    0-based epoch e resets with ``iterations = e + 1`` and trains on the full data when
    ``iterations > stop_prune`` (the earlier ``infobatch.py`` at the repository root counts
    ``seed`` the same way). With delta = 0.875: E = 8 -> stop_prune 7, epochs 0-6 may be
    pruned, epoch 7 is the first full-data one; E = 10 -> stop_prune 8.75, epochs 0-7 may be
    pruned, epoch 8 is the first full-data one. "Full data from epoch ``ceil(delta E)``"
    (this project's rule before) is the same when ``delta E`` is a whole number and one epoch
    later otherwise (E = 10: 9 instead of 8). The comparison is in floating point, as theirs.
    Their code also resets the loss weights to 1 only in epoch ``stop_prune + 1`` (so only
    for a whole-number ``delta E``); here every full-data epoch has weights 1.

    Raises:
        ValueError: ``prune_ratio`` outside [0, 1) or ``anneal`` outside (0, 1].
    """
    if not 0 <= prune_ratio < 1:
        raise ValueError(f"prune_ratio must be in [0, 1), got {prune_ratio}")
    if not 0 < anneal <= 1:
        raise ValueError(f"anneal must be in (0, 1], got {anneal}")
    if epoch < warmup_epochs:
        return 0.0
    if epochs is not None and anneal < 1 and epoch + 1 > anneal * epochs:
        return 0.0
    return float(prune_ratio)


def _full(n: int) -> Selection:
    return Selection(torch.arange(n), torch.ones(n))


def select_random(n: int, keep: int, gen: torch.Generator) -> Selection:
    """``keep`` uniformly random windows of ``n``, weight 1."""
    keep = min(max(keep, 0), n)
    idx = torch.randperm(n, generator=gen)[:keep]
    return Selection(idx.sort().values, torch.ones(n))


def below_mean(scores: torch.Tensor) -> torch.Tensor | None:
    """InfoBatch's "well-learned" windows: those scoring strictly below the mean score.

    The mean is over every scored window. Unvisited windows (+inf) are left out of the mean
    and are never below it (always kept): with the warm-up epoch(s) on full data every window
    with an observed target has a score after epoch 0, so only windows that never had one stay
    unvisited. (The authors' code starts every score at 3 and takes the mean over all of
    them; its first epoch prunes nothing, as our warm-up.)

    Shapes: ``scores`` ``[n]`` -> bool ``[n]``, or None when no window has a score yet.
    """
    finite = torch.isfinite(scores)
    if not finite.any():
        return None
    return finite & (scores < scores[finite].mean())


def _keep_drawn(n: int, low: torch.Tensor, n_keep_low: int, weight: float, gen: torch.Generator) -> Selection:
    """Every window outside ``low`` plus ``n_keep_low`` of ``low`` drawn uniformly without
    replacement (one permutation of ``low`` from ``gen``, its first ``n_keep_low``), those at
    ``weight``, all others at 1."""
    low_idx = torch.nonzero(low).flatten()
    chosen = low_idx[torch.randperm(low_idx.numel(), generator=gen)[:n_keep_low]]
    kept = ~low
    kept[chosen] = True
    weights = torch.ones(n)
    weights[chosen] = weight
    return Selection(torch.nonzero(kept).flatten(), weights)


def select_infobatch(scores: torch.Tensor, prune_ratio: float, gen: torch.Generator) -> Selection:
    """InfoBatch as published: drop ``round(r n_below)`` of the below-mean windows.

    Keeps every window at or above the mean score (and every unvisited one, +inf, see
    :func:`below_mean`) and ``n_below - round(r n_below)`` of the ``n_below`` windows below
    it, drawn uniformly without replacement; a kept below-mean window weighs ``1 / (1 - r)``,
    every other window 1. r = ``prune_ratio`` is the fraction of the *below-mean* windows
    dropped, not of all windows: InfoBatch keeps ``n - round(r n_below)`` windows, more than
    ``(1 - r) n`` (see :func:`select_infobatch_budget` for the budget-matched variant).

    Differences from the authors' code (NUS-HPC-AI-Lab/InfoBatch, ``infobatch/infobatch.py``,
    ``InfoBatch.prune``), which keeps ``int(keep_ratio * n_below)`` below-mean samples with
    ``keep_ratio = min(1, max(0.1, 1 - r))`` and weighs them ``1 / keep_ratio``: (1) they
    floor the kept count, here the dropped count is rounded (Python's ``round``, half to even),
    so the kept count differs by at most one window; (2) their keep ratio is clamped at 0.1,
    so for r > 0.9 they behave as r = 0.9; here r is used as given (any r in [0, 1)); (3) the
    draw comes from ``gen`` (deterministic from (seed, epoch), the same on every DDP rank)
    instead of NumPy's global generator.

    Shapes: ``scores`` ``[n]`` (+inf = unvisited) -> Selection over n.
    Source: Qin et al., InfoBatch, ICLR 2024 (arXiv:2303.04947), Alg. 1 and the authors' code.

    Raises:
        ValueError: ``prune_ratio`` outside [0, 1).
    """
    if not 0 <= prune_ratio < 1:
        raise ValueError(f"prune_ratio must be in [0, 1), got {prune_ratio}")
    n = scores.numel()
    low = below_mean(scores)
    if low is None:
        return _full(n)
    n_low = int(low.sum())
    n_drop = int(round(prune_ratio * n_low))
    return _keep_drawn(n, low, n_low - n_drop, 1.0 / (1.0 - prune_ratio), gen)


def select_infobatch_budget(scores: torch.Tensor, keep: int, gen: torch.Generator, hard_cap: float = 0.5) -> Selection:
    """``infobatch-budget`` (ours): InfoBatch held to exactly ``keep`` windows.

    Where the windows at or above the mean (``n_above``, unvisited included) fit in the budget,
    it is InfoBatch with r chosen for this epoch: all of them are kept and
    ``keep - n_above`` of the ``n_below`` below-mean windows are drawn uniformly without
    replacement at weight ``n_below / (keep - n_above) = 1 / (1 - r)`` (the same draw as
    :func:`select_infobatch` with ``r = 1 - (keep - n_above) / n_below``). Where they do not
    (InfoBatch would train on more than the budget), only the highest
    ``max(unvisited, floor(hard_cap * keep))`` of them are kept outright and the rest of the
    budget is drawn uniformly from every other window, weight ``1 / p`` with p the kept
    fraction of that pool (ST-Prune's cap). Either way exactly ``keep`` windows are kept
    (when at least that many exist).

    Shapes: ``scores`` ``[n]`` (+inf = unvisited) -> Selection over n.
    Source: InfoBatch (arXiv:2303.04947) with the budget and cap of this project's ST-Prune.

    Raises:
        ValueError: ``hard_cap`` outside (0, 1].
    """
    if not 0 < hard_cap <= 1:
        raise ValueError(f"hard_cap must be in (0, 1], got {hard_cap}")
    n = scores.numel()
    keep = min(max(int(keep), 0), n)
    low = below_mean(scores)
    if low is None or keep >= n:
        return _full(n)
    n_low = int(low.sum())
    take = keep - (n - n_low)
    if take < 0:
        return _infobatch_capped(scores, keep, gen, hard_cap)
    return _keep_drawn(n, low, take, n_low / take if take > 0 else 1.0, gen)


def _infobatch_capped(scores: torch.Tensor, keep: int, gen: torch.Generator, hard_cap: float) -> Selection:
    """The over-budget branch of :func:`select_infobatch_budget`."""
    n = scores.numel()
    n_cap = min(keep, max(int((~torch.isfinite(scores)).sum()), int(math.floor(hard_cap * keep))))
    order = torch.argsort(scores, descending=True, stable=True)  # +inf first
    hard_idx = order[:n_cap]
    pool = order[n_cap:]
    take = keep - n_cap
    weights = torch.ones(n)
    if take > 0:
        chosen = pool[torch.randperm(pool.numel(), generator=gen)[:take]]
        weights[pool] = pool.numel() / take
        idx = torch.cat([hard_idx, chosen])
    else:
        idx = hard_idx
    return Selection(idx.sort().values, weights)


def allocate(sizes: torch.Tensor, total: int) -> torch.Tensor:
    """Split ``total`` draws over strata of ``sizes`` proportionally (largest remainder),
    at least one per non-empty stratum when ``total`` allows, never more than the size.

    Shapes: ``sizes`` ``[S]`` long -> ``[S]`` long summing to ``min(total, sizes.sum())``.
    """
    sizes = sizes.long()
    total = min(int(total), int(sizes.sum()))
    nonempty = sizes > 0
    if total <= 0:
        return torch.zeros_like(sizes)
    base = torch.zeros_like(sizes)
    if total >= int(nonempty.sum()):
        base[nonempty] = 1
    rest = total - int(base.sum())
    room = sizes - base
    if rest > 0:
        share = room.double() * rest / room.sum().clamp_min(1).double()
        add = share.floor().long().minimum(room)
        left = rest - int(add.sum())
        frac = (share - share.floor()).masked_fill(add >= room, -1.0)
        for j in torch.argsort(frac, descending=True, stable=True).tolist():
            if left <= 0:
                break
            if add[j] < room[j]:
                add[j] += 1
                left -= 1
        base = base + add
    return base


def select_st_prune(scores: torch.Tensor, strata: torch.Tensor, keep: int, gen: torch.Generator, hard_cap: float = 0.5,
                    rescale: str = "strata") -> Selection:
    """ST-Prune selection: hard windows kept, the rest drawn stratified by stationarity with
    stratum-preserving loss rescaling.

    1. Threshold = mean of the finite scores; windows above it (and unvisited, +inf) are
       "hard"; at most ``max(unvisited, hard_cap * keep)`` of them (the highest) are kept
       deterministically, the others join the low-score pool.
    2. The remaining budget ``keep - |hard kept|`` is split over the stationarity strata in
       proportion to their low-score counts (:func:`allocate`), drawn uniformly inside each.
    3. Stationarity-aware rescaling of the kept low-score windows, ``rescale``:

       - ``"strata"`` (default): a kept low-score window of stratum s gets weight
         ``(|low_s| / kept_s) / m``, with m the mean of ``|low_s| / kept_s`` over the kept
         low-score windows: the strata keep their shares of the low pool's loss (the
         distributional balance the paper's rescaling preserves), the low pool's mean weight
         is 1, and hard windows keep weight 1, so the loss keeps its full-data scale and the
         hard windows their emphasis.
       - ``"mass"``: weight ``|low_s| / kept_s``: the kept weights of a stratum sum to its
         low-score count, so every stratum keeps its whole expected loss mass (unbiased for the
         full-data loss, as InfoBatch's ``1 / (1 - r)``). At small budgets this weights an
         easy window 10-20x a hard one, and the loss grows ~1 / budget for the few steps of a
         pruned epoch; on METR-LA (STID, 10 epochs, 3 seeds) it was worse than random at the
         10% budget and behind ``"strata"`` at every budget (README, ST-Prune).

    Shapes: ``scores`` ``[n]`` float (+inf = unvisited), ``strata`` ``[n]`` long.
    Source: ST-Prune (arXiv:2602.19113), our reading in METHODS.md section 3.

    Raises:
        ValueError: ``hard_cap`` outside (0, 1].
    """
    if not 0 < hard_cap <= 1:
        raise ValueError(f"hard_cap must be in (0, 1], got {hard_cap}")
    if rescale not in RESCALE:
        raise ValueError(f"rescale must be one of {', '.join(RESCALE)}, got {rescale!r}")
    n = scores.numel()
    finite = torch.isfinite(scores)
    keep = min(max(int(keep), 0), n)
    if not finite.any() or keep >= n:
        return _full(n)
    thr = scores[finite].mean()
    hard = ~finite | (scores > thr)
    n_cap = max(int((~finite).sum()), int(math.floor(hard_cap * keep)))
    hard_idx = torch.nonzero(hard).flatten()
    if hard_idx.numel() > n_cap:  # keep the highest; +inf sorts first
        order = torch.argsort(scores[hard_idx], descending=True, stable=True)
        hard_idx = hard_idx[order[:n_cap]]
    is_hard = torch.zeros(n, dtype=torch.bool)
    is_hard[hard_idx] = True
    low = ~is_hard
    budget = keep - int(hard_idx.numel())
    n_strata = int(strata.max()) + 1 if n else 0
    sizes = torch.bincount(strata[low], minlength=n_strata)
    per = allocate(sizes, budget)
    weights = torch.ones(n)
    kept = [hard_idx]
    perm = torch.randperm(n, generator=gen)  # one draw, split by stratum: same on every rank
    for s in range(n_strata):
        if per[s] == 0:
            continue
        members = perm[(low & (strata == s))[perm]]
        chosen = members[: int(per[s])]
        weights[chosen] = float(sizes[s]) / float(per[s])
        kept.append(chosen)
    idx = torch.cat(kept).sort().values
    if rescale == "strata" and len(kept) > 1:
        low_kept = torch.cat(kept[1:])
        weights[low_kept] /= weights[low_kept].mean()
    return Selection(idx, weights)


def select_static(scores: torch.Tensor, keep: int) -> Selection:
    """Static pruning: the ``keep`` highest-scoring windows, weight 1 (unvisited first)."""
    n = scores.numel()
    keep = min(max(int(keep), 0), n)
    order = torch.argsort(scores, descending=True, stable=True)
    return Selection(order[:keep].sort().values, torch.ones(n))


@dataclass
class SelectionPolicy:
    """The per-epoch selection of one method (see the module docstring).

    Attributes:
        method: one of :data:`METHODS`.
        n: number of training windows.
        prune_ratio: in [0, 1); R, the fraction of all windows skipped in a pruned epoch, except
            for ``infobatch``: r, the fraction of the below-mean windows dropped.
        epochs: planned epochs (for annealing); ``None`` = unknown, no annealing.
        seed: random seed of the draws.
        anneal: fraction of the epochs that may be pruned (InfoBatch delta, 0.875; boundary in
            :func:`prune_ratio_at`).
        warmup_epochs: full-data epochs at the start (scores are unknown before one visit).
        hard_cap: ST-Prune's (and ``infobatch-budget``'s) cap on deterministically kept hard
            windows (fraction of the budget).
        rescale: ST-Prune's loss rescaling of kept low-score windows, ``strata`` or ``mass``
            (see :func:`select_st_prune`).
        anneal_from: an earlier start of the full-data (annealed) epochs, set when early
            stopping fires during the pruned epochs (:meth:`SamplePruning.defer_stop`); None:
            the schedule's own boundary.
    """

    method: str
    n: int
    prune_ratio: float = 0.5
    epochs: int | None = None
    seed: int = 0
    anneal: float = 0.875
    warmup_epochs: int = 1
    hard_cap: float = 0.5
    rescale: str = "strata"
    anneal_from: int | None = None

    def __post_init__(self):
        if self.method not in METHODS:
            raise ValueError(f"unknown sample-pruning method {self.method!r}; choose one of {', '.join(METHODS)}")
        prune_ratio_at(0, self.epochs, self.prune_ratio, self.anneal)  # validates
        self._static: Selection | None = None

    @property
    def needs_scores(self) -> bool:
        """Whether the method reads per-sample losses."""
        return self.method in ("st-prune", "infobatch", "infobatch-budget", "static")

    def ratio(self, epoch: int) -> float:
        """The prune ratio of ``epoch`` under this method's schedule (R, or r for ``infobatch``)."""
        if self.method == "none":
            return 0.0
        if self.method == "static":  # no annealing: pruned for good after the warm-up
            return prune_ratio_at(epoch, None, self.prune_ratio, 1.0, self.warmup_epochs)
        if self.anneal_from is not None and epoch >= self.anneal_from:
            return 0.0
        return prune_ratio_at(epoch, self.epochs, self.prune_ratio, self.anneal, self.warmup_epochs)

    def select(self, epoch: int, scores: torch.Tensor | None = None, strata: torch.Tensor | None = None) -> Selection:
        """The selection of ``epoch`` from the current score table.

        Shapes: ``scores`` ``[n]`` (+inf = never visited), ``strata`` ``[n]`` long.
        """
        r = self.ratio(epoch)
        if r == 0.0:
            return _full(self.n)
        keep = int(round((1.0 - r) * self.n))
        gen = epoch_generator(self.seed, epoch)
        if self.method == "random":
            return select_random(self.n, keep, gen)
        if self.method == "infobatch":  # r of the below-mean windows, not a budget
            return select_infobatch(scores, r, gen)
        if self.method == "infobatch-budget":
            return select_infobatch_budget(scores, keep, gen, self.hard_cap)
        if self.method == "st-prune":
            return select_st_prune(scores, strata, keep, gen, self.hard_cap, self.rescale)
        if self._static is None:  # static: first pruned epoch scores once
            self._static = select_static(scores, keep)
        return self._static
