"""The prologue every command shares: check the options, seed, quiet Lightning, load data.

:func:`start` does it in that order and returns a :class:`Prepared` (data, split, train-only
scaler, windowed loaders and the :class:`~sparsest.backbones.DataSpec` a backbone needs).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader

from ..backbones import DataSpec, create_backbone
from ..data.core import SpatioTemporalData
from ..data.windows import (StandardScaler, WindowDataset, chronological_split, collate_windows, time_features,
                            uses_day_of_week)
from ..datasets import load_dataset
from ..errors import ConfigError
from .fit import check_trainer_options, quiet_lightning
from .module import evaluate
from .run import check_out


@dataclass
class Prepared:
    """Loaded data, split, scaler and loaders of a run.

    Attributes:
        generator: the ``torch.Generator`` the training loader shuffles with (the engine saves
            and restores it, so a resumed run sees the same batches).
        t_start: ``time.perf_counter()`` when the prologue began [s].
        n_missing: missing readings (NaN) in the data, masked out of loss and metrics.
        day_of_week: whether the models get the day of week (``False``: the training split
            spans under :data:`~sparsest.data.windows.MIN_TRAIN_DAYS_FOR_DOW` days and
            ``dow`` is all zeros).
    """

    data: SpatioTemporalData
    spec: DataSpec
    scaler: StandardScaler
    loaders: dict
    split: object
    tod: np.ndarray
    generator: torch.Generator = field(default=None)
    t_start: float = 0.0
    n_missing: int = 0
    day_of_week: bool = True

    def summary(self) -> str:
        """One line: what was loaded, and how many readings are missing (masked)."""
        d, s = self.data, self.spec
        n_missing = self.n_missing
        shape = f"N={d.n_nodes}" if d.kind == "graph" else f"H x W={s.height} x {s.width}"
        runs = f" in {len(d.segments)} unbroken runs" if d.segments is not None else ""
        line = (f"[bold]data[/] {d.name}: {d.kind}, T={d.n_steps}{runs}, {shape}, C={d.n_channels}, missing readings {n_missing} "
                f"({100 * n_missing / d.values.size:.2f}%, masked)")
        return "\n".join([line, self.split_line(), *(f"  {note}" for note in d.notes)])

    def hours_missing(self, name: str = "val") -> list[int]:
        """Hours of the day (0-23) at which no window of split ``name`` has its last forecast
        step: what a budget or a model choice on that split cannot see (a 0.7-day validation
        split of a one-week series misses the evening rush). Empty for data of fewer than 24
        steps a day (daily series have no hour of the day)."""
        if self.data.steps_per_day < 24:
            return []
        hours = set(self.window_hours(name).tolist())
        return [h for h in range(24) if h not in hours]

    def window_hours(self, name: str) -> np.ndarray:
        """``[n]`` int64 hour of the day (0-23) of the last forecast step of every window of
        split ``name``, in the loader's order (not shuffled for val / test)."""
        ds = self.loaders[name].dataset
        last = (ds.starts + ds.window + ds.horizon - 1).numpy()  # [n] rows of the last forecast step
        return self.tod[last] * 24 // self.data.steps_per_day

    def split_line(self) -> str:
        """One line: the windows of each split, and the time span of each where the data has
        timestamps (is every hour of the day in validation?)."""
        parts = []
        ts = self.data.timestamps
        for name in ("train", "val", "test"):
            a, b = getattr(self.split, name)
            text = f"{name} {len(self.loaders[name].dataset)} windows"
            if ts is not None:
                text += f" ({np.datetime_as_string(ts[a], unit='m')} .. {np.datetime_as_string(ts[b - 1], unit='m')})"
            parts.append(text)
        return "  split " + ", ".join(parts)


def prepare(opts) -> Prepared:
    """Load the data of ``opts`` (a :class:`~sparsest.engine.options.CommonOptions`) and
    build the windowed train / val / test loaders (chronological ``--split``, 70/10/20 by default,
    scaler fitted on train only).

    Raises:
        DataError: bad files. ConfigError: options the data cannot use (``--adjacency`` or
            ``--locations`` with a named data set or with grid data).
    """
    from ..datasets import get_dataset_entry

    if get_dataset_entry(opts.data) is not None:
        for name in ("adjacency", "locations", "segments", "knn"):
            if getattr(opts, name):
                raise ConfigError(f"--{name}: only for your own data (--data FILE); {opts.data} brings its own")
    data, entry = load_dataset(opts.data, opts.data_dir, opts.adjacency, opts.locations, segments=opts.segments, knn=opts.knn)
    if data.kind == "grid":
        for name in ("adjacency", "locations", "knn"):
            if getattr(opts, name):
                raise ConfigError(f"--{name}: {data.name} is grid data (frames [T, C, H, W]); it has no sensor graph")
    if opts.time_slice is not None:
        data = time_slice(data, opts.time_slice)
    window = opts.window or (entry.window if entry else 12)
    horizon = opts.horizon or (entry.horizon if entry else 12)
    split = chronological_split(data.n_steps, window, horizon, fractions=tuple(opts.split), source=data.source,
                                segments=data.segments)
    scaler = StandardScaler.fit(data, split.train)
    tod, dow = time_features(data)
    day_of_week = uses_day_of_week(split.n_steps("train"), data.steps_per_day)
    if not day_of_week:  # too few training days to learn weekdays: the feature is all zeros
        dow = np.zeros_like(dow)
    g = torch.Generator().manual_seed(opts.seed)
    loaders = {}
    for name in ("train", "val", "test"):
        ds = WindowDataset(data, getattr(split, name), window, horizon, scaler, tod=tod, dow=dow, runs=split.runs(name))
        loaders[name] = DataLoader(ds, batch_size=opts.batch_size, shuffle=name == "train", generator=g if name == "train" else None,
                                   collate_fn=collate_windows)
    h, w = data.grid_shape if data.kind == "grid" else (0, 0)
    spec = DataSpec(
        kind=data.kind, window=window, horizon=horizon, n_channels=data.n_channels, n_nodes=data.n_nodes,
        height=h, width=w, steps_per_day=data.steps_per_day, adjacency=data.adjacency,
        patch_size=opts.patch_size,
    )
    return Prepared(data, spec, scaler, loaders, split, tod, generator=g, n_missing=int(np.isnan(data.values).sum()),
                    day_of_week=day_of_week)


