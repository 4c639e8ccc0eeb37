"""Masked forecast errors: MAE, RMSE, MAPE, MSE.

Missing targets (``mask == False``) are left out of every sum and count, never treated as
zeros. Pure functions work on one batch; :class:`HorizonMetrics` accumulates over a data
set (a torchmetrics ``Metric``, so it also reduces across DDP processes) and reports each
metric averaged over the horizon and per horizon step.

Shapes: predictions, targets and masks ``[B, S, ...]`` (S = horizon), any trailing layout
(graph ``[N, C]`` or grid ``[C, H, W]``). Units: those of the targets; MAPE in percent.
"""

from __future__ import annotations

import torch
from torchmetrics import Metric

MAPE_EPS = 1e-3  # targets with |y| <= MAPE_EPS are left out of MAPE (undefined there)


def _masked_mean(err: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    m = mask.to(err.dtype)
    return (err * m).sum() / m.sum().clamp_min(1.0)


def masked_mae(y_hat: torch.Tensor, y: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean absolute error over observed entries (``mask`` True). Same units as ``y``."""
    return _masked_mean((y_hat - y).abs(), mask)


def masked_mse(y_hat: torch.Tensor, y: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean squared error over observed entries. Units of ``y`` squared."""
    return _masked_mean((y_hat - y) ** 2, mask)


def masked_rmse(y_hat: torch.Tensor, y: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Root mean squared error over observed entries. Same units as ``y``."""
    return masked_mse(y_hat, y, mask).sqrt()


def masked_mape(y_hat: torch.Tensor, y: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean absolute percentage error (%) over observed entries with ``|y| > 1e-3``."""
    m = mask & (y.abs() > MAPE_EPS)
    return 100.0 * _masked_mean((y_hat - y).abs() / y.abs().clamp_min(MAPE_EPS), m)


class HorizonMetrics(Metric):
    """Accumulates masked MAE, RMSE, MAPE and MSE per horizon step over many batches.

    ``update(y_hat, y, mask)`` takes ``[B, S, ...]`` tensors; ``compute()`` returns
    ``{"mae", "rmse", "mape", "mse"}`` averaged over all observed entries of all horizon
    steps, plus ``"mae_per_horizon"`` etc. as lists of length S. RMSE per horizon is the
    root of that step's MSE; the overall RMSE is the root of the overall MSE.
    """

    full_state_update = False

    def __init__(self, horizon: int, **kwargs):
        super().__init__(**kwargs)
        self.horizon = horizon
        for name in ("abs", "sq", "ape", "n", "n_ape"):
            self.add_state(name, default=torch.zeros(horizon, dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, y_hat: torch.Tensor, y: torch.Tensor, mask: torch.Tensor) -> None:
        dims = [0] + list(range(2, y.dim()))
        m = mask.to(torch.float64)
        err = (y_hat.double() - y.double())
        self.abs += (err.abs() * m).sum(dims)
        self.sq += (err**2 * m).sum(dims)
        ma = (mask & (y.abs() > MAPE_EPS)).to(torch.float64)
        self.ape += (err.abs() / y.double().abs().clamp_min(MAPE_EPS) * ma).sum(dims)
        self.n += m.sum(dims)
        self.n_ape += ma.sum(dims)

    def compute(self) -> dict:
        n = self.n.clamp_min(1)
        na = self.n_ape.clamp_min(1)
        tot_n = self.n.sum().clamp_min(1)
        out = {
            "mae": float(self.abs.sum() / tot_n),
            "rmse": float((self.sq.sum() / tot_n).sqrt()),
            "mape": float(100 * self.ape.sum() / self.n_ape.sum().clamp_min(1)),
            "mse": float(self.sq.sum() / tot_n),
            "mae_per_horizon": (self.abs / n).tolist(),
            "rmse_per_horizon": (self.sq / n).sqrt().tolist(),
            "mape_per_horizon": (100 * self.ape / na).tolist(),
            "mse_per_horizon": (self.sq / n).tolist(),
            "n_observed": int(self.n.sum()),
        }
        return out


__all__ = ["masked_mae", "masked_mse", "masked_rmse", "masked_mape", "HorizonMetrics", "MAPE_EPS"]
