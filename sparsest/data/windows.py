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
from dataclasses import dataclass, field

import numpy as np
import torch
from torch.utils.data import Dataset

from ..errors import DataError
from .core import SpatioTemporalData

#: train, validation, test fractions of the chronological split (``--split``'s default)
DEFAULT_SPLIT = (0.7, 0.1, 0.2)


@dataclass(frozen=True)
class Split:
    """Chronological train / validation / test ranges ``[start, stop)`` in rows.

    ``pieces`` holds, per split name, the unbroken runs (``[start, stop)`` row ranges) that
    windows may be cut from: the one range itself for a series without gaps, else the
    parts of the data's segments that fall inside the range.
    """

    train: tuple[int, int]
    val: tuple[int, int]
    test: tuple[int, int]
    pieces: dict = field(default=None, compare=False)

    def runs(self, name: str) -> list[tuple[int, int]]:
        """The unbroken runs of split ``name`` (``"train"``, ``"val"`` or ``"test"``)."""
        if self.pieces is None:
            return [getattr(self, name)]
        return list(self.pieces[name])

    def n_steps(self, name: str) -> int:
        """Rows of split ``name`` that lie inside its runs."""
        return sum(b - a for a, b in self.runs(name))


def chronological_split(
    n_steps: int,
    window: int,
    horizon: int,
    fractions: tuple[float, float, float] = DEFAULT_SPLIT,
    source: str = "data",
    segments: np.ndarray | None = None,
) -> Split:
    """Split ``n_steps`` time steps into consecutive train, validation and test ranges.

    Windows never cross a boundary, so no target of the training set lies in validation or
    test (the DCRNN protocol splits overlapping windows instead and leaks a few steps).
    With ``segments`` (unbroken runs of a series with gaps) the fractions are taken of the
    *valid* time, the rows inside segments, and every split keeps the parts of the segments
    inside it as its runs (windows are cut inside runs only, never across a gap).

    Args:
        n_steps: T of the whole series (rows).
        window: input steps per sample.
        horizon: forecast steps per sample.
        fractions: train, validation, test fractions of the (valid) time axis (sum to 1).
        source: name used in error messages.
        segments: ``[G, 2]`` sorted, disjoint ``[start, stop)`` row ranges, or ``None``.

    Raises:
        DataError: if a split holds no run of at least one window of ``window + horizon``
            steps.
    """
    if window < 1 or horizon < 1:
        raise DataError(f"{source}: window and horizon must be >= 1 (got {window}, {horizon})")
    if abs(sum(fractions) - 1.0) > 1e-6 or min(fractions) <= 0:
        raise DataError(f"{source}: split fractions must be positive and sum to 1, got {fractions}")
    need = window + horizon
    seg = np.array([[0, n_steps]], dtype=np.int64) if segments is None else np.asarray(segments, dtype=np.int64)
    lengths = seg[:, 1] - seg[:, 0]
    total = int(lengths.sum())
    n_train = int(round(total * fractions[0]))
    n_val = int(round(total * fractions[1]))
    cum = np.concatenate([[0], np.cumsum(lengths)])

    def row_at(k: int) -> int:
        """The row of the k-th valid step (k in [0, total]); ``total`` maps past the end."""
        if k >= total:
            return int(seg[-1, 1])
        g = int(np.searchsorted(cum, k, side="right")) - 1
        return int(seg[g, 0] + (k - cum[g]))

    cuts = [row_at(0), row_at(n_train), row_at(n_train + n_val), int(seg[-1, 1])]
    bounds = [(cuts[0], cuts[1]), (cuts[1], cuts[2]), (cuts[2], cuts[3])]
    pieces = {}
    for name, (a, b) in zip(("train", "val", "test"), bounds):
        runs = [(max(a, int(s0)), min(b, int(s1))) for s0, s1 in seg if min(b, s1) > max(a, s0)]
        pieces[name] = tuple(runs)
        longest = max((r1 - r0 for r0, r1 in runs), default=0)
        if longest < need:
            label = {"val": "validation"}.get(name, name)
            what = (f"a {label} split of {b - a} steps" if segments is None
                    else f"a {label} split whose longest unbroken run is {longest} steps")
            raise DataError(
                f"{source}: {total} time steps give {what}, fewer "
                f"than one window of {window} + {horizon} = {need} steps; use a shorter "
                f"--window/--horizon or a longer series"
            )
    return Split(*bounds, pieces=pieces if segments is not None else None)


