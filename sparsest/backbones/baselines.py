"""Non-learned reference forecasts every trained backbone must beat.

- persistence: the last observed input step repeated over the horizon;
- historical average: for every sensor / pixel and time-of-day slot, the mean of the
  training split (Williams & Hoel, 2003; the HA baseline of DCRNN, Li et al., ICLR 2018).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..data.core import SpatioTemporalData
from ..data.windows import StandardScaler
from .registry import DataSpec, register_backbone


class Persistence(nn.Module):
    """Forecast = last input step, for every horizon step.

    Shapes: ``x`` ``[B, T, ...]`` (scaled) -> ``[B, S, ...]`` (scaled). A missing last
    reading was filled with 0 (the training mean) by the windowing.
    """

    def __init__(self, horizon: int):
        super().__init__()
        self.horizon = horizon

    def forward(self, x: torch.Tensor, tod=None, dow=None) -> torch.Tensor:
        return x[:, -1:].expand(-1, self.horizon, *x.shape[2:]).clone()


class HistoricalAverage(nn.Module):
    """Mean of the training split per sensor (or pixel), channel and time-of-day slot.

    Slots never seen in training fall back to the sensor's overall training mean.
    Call :meth:`fit` before use.

    Shapes: ``tod`` ``[B, T + S]``; returns ``[B, S, ...]`` in scaled units.
    """

    def __init__(self, horizon: int, steps_per_day: int):
        super().__init__()
        self.horizon = horizon
        self.steps_per_day = steps_per_day
        self.register_buffer("table", torch.zeros(0))  # [steps_per_day, ...]

    def fit(self, data: SpatioTemporalData, time_range: tuple[int, int], tod: np.ndarray, scaler: StandardScaler):
        """Fit the per-slot table on ``data.values[start:stop]`` (scaled by ``scaler``)."""
        a, b = time_range
        v = data.values[a:b].astype(np.float64)
        mean, std = scaler.shape_for(v)
        v = (v - mean) / std
        slots = tod[a:b]
        with np.errstate(all="ignore"):
            overall = np.nanmean(v, axis=0)
            table = np.stack(
                [np.nanmean(v[slots == s], axis=0) if (slots == s).any() else overall for s in range(self.steps_per_day)]
            )
        table = np.where(np.isnan(table), overall[None], table)
        self.table = torch.as_tensor(np.nan_to_num(table), dtype=torch.float32)
        return self

    def forward(self, x: torch.Tensor, tod: torch.Tensor, dow=None) -> torch.Tensor:
        T = x.shape[1]
        return self.table[tod[:, T : T + self.horizon]]  # [B, S, ...]


@register_backbone("persistence", kind="any", summary="baseline: last observed value repeated", trainable=False)
def persistence(spec: DataSpec, **kwargs) -> Persistence:
    return Persistence(spec.horizon)


@register_backbone("historical-average", kind="any", summary="baseline: training mean per sensor and time of day", trainable=False)
def historical_average(spec: DataSpec, **kwargs) -> HistoricalAverage:
    return HistoricalAverage(spec.horizon, spec.steps_per_day)
