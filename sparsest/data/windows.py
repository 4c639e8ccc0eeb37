"""Sliding windows, chronological splits and the train-only scaler.

Windows are index views into one array: a ``[T, ...]`` series is stored once (shared with
the caller's numpy array, never copied per window) and each item slices ``T_in + S`` steps
out of it on demand. Scaling and NaN filling happen per item, so not even one scaled copy
of a long series is made.

Shapes: T input steps (``window``), S forecast steps (``horizon``), N sensors, C channels,
H x W grid. Graph items: ``x`` ``[T, N, C]``, ``y`` ``[S, N, C]``. Grid items:
``x`` ``[T, C, H, W]``, ``y`` ``[S, C, H, W]``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset

from ..errors import DataError
from .core import SpatioTemporalData


@dataclass(frozen=True)
class Split:
    """Chronological train / validation / test ranges ``[start, stop)`` in time steps."""

    train: tuple[int, int]
    val: tuple[int, int]
    test: tuple[int, int]


def chronological_split(
    n_steps: int,
    window: int,
    horizon: int,
    fractions: tuple[float, float, float] = (0.7, 0.1, 0.2),
    source: str = "data",
) -> Split:
    """Split ``n_steps`` time steps into consecutive train, validation and test ranges.

    Windows never cross a boundary, so no target of the training set lies in validation or
    test (the DCRNN protocol splits overlapping windows instead and leaks a few steps).

    Args:
        n_steps: T of the whole series.
        window: input steps per sample.
        horizon: forecast steps per sample.
        fractions: train, validation, test fractions of the time axis (sum to 1).
        source: name used in error messages.

    Raises:
        DataError: if a split is shorter than one window of ``window + horizon`` steps.
    """
    if window < 1 or horizon < 1:
        raise DataError(f"{source}: window and horizon must be >= 1 (got {window}, {horizon})")
    if abs(sum(fractions) - 1.0) > 1e-6 or min(fractions) <= 0:
        raise DataError(f"{source}: split fractions must be positive and sum to 1, got {fractions}")
    need = window + horizon
    n_train = int(round(n_steps * fractions[0]))
    n_val = int(round(n_steps * fractions[1]))
    bounds = [(0, n_train), (n_train, n_train + n_val), (n_train + n_val, n_steps)]
    for name, (a, b) in zip(("train", "validation", "test"), bounds):
        if b - a < need:
            raise DataError(
                f"{source}: {n_steps} time steps give a {name} split of {b - a} steps, fewer "
                f"than one window of {window} + {horizon} = {need} steps; use a shorter "
                f"--window/--horizon or a longer series"
            )
    return Split(*bounds)


class StandardScaler:
    """Per-channel z-score fitted on the training time range only, ignoring NaN.

    ``mean`` and ``std`` have shape ``[C]``; they broadcast over graph ``[..., N, C]`` or grid
    ``[..., C, H, W]`` values through :meth:`shape_for`.
    """

    def __init__(self, mean: np.ndarray, std: np.ndarray, kind: str):
        self.mean = np.asarray(mean, dtype=np.float32)
        self.std = np.asarray(std, dtype=np.float32)
        self.kind = kind

    @classmethod
    def fit(cls, data: SpatioTemporalData, time_range: tuple[int, int]) -> "StandardScaler":
        """Fit on ``data.values[start:stop]`` only (no look at validation or test).

        Raises:
            DataError: if a channel has no observed value in the training range.
        """
        a, b = time_range
        v = data.values[a:b]
        axes = (0, 1) if data.kind == "graph" else (0, 2, 3)
        with np.errstate(all="ignore"):
            n_obs = (~np.isnan(v)).sum(axis=axes)
            if (n_obs == 0).any():
                raise DataError(f"{data.source}: a channel has no observed value in the training split")
            mean = np.nanmean(v, axis=axes, dtype=np.float64)
            std = np.nanstd(v, axis=axes, dtype=np.float64)
        std = np.where(std < 1e-8, 1.0, std)
        return cls(mean, std, data.kind)

    def shape_for(self, arr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mean and std reshaped to broadcast over ``arr``'s channel axis."""
        if self.kind == "graph":
            return self.mean, self.std
        return self.mean[:, None, None], self.std[:, None, None]

    def tensors(self, device=None) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and std as tensors shaped ``[C]`` (graph) or ``[C, 1, 1]`` (grid)."""
        m, s = self.shape_for(self.mean)
        return torch.as_tensor(m, device=device), torch.as_tensor(s, device=device)

    def to_dict(self) -> dict:
        return {"mean": self.mean.tolist(), "std": self.std.tolist(), "kind": self.kind}

    @classmethod
    def from_dict(cls, d: dict) -> "StandardScaler":
        return cls(np.array(d["mean"]), np.array(d["std"]), d["kind"])


def time_features(data: SpatioTemporalData) -> tuple[np.ndarray, np.ndarray]:
    """Time-of-day slot ``[T]`` in ``[0, steps_per_day)`` and day-of-week ``[T]`` in ``[0, 7)``.

    From ``data.timestamps`` when known, else from the step index (step 0 = midnight, Monday).
    """
    spd = data.steps_per_day
    if data.timestamps is not None:
        ts = data.timestamps.astype("datetime64[ns]")
        day = ts.astype("datetime64[D]")
        frac = (ts - day).astype("timedelta64[ns]").astype(np.int64) / 86_400e9
        tod = np.clip((frac * spd).astype(np.int64), 0, spd - 1)
        dow = ((day.astype(np.int64) + 3) % 7).astype(np.int64)  # 1970-01-01 was a Thursday
    else:
        t = np.arange(data.n_steps)
        tod = t % spd
        dow = (t // spd) % 7
    return tod.astype(np.int64), dow.astype(np.int64)


class WindowDataset(Dataset):
    """Samples ``(x, y)`` of ``window`` input and ``horizon`` target steps, as index views.

    The series is held once as a tensor sharing memory with ``data.values``; item ``i`` is
    the slice starting at ``start + i * stride``. Inputs are z-scored with a scaler fitted on
    training data and missing readings set to 0 (the training mean); targets stay in
    physical units with missing readings set to 0 and flagged False in ``y_mask``.

    Item keys: ``x`` ``[T, ...]`` float32 (scaled), ``x_mask`` ``[T, ...]`` bool,
    ``y`` ``[S, ...]`` float32 (physical units), ``y_mask`` ``[S, ...]`` bool,
    ``tod`` / ``dow`` ``[T + S]`` int64 (time-of-day slot and day of week of every step),
    ``t0`` int (index of the first input step).
    """

    def __init__(
        self,
        data: SpatioTemporalData,
        time_range: tuple[int, int],
        window: int,
        horizon: int,
        scaler: StandardScaler,
        stride: int = 1,
        tod: np.ndarray | None = None,
        dow: np.ndarray | None = None,
    ):
        with warnings.catch_warnings():  # read-only arrays (np.load of a read-only file) are fine: never written
            warnings.simplefilter("ignore", UserWarning)
            self.values = torch.from_numpy(data.values)  # shares memory, no copy
        self.start, self.stop = time_range
        self.window, self.horizon, self.stride = window, horizon, stride
        mean, std = scaler.tensors()
        self.mean, self.std = mean.float(), std.float()
        if tod is None or dow is None:
            tod, dow = time_features(data)
        self.tod = torch.from_numpy(tod)
        self.dow = torch.from_numpy(dow)
        n = (self.stop - self.start - window - horizon) // stride + 1
        if n < 1:
            raise DataError(
                f"{data.source}: range {time_range} holds fewer than one window of "
                f"{window} + {horizon} steps"
            )
        self._len = n

    def __len__(self) -> int:
        return self._len

    def __getitem__(self, i: int) -> dict:
        if not 0 <= i < self._len:
            raise IndexError(i)
        t0 = self.start + i * self.stride
        t1 = t0 + self.window
        x = self.values[t0:t1]  # view [T, ...]
        y = self.values[t1 : t1 + self.horizon]  # view [S, ...]
        x_mask = ~torch.isnan(x)
        y_mask = ~torch.isnan(y)
        xs = torch.where(x_mask, (x - self.mean) / self.std, torch.zeros((), dtype=x.dtype))
        ys = torch.where(y_mask, y, torch.zeros((), dtype=y.dtype))
        sl = slice(t0, t1 + self.horizon)
        return {
            "x": xs,
            "x_mask": x_mask,
            "y": ys,
            "y_mask": y_mask,
            "tod": self.tod[sl],
            "dow": self.dow[sl],
            "t0": t0,
        }