class StandardScaler:
    """Per-channel z-score fitted on the training time range only, ignoring NaN.

    ``mean`` and ``std`` have shape ``[C]``; they broadcast over graph ``[..., N, C]`` or grid
    ``[..., C, H, W]`` values through :meth:`shape_for`.
    """

    def __init__(self, mean: np.ndarray, std: np.ndarray, kind: str, floor: float | None = None,
                 resolution: float | None = None):
        self.mean = np.asarray(mean, dtype=np.float32)
        self.std = np.asarray(std, dtype=np.float32)
        self.kind = kind
        self.floor = floor  # physical lower bound of the quantity (rain: 0 mm/h), or None
        self.resolution = resolution  # step the quantity comes in (counts: 1), or None

    def physical(self, y_scaled: torch.Tensor) -> torch.Tensor:
        """Forecasts in physical units: ``y * std + mean``, clipped at :attr:`floor` (the
        data set's lower bound, e.g. no negative rain) and rounded to a multiple of
        :attr:`resolution` (e.g. whole bikes) where the data set has them; see
        :func:`to_physical_range`."""
        mean, std = (t.to(y_scaled.dtype) for t in self.tensors(y_scaled.device))
        return to_physical_range(y_scaled * std + mean, self.floor, self.resolution)

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
        return cls(mean, std, data.kind, getattr(data, "lower_bound", None), getattr(data, "resolution", None))

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
        return {"mean": self.mean.tolist(), "std": self.std.tolist(), "kind": self.kind, "floor": self.floor,
                "resolution": self.resolution}

    @classmethod
    def from_dict(cls, d: dict) -> "StandardScaler":
        return cls(np.array(d["mean"]), np.array(d["std"]), d["kind"], d.get("floor"), d.get("resolution"))


def to_physical_range(y: torch.Tensor, floor: float | None = None, resolution: float | None = None) -> torch.Tensor:
    """Forecasts ``y`` (physical units, any shape) clipped at ``floor`` and rounded to the
    nearest multiple of ``resolution``; either may be None (no change)."""
    if floor is not None:
        y = y.clamp_min(floor)
    if resolution is not None:
        y = torch.round(y / resolution) * resolution
    return y


