"""Non-learned reference forecasts every trained backbone must beat.

- persistence: the last observed input step repeated over the horizon;
- historical average: for every sensor / pixel and time-of-day slot, the mean of the
  training split (Williams & Hoel, 2003; the HA baseline of DCRNN, Li et al., ICLR 2018);
- extrapolation (grids only): optical-flow nowcasting, the last frame advected along the
  motion field of the last input frames (pysteps, Pulkkinen et al., GMD 2019);
- lower bound (data sets with a physical lower bound only): that bound everywhere, e.g. "no
  rain" on radar rain, where most pixels are exactly 0 mm/h.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from typing import Literal

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


class LowerBound(nn.Module):
    """Forecast = the data set's physical lower bound (``scaler.floor``) everywhere ("no rain").

    Shapes: ``x`` ``[B, T, ...]`` (scaled) -> ``[B, S, ...]`` (scaled). Call :meth:`fit` first.

    Raises:
        ValueError: (``fit``) the data set has no lower bound.
    """

    def __init__(self, horizon: int):
        super().__init__()
        self.horizon = horizon
        self.register_buffer("value", torch.zeros(0))  # graph [C], grid [C, 1, 1]: scaled bound

    def fit(self, data: SpatioTemporalData, time_range: tuple[int, int], tod: np.ndarray, scaler: StandardScaler) -> "LowerBound":
        """Take the bound from ``scaler.floor``, in scaled units (the other arguments are unused); returns self."""
        if scaler.floor is None:
            raise ValueError(f"{data.name}: the lower-bound baseline needs a data set with a lower bound")
        mean, std = scaler.tensors()
        self.value = ((scaler.floor - mean) / std).float()
        return self

    def forward(self, x: torch.Tensor, tod=None, dow=None) -> torch.Tensor:
        return self.value.to(x).expand(x.shape[0], self.horizon, *x.shape[2:]).clone()


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
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # "Mean of empty slice": a cell never observed in a slot
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


def _pysteps():
    """pysteps' Lucas-Kanade motion and semi-Lagrangian extrapolation methods, imported on
    first use (importing pysteps takes seconds) with its "Pysteps configuration file found
    at: ..." print silenced."""
    with contextlib.redirect_stdout(io.StringIO()):
        from pysteps import extrapolation, motion
    return motion.get_method("LK"), extrapolation.get_method("semilagrangian")


