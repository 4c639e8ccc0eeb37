"""The error budget of ``sparsest plan`` with a confidence bound: how much worse than the dense
model a keep-set may be on *unseen* days, not only on the validation windows at hand.

A plan compares a candidate's validation error with ``(1 + max_increase) x`` the dense
model's. On a short validation split (METR-LA week: 0.7 days) the point estimate of that
ratio is itself uncertain, and a keep-set just inside the budget on validation was 1-3 points
over it on the test days (README, "sparsest plan against the Table 2 sweep"). So the budget is
checked on an upper confidence bound of the ratio instead:

- both models are evaluated on the same validation windows (same targets, same missing
  readings), giving per-window error sums ``e_c[w]`` and ``e_d[w]`` (absolute errors for
  ``mae``, squared for ``mse`` / ``rmse``, over horizon, sensors and channels);
- the ratio ``R = sum_w e_c[w] / sum_w e_d[w]`` is resampled with a moving-block bootstrap
  (Kunsch 1989), paired (the same blocks for both models): blocks of
  ``block`` consecutive windows, drawn with replacement until the split's length is reached,
  2,000 replicates from a generator seeded with the run's seed. Consecutive windows overlap
  in time; a block of ``window + horizon`` windows holds every window that shares a time step
  with its first one, so the blocks carry the dependence between neighbouring windows;
- the bound is the ``confidence`` quantile of the replicates (never below the point ratio),
  for ``rmse`` its square root, times the dense model's validation error: the candidate's
  *budget error*. ``confidence = 0`` switches the bound off (the budget error is the point
  estimate, the validation error itself).

Source: the budget is DynST's Eq. 2 (Wu et al., KDD 2025, arXiv:2403.02914: fewest sensors
with the error under epsilon); the bootstrap bound is ours (moving-block bootstrap: Kunsch,
Ann. Statist. 17(3), 1989).
"""

from __future__ import annotations

import numpy as np

N_BOOT = 2000
# imports without torch (numpy only at import): the report (never torch) reads budget errors with budget_error


def window_error_sums(model, loader, scaler, metric: str) -> np.ndarray:
    """Per-window error sums of ``model`` on ``loader`` (not shuffled: windows in time order).

    Args:
        model: forecasts scaled units, ``forward(x, tod, dow)``; graph ``[B, S, N, C]`` or grid
            ``[B, S, C, H, W]``.
        loader: :class:`~sparsest.data.windows.WindowDataset` batches (``x``, ``y``, ``y_mask``, ...).
        scaler: brings forecasts back to physical units.
        metric: ``mae`` (sums of ``|y_hat - y|``) or ``mse`` / ``rmse`` (sums of squares), over the
            observed targets only (``y_mask``).

    Returns:
        float64 ``[n_windows]`` in physical units (squared for mse / rmse).
    """
    import torch

    was = model.training
    model.eval()
    out = []
    # iterating a loader draws its base seed from torch's global generator: restored after, so a plan's
    # training phases get the same random streams whether or not a bound was computed
    with torch.no_grad(), torch.random.fork_rng(devices=[]):
        for batch in loader:
            err = scaler.physical(model(batch["x"], batch["tod"], batch["dow"])) - batch["y"]
            err = err.abs() if metric == "mae" else err.square()
            out.append((err.double() * batch["y_mask"]).flatten(1).sum(1))
    model.train(was)
    return torch.cat(out).numpy() if out else np.zeros(0)


