"""The default ``dynst`` search continued past a fixed sparsity: the keep-sets of
``sparsest plan``, one checkpoint at a time (numpy only; the dense forecaster's forecasts
enter through a :class:`~sparsest.pruning.sensors.placement.ReadoutSurrogate` built once).

DynST's Eq. 2 asks for the fewest sensors whose error stays under a budget; the paper, and
``sparsest run``, only search at a fixed sparsity. Here the search goes on:

- :func:`checkpoint_sizes`: the checkpoints ``s_k = k * step`` (``k = 1, 2, ...``) up to
  ``max_sparsity``, as numbers of sensors switched off (sizes that round to an earlier one
  are skipped, so every checkpoint switches off at least one more sensor).
- :func:`shrink`: from the previous checkpoint's keep-set, switch off one sensor at a time,
  each time the one whose loss raises the held-out full-field error of the read-out least
  (the ``candidates`` cheapest by their own leave-one-out read-out cost are measured).
- :func:`next_keep_set`: the keep-set of the next checkpoint: the shrunk keep-set or the QR
  keep-set of that size, whichever has the lower held-out error, then drop / regrow at that
  size (:func:`~sparsest.pruning.sensors.placement.swap_search`, the part-8 default). At the
  first checkpoint the previous keep-set is every sensor. Wherever the QR start wins, the
  result is exactly what ``sparsest run --scheme dynst`` finds at that size from the same
  dense model; the continued start is taken only where the read-out scores it lower.

Source: Wu et al., DynST, KDD 2025 (arXiv:2403.02914), Eq. 2 (the constrained problem);
the continuation is ours.
"""

from __future__ import annotations

import numpy as np

from .placement import ReadoutSurrogate, swap_search


def checkpoint_sizes(n_sensors: int, step: float, max_sparsity: float) -> list[tuple[float, int]]:
    """``(target sparsity, sensors switched off)`` of every checkpoint.

    ``s_k = k * step`` for ``k = 1, 2, ...`` while ``s_k <= max_sparsity``; sensors off
    ``round(s_k * N)``, at most ``N - 1``; a checkpoint whose count repeats an earlier one
    (or is 0) is skipped.
    """
    out: list[tuple[float, int]] = []
    seen = {0}
    k = 1
    while k * step <= max_sparsity + 1e-9:
        s = round(k * step, 10)
        n_off = min(int(round(s * n_sensors)), n_sensors - 1)
        if n_off not in seen:
            out.append((s, n_off))
            seen.add(n_off)
        k += 1
    return out


def shrink(keep: np.ndarray, surrogate: ReadoutSurrogate, n_keep: int, candidates: int = 8) -> tuple[np.ndarray, list[int]]:
    """Switch off sensors of ``keep`` one at a time until ``n_keep`` are kept.

    Each step ranks the kept sensors by what switching each one off alone would cost (its
    read-out MAE from the other kept sensors minus its own forecast MAE), measures the
    full held-out error (:meth:`ReadoutSurrogate.total`) of switching off each of the
    ``candidates`` cheapest, and switches off the best.

    Returns:
        the keep-mask and the switched-off sensors in order.
    """
    keep = np.asarray(keep, dtype=bool).copy()
    removed: list[int] = []
    while int(keep.sum()) > max(1, n_keep):
        kept = np.where(keep)[0]
        cost = surrogate.reconstruct_each_kept(kept) - surrogate.own[kept]
        best = (np.inf, -1)
        for i in kept[np.argsort(cost, kind="stable")[:candidates]]:
            trial = keep.copy()
            trial[i] = False
            v = surrogate.total(trial)
            if v < best[0]:
                best = (v, int(i))
        keep[best[1]] = False
        removed.append(best[1])
    return keep, removed


def next_keep_set(previous: np.ndarray, qr_keep: np.ndarray, surrogate: ReadoutSurrogate, candidates: int = 8,
                  max_swaps: int = 40) -> tuple[np.ndarray, dict]:
    """The search's keep-set of ``qr_keep.sum()`` sensors, continued from ``previous``.

    Args:
        previous: ``[N_s]`` bool, the keep-set of the previous checkpoint (all sensors at the first).
        qr_keep: ``[N_s]`` bool, the QR keep-set of the new size (the reference).
        surrogate: the read-out surrogate of the dense model.
        candidates, max_swaps: as :func:`~sparsest.pruning.sensors.placement.swap_search`
            (``max_swaps`` 0: the better start itself).

    Returns:
        the keep-mask and ``info``: ``start`` (``"continued"`` or ``"qr"``), the held-out
        full-field MAE (standardised) of both starts and after the exchanges, the sensors
        switched off by :func:`shrink`, and the exchanges.
    """
    n_keep = int(np.asarray(qr_keep).sum())
    shrunk, removed = shrink(previous, surrogate, n_keep, candidates)
    e_cont, e_qr = surrogate.total(shrunk), surrogate.total(np.asarray(qr_keep, dtype=bool))
    start, name = (shrunk, "continued") if e_cont <= e_qr else (np.asarray(qr_keep, dtype=bool), "qr")
    keep, swaps = swap_search(start, surrogate, candidates, max_swaps)
    info = {"start": name, "heldout_mae_std_start": {"continued": e_cont, "qr": e_qr},
            "heldout_mae_std": swaps[-1]["heldout_mae_std"], "switched_off": removed if name == "continued" else [],
            "swaps": len(swaps) - 1, "exchanges": [(h["dropped"], h["regrown"]) for h in swaps[1:]]}
    return keep, info


__all__ = ["checkpoint_sizes", "shrink", "next_keep_set"]