class Extrapolation(nn.Module):
    """Optical-flow extrapolation ("Lagrangian persistence") of grid frames, not trained.

    Per window and channel: the input is brought back to physical units (the scaler's mean /
    std, set by :meth:`fit`); the motion field is estimated from the last ``n_frames`` input
    frames with pysteps' Lucas-Kanade (``pysteps.motion.get_method("LK")``: Shi-Tomasi
    corners tracked by OpenCV's pyramidal Lucas-Kanade, Bouguet 2001, interpolated to a dense
    field; see the pysteps docs); the last frame is advected ``S`` steps along it by
    pysteps' backward semi-Lagrangian scheme (``pysteps.extrapolation.get_method(
    "semilagrangian")``, Germann & Zawadzki, MWR 2002); the result is scaled back. Source:
    pysteps (Pulkkinen et al., GMD 2019), imported lazily.

    Missing and outside-the-domain values (``fill``): ``"zero"`` sets missing input
    readings and the pixels advected from outside the domain to 0 in physical units (0 mm/h,
    clear sky, for rain rate); ``"last"`` leaves missing inputs as the windowing filled them
    (the training mean) and gives pixels advected from outside the pixel's last input value
    (persistence there); ``"auto"`` (default) is ``"zero"`` for a field whose training
    values are all >= 0 and include exact zeros (rain rate, counts) and ``"last"`` otherwise
    (e.g. temperature in K). A missing input is recognised as exactly 0 in scaled units (the
    windowing's fill); a real reading equal to the training mean to the last bit would be
    taken for missing.

    Shapes: ``x`` ``[B, T, C, H, W]`` (scaled; T >= ``n_frames``) -> ``[B, S, C, H, W]``
    (scaled), float32; the motion is in pixels per step. ``tod`` / ``dow`` are ignored.
    Before :meth:`fit` the input is taken as already in physical units.
    """

    def __init__(self, horizon: int, n_frames: int = 3, fill: Literal["auto", "zero", "last"] = "auto"):
        super().__init__()
        if n_frames < 2:
            raise ValueError(f"extrapolation: n_frames must be >= 2 to see motion, got {n_frames}")
        if fill not in ("auto", "zero", "last"):
            raise ValueError(f"extrapolation: fill must be 'auto', 'zero' or 'last', got {fill!r}")
        self.horizon, self.n_frames, self.fill = horizon, n_frames, fill
        self.register_buffer("mean", torch.zeros(0))  # [C] physical units
        self.register_buffer("std", torch.ones(0))  # [C]
        self.fill_used = "last" if fill == "auto" else fill

    def fit(self, data: SpatioTemporalData, time_range: tuple[int, int], tod: np.ndarray, scaler: StandardScaler):
        """Take the scaler's mean / std and, for ``fill="auto"``, look at the training values
        ``data.values[start:stop]`` (``tod`` is not used)."""
        self.mean = torch.as_tensor(np.asarray(scaler.mean, dtype=np.float32).reshape(-1))
        self.std = torch.as_tensor(np.asarray(scaler.std, dtype=np.float32).reshape(-1))
        if self.fill == "auto":
            a, b = time_range
            v = data.values[a:b]
            with np.errstate(all="ignore"):
                lo = np.nanmin(v) if (~np.isnan(v)).any() else np.nan
            self.fill_used = "zero" if lo == 0 else "last"  # nanmin 0: all >= 0, some exactly 0
        return self

    @torch.no_grad()
    def forward(self, x: torch.Tensor, tod=None, dow=None) -> torch.Tensor:
        lk, semilagrangian = _pysteps()
        B, T, C = x.shape[:3]
        if T < self.n_frames:
            raise ValueError(f"extrapolation: needs at least {self.n_frames} input steps, got {T}")
        xs = x[:, -self.n_frames:].detach().to("cpu", torch.float64).numpy()  # [B, F, C, H, W] scaled
        mean = self.mean.double().numpy() if self.mean.numel() else np.zeros(C)
        std = self.std.double().numpy() if self.std.numel() else np.ones(C)
        zero = self.fill_used == "zero"
        out = np.empty((B, self.horizon, *x.shape[2:]), dtype=np.float64)
        for b in range(B):
            for c in range(C):
                frames = xs[b, :, c] * std[c] + mean[c]  # [F, H, W] physical
                if zero:
                    frames[xs[b, :, c] == 0] = 0.0  # missing -> 0 (e.g. 0 mm/h)
                with warnings.catch_warnings(), np.errstate(all="ignore"):  # pysteps' outlier test on few features:
                    warnings.simplefilter("ignore", UserWarning)  # "Singular matrix during outlier detection"
                    warnings.simplefilter("ignore", RuntimeWarning)  # "Degrees of freedom <= 0", 0-division
                    velocity = lk(frames)  # [2, H, W] pixels per step
                ahead = semilagrangian(frames[-1], velocity, self.horizon, outval=np.nan)  # [S, H, W]
                outside = np.isnan(ahead)
                ahead[outside] = 0.0 if zero else np.broadcast_to(frames[-1], ahead.shape)[outside]
                out[b, :, c] = (ahead - mean[c]) / std[c]
        return torch.as_tensor(out, dtype=torch.float32, device=x.device)


@register_backbone("persistence", kind="any", summary="baseline: last observed value repeated", trainable=False)
def persistence(spec: DataSpec, **kwargs) -> Persistence:
    return Persistence(spec.horizon)


@register_backbone("historical-average", kind="any", summary="baseline: training mean per sensor and time of day", trainable=False)
def historical_average(spec: DataSpec, **kwargs) -> HistoricalAverage:
    return HistoricalAverage(spec.horizon, spec.steps_per_day)


@register_backbone("lower-bound", kind="any", summary="baseline: the data set's physical lower bound everywhere (radar: no rain)", trainable=False)
def lower_bound(spec: DataSpec, **kwargs) -> LowerBound:
    return LowerBound(spec.horizon)


@register_backbone("extrapolation", kind="grid", summary="baseline: pysteps optical flow (Lucas-Kanade) + semi-Lagrangian advection of the last frame", trainable=False)
def extrapolation(spec: DataSpec, **kwargs) -> Extrapolation:
    return Extrapolation(spec.horizon, **kwargs)