def time_features(data: SpatioTemporalData) -> tuple[np.ndarray, np.ndarray]:
    """Time-of-day slot ``[T]`` in ``[0, steps_per_day)`` and day-of-week ``[T]`` in ``[0, 7)``.

    From ``data.timestamps`` when known (:func:`time_features_of`), else from the step index
    (step 0 = midnight, Monday).
    """
    spd = data.steps_per_day
    if data.timestamps is not None:
        return time_features_of(data.timestamps, spd)
    t = np.arange(data.n_steps)
    return (t % spd).astype(np.int64), ((t // spd) % 7).astype(np.int64)


def time_features_of(timestamps: np.ndarray, steps_per_day: int) -> tuple[np.ndarray, np.ndarray]:
    """Time-of-day slot and day of week (0 = Monday) of ``timestamps`` ``[T]``, as int64 ``[T]``."""
    spd = steps_per_day
    ts = np.asarray(timestamps).astype("datetime64[ns]")
    day = ts.astype("datetime64[D]")
    frac = (ts - day).astype("timedelta64[ns]").astype(np.int64) / 86_400e9
    tod = np.clip((frac * spd).astype(np.int64), 0, spd - 1)
    dow = ((day.astype(np.int64) + 3) % 7).astype(np.int64)  # 1970-01-01 was a Thursday
    return tod.astype(np.int64), dow


MIN_TRAIN_DAYS_FOR_DOW = 14
"""Training splits shorter than this many days get no day-of-week input (all zeros): a
weekday seen at most once in training cannot be learnt, and weekdays that only occur in
validation / test would hit untrained embeddings."""


def uses_day_of_week(train_steps: int, steps_per_day: int) -> bool:
    """Whether a model trained on ``train_steps`` steps is given the day of week."""
    return train_steps / steps_per_day >= MIN_TRAIN_DAYS_FOR_DOW


class WindowDataset(Dataset):
    """Samples ``(x, y)`` of ``window`` input and ``horizon`` target steps, as index views.

    The series is held once as a tensor sharing memory with ``data.values``; item ``i`` is
    the slice starting at row ``starts[i]``: every ``stride``-th row of each unbroken run
    (``runs``, default the whole ``time_range``) from which a whole window of
    ``window + horizon`` steps fits inside that run, so no window crosses a gap. Only the
    ``[n]`` start rows are stored, never the windows. Inputs are z-scored with a scaler fitted on
    training data and missing readings set to 0 (the training mean); targets stay in
    physical units with missing readings set to 0 and flagged False in ``y_mask``.

    Item keys: ``x`` ``[T, ...]`` float32 (scaled), ``x_mask`` ``[T, ...]`` bool,
    ``y`` ``[S, ...]`` float32 (physical units), ``y_mask`` ``[S, ...]`` bool,
    ``tod`` / ``dow`` ``[T + S]`` int64 (time-of-day slot and day of week of every step),
    ``t0`` int (index of the first input step).

    :attr:`input_scale` (default ``None``): a fixed per-location factor on the scaled inputs,
    shaped like one input step (``[C, H, W]`` grid, ``[N, C]`` graph); where it is 0 the
    reading is withheld (``x`` 0, ``x_mask`` False). ``sparsest plan --compress`` sets it to
    a plan's sensor mask ``k * m`` (:meth:`~sparsest.pruning.sensors.wrapper.SensorMaskedForecaster.effective_mask`
    expanded), so a model trained on these windows sees exactly what the kept-sensor model
    saw: switched-off sensors are never read.
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
        runs: list[tuple[int, int]] | None = None,
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
        need = window + horizon
        runs = [tuple(time_range)] if runs is None else [tuple(r) for r in runs]
        for a, b in runs:
            if a < self.start or b > self.stop:
                raise DataError(f"{data.source}: run [{a}, {b}) lies outside the range {time_range}")
        starts = [torch.arange(a, b - need + 1, stride, dtype=torch.int64) for a, b in runs if b - a >= need]
        self.starts = torch.cat(starts) if starts else torch.zeros(0, dtype=torch.int64)  # [n] start rows
        if self.starts.numel() < 1:
            raise DataError(
                f"{data.source}: range {time_range} holds fewer than one window of "
                f"{window} + {horizon} steps" + (" inside an unbroken run" if len(runs) > 1 else "")
            )
        self._len = int(self.starts.numel())
        self.input_scale: torch.Tensor | None = None

    def __len__(self) -> int:
        return self._len

    def _inputs(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Scaled inputs (missing readings 0) and their mask, with :attr:`input_scale` applied."""
        xs = torch.where(mask, (x - self.mean) / self.std, torch.zeros((), dtype=x.dtype))
        if self.input_scale is None:
            return xs, mask
        return xs * self.input_scale, mask & (self.input_scale != 0)

    def __getitem__(self, i: int) -> dict:
        if not 0 <= i < self._len:
            raise IndexError(i)
        t0 = int(self.starts[i])
        t1 = t0 + self.window
        x = self.values[t0:t1]  # view [T, ...]
        y = self.values[t1 : t1 + self.horizon]  # view [S, ...]
        x_mask = ~torch.isnan(x)
        y_mask = ~torch.isnan(y)
        xs, x_mask = self._inputs(x, x_mask)
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

    def __getitems__(self, indices) -> "WindowBatch":
        """A whole batch in one gather (the DataLoader calls this instead of ``B`` single
        items): the same keys as an item, stacked on a leading ``B`` axis, ``t0`` ``[B]``.
        Use :func:`collate_windows` as the loader's ``collate_fn``."""
        i = torch.as_tensor(indices, dtype=torch.int64)
        if i.numel() and (int(i.min()) < 0 or int(i.max()) >= self._len):
            raise IndexError(int(i.max()) if int(i.max()) >= self._len else int(i.min()))
        t0 = self.starts[i]  # [B]
        rows = t0[:, None] + torch.arange(self.window + self.horizon)  # [B, T + S]
        v = self.values[rows]  # [B, T + S, ...] (the batch's only copy)
        mask = ~torch.isnan(v)
        x, y = v[:, : self.window], v[:, self.window :]
        xm, ym = mask[:, : self.window], mask[:, self.window :]
        zero = torch.zeros((), dtype=v.dtype)
        xs, xm = self._inputs(x, xm)
        return WindowBatch(
            x=xs, x_mask=xm,
            y=torch.where(ym, y, zero), y_mask=ym, tod=self.tod[rows], dow=self.dow[rows], t0=t0,
        )


class WindowBatch(dict):
    """A batch stacked by a dataset's ``__getitems__`` (see :func:`collate_windows`)."""


def collate_windows(items):
    """``collate_fn`` for window datasets: a :class:`WindowBatch` (from ``__getitems__``)
    passes through as a dict; a list of items is stacked by PyTorch's ``default_collate``."""
    from torch.utils.data import default_collate

    if isinstance(items, WindowBatch):
        return dict(items)
    return default_collate(items)