def block_length(n_windows: int, window: int, horizon: int) -> int:
    """``window + horizon`` windows, at most a tenth of the split (at least 1), so a bootstrap
    replicate is made of about ten or more blocks."""
    return int(max(1, min(window + horizon, n_windows // 10)))


def upper_ratio(errors: np.ndarray, reference: np.ndarray, confidence: float, block: int, seed: int = 0,
                n_boot: int = N_BOOT) -> float:
    """Upper ``confidence`` bound of ``sum(errors) / sum(reference)`` by a moving-block bootstrap
    over consecutive windows (module doc); never below the point ratio.

    Args:
        errors, reference: ``[n_windows]`` error sums of the candidate and of the dense model on
            the same windows, in time order.
        confidence: in [0, 1); 0 returns the point ratio.
        block: windows per block, >= 1.
        seed: seeds the bootstrap's own generator (the global random streams are not touched).

    Raises:
        ValueError: arrays of different lengths or empty, a non-positive reference sum, a
            confidence outside [0, 1) or a block < 1.
    """
    e, r = np.asarray(errors, dtype=np.float64), np.asarray(reference, dtype=np.float64)
    if e.shape != r.shape or e.ndim != 1 or len(e) == 0:
        raise ValueError(f"upper_ratio: errors {e.shape} and reference {r.shape} must be the same non-empty 1-d shape")
    if not 0 <= confidence < 1:
        raise ValueError(f"upper_ratio: confidence {confidence} not in [0, 1)")
    if block < 1:
        raise ValueError(f"upper_ratio: block {block} < 1")
    if not r.sum() > 0:
        raise ValueError("upper_ratio: the reference errors sum to 0 (a perfect dense model leaves no ratio)")
    point = float(e.sum() / r.sum())
    if confidence == 0:
        return point
    n = len(e)
    block = min(block, n)
    n_blocks = -(-n // block)
    ce, cr = np.concatenate([[0.0], np.cumsum(e)]), np.concatenate([[0.0], np.cumsum(r)])
    starts = np.random.default_rng(seed).integers(0, n - block + 1, size=(n_boot, n_blocks))
    # each replicate: n_blocks whole blocks (the last one cut so the replicate has n windows)
    lengths = np.full(n_blocks, block)
    lengths[-1] = n - block * (n_blocks - 1)
    se = (ce[starts + lengths] - ce[starts]).sum(1)
    sr = (cr[starts + lengths] - cr[starts]).sum(1)
    ratios = se / np.maximum(sr, np.finfo(float).tiny)
    return max(point, float(np.quantile(ratios, confidence)))


def budget_error(point: dict, key: str) -> float:
    """The budget error of a checkpoint of ``sparsest plan``'s search (the lower of its two
    keep-sets'): the confidence bounds ``<key>_ub`` / ``<key>_qr_ub``, or the validation
    errors of a point without them (``key``: ``val_<metric>``)."""
    return min(point.get(f"{key}_ub", point[key]), point.get(f"{key}_qr_ub", point[f"{key}_qr"]))


class BudgetCheck:
    """A plan's budget errors: every candidate against the dense model on the same windows.

    Args:
        dense: the dense model (every sensor kept); its per-window errors are taken once.
        prep: the prepared run (``loaders["val"]``, ``scaler``, ``spec``).
        metric: ``mae``, ``rmse`` or ``mse``.
        dense_error: the dense model's validation ``metric`` (what the bound multiplies).
        confidence: in [0, 1); 0: the budget error is the validation error itself.
        seed: the bootstrap's seed.
    """

    def __init__(self, dense, prep, metric: str, dense_error: float, confidence: float, seed: int = 0):
        self.prep, self.metric, self.dense_error, self.confidence, self.seed = prep, metric, dense_error, confidence, seed
        self.reference = None
        if confidence > 0:
            self.reference = window_error_sums(dense, prep.loaders["val"], prep.scaler, self._family)
            self.block = block_length(len(self.reference), prep.spec.window, prep.spec.horizon)

    @property
    def _family(self) -> str:
        return "mae" if self.metric == "mae" else "mse"

    def bound(self, model, error: float) -> float:
        """The budget error of ``model`` whose validation ``metric`` is ``error``: ``error``
        itself without a confidence, else ``dense_error x`` the upper bound of the ratio
        (square root of it for rmse), never below ``error``."""
        if self.reference is None:
            return float(error)
        mine = window_error_sums(model, self.prep.loaders["val"], self.prep.scaler, self._family)
        ratio = upper_ratio(mine, self.reference, self.confidence, self.block, self.seed)
        return max(float(error), self.dense_error * (np.sqrt(ratio) if self.metric == "rmse" else ratio))

    def describe(self) -> str:
        if self.reference is None:
            return "the validation error itself (--confidence 0)"
        return (f"its upper {100 * self.confidence:g}% bound (moving-block bootstrap of the error ratio to the dense model "
                f"over {len(self.reference)} validation windows, blocks of {self.block})")


__all__ = ["BudgetCheck", "budget_error", "window_error_sums", "upper_ratio", "block_length"]
