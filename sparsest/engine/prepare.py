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
from ..data.windows import StandardScaler, WindowDataset, chronological_split, time_features
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

    def summary(self) -> str:
        """One line: what was loaded, and how many readings are missing (masked)."""
        d, s = self.data, self.spec
        n_missing = self.n_missing
        shape = f"N={d.n_nodes}" if d.kind == "graph" else f"H x W={s.height} x {s.width}"
        return (f"[bold]data[/] {d.name}: {d.kind}, T={d.n_steps}, {shape}, C={d.n_channels}, missing readings {n_missing} "
                f"({100 * n_missing / d.values.size:.2f}%, masked)")


def prepare(opts) -> Prepared:
    """Load the data of ``opts`` (a :class:`~sparsest.engine.options.CommonOptions`) and
    build the windowed train / val / test loaders (chronological 70/10/20 split, scaler
    fitted on train only).

    Raises:
        DataError: bad files. ConfigError: options the data cannot use (``--adjacency`` or
            ``--locations`` with a named data set or with grid data).
    """
    from ..datasets import get_dataset_entry

    if get_dataset_entry(opts.data) is not None:
        for name in ("adjacency", "locations"):
            if getattr(opts, name):
                raise ConfigError(f"--{name}: only for your own data (--data FILE); {opts.data} brings its own")
    data, entry = load_dataset(opts.data, opts.data_dir, opts.adjacency, opts.locations)
    if data.kind == "grid":
        for name in ("adjacency", "locations"):
            if getattr(opts, name):
                raise ConfigError(f"--{name}: {data.name} is grid data (frames [T, C, H, W]); it has no sensor graph")
    window = opts.window or (entry.window if entry else 12)
    horizon = opts.horizon or (entry.horizon if entry else 12)
    split = chronological_split(data.n_steps, window, horizon, source=data.source)
    scaler = StandardScaler.fit(data, split.train)
    tod, dow = time_features(data)
    train_days = (split.train[1] - split.train[0]) / data.steps_per_day
    if train_days < 14:
        # a weekday seen at most once in training cannot be learnt, and weekdays that only
        # occur in validation / test would hit untrained embeddings: drop the feature
        dow = np.zeros_like(dow)
    g = torch.Generator().manual_seed(opts.seed)
    loaders = {}
    for name in ("train", "val", "test"):
        ds = WindowDataset(data, getattr(split, name), window, horizon, scaler, tod=tod, dow=dow)
        loaders[name] = DataLoader(ds, batch_size=opts.batch_size, shuffle=name == "train", generator=g if name == "train" else None)
    h, w = data.grid_shape if data.kind == "grid" else (0, 0)
    spec = DataSpec(
        kind=data.kind, window=window, horizon=horizon, n_channels=data.n_channels, n_nodes=data.n_nodes,
        height=h, width=w, steps_per_day=data.steps_per_day, adjacency=data.adjacency,
        patch_size=opts.patch_size,
    )
    return Prepared(data, spec, scaler, loaders, split, tod, generator=g, n_missing=int(np.isnan(data.values).sum()))


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


def baselines(prep: Prepared) -> dict:
    """Test metrics of persistence and historical average (fitted on train)."""
    out = {}
    for name in ("persistence", "historical-average"):
        model = create_backbone(name, prep.spec)
        if hasattr(model, "fit"):
            model.fit(prep.data, prep.split.train, prep.tod, prep.scaler)
        out[name.replace("-", "_")] = evaluate(model, prep.loaders["test"], prep.scaler, prep.spec.horizon)["all"]
    return out


def stack_batch(dataset, batch: int) -> dict:
    """A batch of ``batch`` windows from ``dataset`` (cycling if it holds fewer)."""
    items = [dataset[i % len(dataset)] for i in range(batch)]
    return {k: torch.stack([torch.as_tensor(it[k]) for it in items]) for k in ("x", "tod", "dow")}


__all__ = ["Prepared", "prepare", "start", "baselines", "stack_batch"]
