"""Pure functions on sensor keep-masks: schedules, pruning, drop / regrow.

A keep-mask is a bool tensor ``[N]`` (True = sensor kept). Sparsity = fraction of the N
sensors switched off. Ties are broken by the lower index, so every function is
deterministic.

Source: Wu et al., "DynST: Dynamic Sparse Training for Resource-Constrained
Spatio-Temporal Forecasting", KDD 2025 (arXiv:2403.02914), Eqs. 4-7.
"""

from __future__ import annotations

import torch

from ..errors import ConfigError


def check_sparsity(sparsity: float, option: str = "--sparsity") -> float:
    """Return ``sparsity`` if it is in [0, 1).

    Raises:
        ConfigError: otherwise (the message names ``option``).
    """
    s = float(sparsity)
    if not 0.0 <= s < 1.0:
        raise ConfigError(f"{option}: sparsity is the fraction of sensors removed and must be in [0, 1), got {sparsity}")
    return s


def n_to_prune(n_sensors: int, sparsity: float) -> int:
    """Number of sensors switched off at ``sparsity``: ``round(sparsity * N)``, at most N - 1."""
    return min(int(round(check_sparsity(sparsity) * n_sensors)), n_sensors - 1)


def pruning_schedule(n_sensors: int, sparsity: float, rounds: int) -> list[int]:
    """Cumulative number of switched-off sensors after each of ``rounds`` pruning rounds.

    Equal steps of ``sparsity / rounds`` (the paper's 10 rounds x 3% -> 30%), rounded so
    that the last entry is exactly :func:`n_to_prune`.

    Raises:
        ConfigError: ``rounds < 1`` or sparsity outside [0, 1).
    """
    if rounds < 1:
        raise ConfigError(f"--rounds: must be >= 1, got {rounds}")
    total = n_to_prune(n_sensors, sparsity)
    return [int(round(total * (r + 1) / rounds)) for r in range(rounds)]


def _order(values: torch.Tensor, descending: bool) -> torch.Tensor:
    # stable sort so ties go to the lower index
    return torch.sort(values, descending=descending, stable=True).indices


def prune_smallest(scores: torch.Tensor, keep: torch.Tensor, n_prune: int) -> torch.Tensor:
    """Switch off the ``n_prune`` kept sensors with the smallest ``|scores|`` (Eq. 4).

    Args:
        scores: ``[N]`` real mask scores m.
        keep: ``[N]`` bool current keep-mask.
        n_prune: how many more sensors to switch off (0 <= n_prune < kept count).

    Returns:
        A new ``[N]`` bool keep-mask with exactly ``keep.sum() - n_prune`` sensors kept.

    Raises:
        ValueError: ``n_prune`` negative or not leaving at least one sensor.
    """
    kept = torch.nonzero(keep).flatten()
    if n_prune < 0 or n_prune >= kept.numel():
        raise ValueError(f"cannot prune {n_prune} of {kept.numel()} kept sensors")
    new = keep.clone()
    if n_prune:
        order = _order(scores.detach().abs()[kept], descending=False)
        new[kept[order[:n_prune]]] = False
    return new


def drop_regrow(
    grad: torch.Tensor, keep: torch.Tensor, n_swap: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Exchange sensors between the kept and switched-off sets at fixed sparsity (Eqs. 5-7).

    Drops the ``n_swap`` kept sensors with the smallest accumulated ``|dL/d(k*m)|`` and
    regrows the ``n_swap`` switched-off sensors with the largest one. ``n_swap`` is capped
    by the size of either set.

    Args:
        grad: ``[N]`` accumulated gradient magnitude w.r.t. the effective mask ``k * m``
            (defined for switched-off sensors too).
        keep: ``[N]`` bool keep-mask.
        n_swap: sensors to exchange.

    Returns:
        ``(new_keep [N] bool, dropped [n] long, regrown [n] long)``; the two index sets are
        disjoint and ``new_keep.sum() == keep.sum()``.
    """
    kept = torch.nonzero(keep).flatten()
    off = torch.nonzero(~keep).flatten()
    n = max(0, min(int(n_swap), kept.numel() - 1, off.numel()))
    g = grad.detach().abs()
    dropped = kept[_order(g[kept], descending=False)[:n]]
    regrown = off[_order(g[off], descending=True)[:n]]
    new = keep.clone()
    new[dropped] = False
    new[regrown] = True
    return new, dropped, regrown


def random_keep(n_sensors: int, sparsity: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """A uniformly random ``[N]`` keep-mask with exactly :func:`n_to_prune` sensors off."""
    n_off = n_to_prune(n_sensors, sparsity)
    perm = torch.randperm(n_sensors, generator=generator)
    keep = torch.ones(n_sensors, dtype=torch.bool)
    keep[perm[:n_off]] = False
    return keep