def parse_time_slice(text: str, n_steps: int) -> tuple[int, int]:
    """``"START:STOP"`` (Python slice syntax, negatives count from the end) -> ``(start, stop)``
    rows of a series of ``n_steps``.

    Raises:
        ConfigError: not ``START:STOP`` with whole numbers, or an empty slice.
    """
    parts = str(text).split(":")
    try:
        if len(parts) != 2:
            raise ValueError
        a, b = (int(p) if p.strip() else None for p in parts)
    except ValueError:
        raise ConfigError(f"--time-slice: expected START:STOP with whole numbers (e.g. -20000: or 0:5000), got {text!r}") from None
    start, stop, _ = slice(a, b).indices(n_steps)
    if stop - start < 1:
        raise ConfigError(f"--time-slice: {text!r} selects no time step of the {n_steps}")
    return start, stop


def time_slice(data: SpatioTemporalData, text: str) -> SpatioTemporalData:
    """The rows ``START:STOP`` of ``data`` (segments clipped to them); graph sensors without
    a reading in them are dropped (named in ``notes``).

    Raises:
        ConfigError: a bad slice, or no sensor with a reading in it.
    """
    from dataclasses import replace

    a, b = parse_time_slice(text, data.n_steps)
    if (a, b) == (0, data.n_steps):
        return data
    seg = None
    if data.segments is not None:
        keep = (data.segments[:, 1] > a) & (data.segments[:, 0] < b)
        seg = np.clip(data.segments[keep], a, b) - a
    ts = data.timestamps[a:b] if data.timestamps is not None else None
    notes = [*data.notes, f"time steps {a}:{b} of {data.n_steps} used (--time-slice)"]
    values = data.values[a:b]
    out = replace(data, values=values, timestamps=ts, segments=seg, notes=notes)
    if data.kind == "graph":
        seen = ~np.isnan(values).all(axis=(0, 2))  # [N]
        if not seen.any():
            raise ConfigError(f"--time-slice: no sensor has a reading in time steps {a}:{b}")
        if not seen.all():
            ids = data.sensor_ids or [str(i) for i in range(data.n_nodes)]
            adj = data.adjacency[seen][:, seen] if data.adjacency is not None else None
            lat = data.latitude[seen] if data.latitude is not None else None
            lon = data.longitude[seen] if data.longitude is not None else None
            notes.append(f"{int((~seen).sum())} sensors without a reading in those steps dropped")
            out = replace(out, values=values[:, seen], sensor_ids=[i for i, s in zip(ids, seen) if s], adjacency=adj,
                          latitude=lat, longitude=lon, notes=notes)
    return out.validate()


def start(opts, console=None):
    """The prologue of every command: check the options (:meth:`check`, ``--out``, Lightning's
    accelerator / devices / strategy), quiet Lightning, seed, load the data.

    Returns:
        ``(say, prep)``: ``say`` prints to ``console`` (or nowhere), ``prep`` a :class:`Prepared`.

    Raises:
        SparsestError: bad options or data, as one line naming the option / file.
    """
    t_start = time.perf_counter()
    opts.check()
    check_out(opts.out)
    quiet_lightning()
    check_trainer_options(opts)
    say = console.print if console is not None else (lambda *a, **k: None)
    L.seed_everything(opts.seed, verbose=False)
    prep = prepare(opts)
    prep.t_start = t_start
    return say, prep


def baselines(prep: Prepared, split: str = "test", names: tuple[str, ...] | None = None) -> dict:
    """Metrics on ``split`` of persistence and historical average (fitted on train), for
    grid data of optical-flow extrapolation (pysteps; key ``extrapolation``), and for data
    with a physical lower bound of that bound everywhere (key ``lower_bound``; radar: no
    rain); ``names`` picks some of them (default: all that apply)."""
    out = {}
    if names is None:
        names = (("persistence", "historical-average") + (("extrapolation",) if prep.spec.kind == "grid" else ())
                 + (("lower-bound",) if prep.scaler.floor is not None else ()))
    for name in names:
        model = create_backbone(name, prep.spec)
        if hasattr(model, "fit"):
            model.fit(prep.data, prep.split.train, prep.tod, prep.scaler)
        out[name.replace("-", "_")] = evaluate(model, prep.loaders[split], prep.scaler, prep.spec.horizon)["all"]
    return out


def stack_batch(dataset, batch: int) -> dict:
    """A batch of ``batch`` windows from ``dataset`` (cycling if it holds fewer)."""
    items = [dataset[i % len(dataset)] for i in range(batch)]
    return {k: torch.stack([torch.as_tensor(it[k]) for it in items]) for k in ("x", "tod", "dow")}


__all__ = ["Prepared", "prepare", "start", "baselines", "stack_batch"]
