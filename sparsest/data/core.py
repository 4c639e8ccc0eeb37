"""The in-memory representation of one spatio-temporal data set.

Shapes (project-wide letters): T time steps, N sensors (graph nodes), C channels,
H x W grid.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from ..errors import DataError

Kind = Literal["graph", "grid"]


@dataclass
class SpatioTemporalData:
    """A multivariate series observed at fixed sensors or on a fixed grid.

    Missing readings are ``NaN`` in ``values``; they are masked out of losses and metrics,
    never treated as zeros.

    Attributes:
        values: ``[T, N, C]`` for ``kind="graph"``, ``[T, C, H, W]`` for ``kind="grid"``,
            float32, in physical units (``units``).
        kind: ``"graph"`` (sensors are nodes) or ``"grid"`` (sensors are patches of pixels).
        name: short name used in run directories and reports.
        source: file or package the values came from (used in error messages).
        units: physical unit of ``values``, e.g. ``"mph"``, ``"degC"``, ``"K"``.
        sensor_ids: ``N`` sensor ids (graph only).
        latitude, longitude: graph: ``[N]`` per sensor (or ``None``); grid: ``[H]`` and ``[W]``.
        adjacency: ``[N, N]`` float32 edge weights (graph only; ``None`` when unknown).
        timestamps: ``[T]`` ``datetime64[ns]`` or ``None``.
        steps_per_day: samples per day (288 for 5-minute data, 24 hourly, 1 daily); sets
            the time-of-day feature and the historical-average period.
        channels: ``C`` channel names.
        segments: ``[G, 2]`` int64 ``[start, stop)`` row ranges of the unbroken runs of the
            series (consecutive in time, no gap inside), sorted and disjoint; rows outside
            every segment hold no data. Windows are built inside segments only, never across
            a gap. ``None`` = the whole series is one unbroken run.
        notes: lines a run summary prints about how the data were prepared (e.g. sensors
            dropped as almost never observed, how sensors without coordinates were placed).
        domain: grid only, ``[H, W]`` bool or ``None``: the cells inside the observed domain
            (e.g. a radar composite's footprint inside its bounding box). Cells outside it
            hold no value at any step (NaN, masked everywhere) and are allowed to; a cell
            inside it must be observed at least once. ``None`` = every cell is inside.
        lower_bound: the quantity's physical lower bound (rain rate: 0), or None. Forecasts
            are clipped at it before they are scored (:meth:`StandardScaler.physical`).
        resolution: the step the quantity comes in (counts such as bikes available: 1), or
            None. Forecasts are rounded to a multiple of it before they are scored: a
            reading that can only be a whole number is forecast as one, which under MAE is
            what the optimal forecast (a median of whole numbers) is anyway, and a small
            jitter around an unchanged reading costs nothing.
    """

    values: np.ndarray
    kind: Kind
    name: str = "data"
    source: str = "<memory>"
    units: str = ""
    sensor_ids: list[str] | None = None
    latitude: np.ndarray | None = None
    longitude: np.ndarray | None = None
    adjacency: np.ndarray | None = None
    timestamps: np.ndarray | None = None
    steps_per_day: int = 1
    channels: list[str] = field(default_factory=list)
    segments: np.ndarray | None = None
    notes: list[str] = field(default_factory=list)
    domain: np.ndarray | None = None
    lower_bound: float | None = None
    resolution: float | None = None

    # ------------------------------------------------------------------ shape helpers
    @property
    def n_steps(self) -> int:
        """T, the number of time steps."""
        return int(self.values.shape[0])

    @property
    def n_channels(self) -> int:
        """C, the number of channels."""
        return int(self.values.shape[2] if self.kind == "graph" else self.values.shape[1])

    @property
    def n_nodes(self) -> int:
        """N for graphs; H * W pixels for grids."""
        if self.kind == "graph":
            return int(self.values.shape[1])
        return int(self.values.shape[2] * self.values.shape[3])

    @property
    def grid_shape(self) -> tuple[int, int]:
        """(H, W) of a grid data set.

        Raises:
            DataError: for graph data.
        """
        if self.kind != "grid":
            raise DataError(f"{self.source}: grid_shape asked of graph data")
        return int(self.values.shape[2]), int(self.values.shape[3])

    @property
    def missing_fraction(self) -> float:
        """Fraction of readings that are NaN (missing)."""
        return float(np.isnan(self.values).mean())

    def validate(self) -> "SpatioTemporalData":
        """Check shapes and values; return ``self``.

        Raises:
            DataError: wrong number of dimensions, inf values, a sensor / pixel with no
                observed value at all, an adjacency whose size does not match the sensors,
                or coordinates / ids whose length does not match, a grid ``domain`` of the
                wrong shape or with a value outside it.
        """
        v = self.values
        src = self.source
        want = 3 if self.kind == "graph" else 4
        layout = "[T, N, C]" if self.kind == "graph" else "[T, C, H, W]"
        if v.ndim != want:
            raise DataError(f"{src}: expected {self.kind} values {layout}, got shape {tuple(v.shape)}")
        if not np.issubdtype(v.dtype, np.floating):
            raise DataError(f"{src}: values must be numbers, got dtype {v.dtype}")
        if min(v.shape) == 0:
            raise DataError(f"{src}: empty values array of shape {tuple(v.shape)}")
        n_inf = int(np.isinf(v).sum())
        if n_inf:
            raise DataError(f"{src}: {n_inf} values are inf; use NaN for missing readings")
        observed = ~np.isnan(v)
        if self.kind == "graph":
            if self.domain is not None:
                raise DataError(f"{src}: domain is for grid data only")
            per_sensor = observed.any(axis=(0, 2))  # [N]
            if not per_sensor.all():
                bad = np.flatnonzero(~per_sensor)
                ids = [self.sensor_ids[i] if self.sensor_ids else str(i) for i in bad[:5]]
                raise DataError(
                    f"{src}: {len(bad)} sensor(s) have no observed value at all "
                    f"(e.g. {', '.join(ids)}); drop them or provide readings"
                )
            n = v.shape[1]
            if self.sensor_ids is not None and len(self.sensor_ids) != n:
                raise DataError(f"{src}: {len(self.sensor_ids)} sensor ids for {n} sensors")
            for name, arr in (("latitude", self.latitude), ("longitude", self.longitude)):
                if arr is not None and len(arr) != n:
                    raise DataError(f"{src}: {len(arr)} {name} values for {n} sensors")
            if self.adjacency is not None:
                a = self.adjacency
                if a.ndim != 2 or a.shape != (n, n):
                    raise DataError(
                        f"{src}: adjacency is {tuple(a.shape)} but the signals have {n} sensors "
                        f"(expected {n} x {n})"
                    )
                if not np.isfinite(a).all():
                    raise DataError(f"{src}: adjacency holds NaN or inf")
        else:
            per_pixel = observed.any(axis=(0, 1))  # [H, W]
            inside = np.ones(per_pixel.shape, dtype=bool)
            if self.domain is not None:
                inside = np.asarray(self.domain)
                if inside.shape != per_pixel.shape or inside.dtype != bool:
                    raise DataError(f"{src}: domain must be a bool [H, W] = {per_pixel.shape} mask, "
                                    f"got {inside.dtype} {tuple(inside.shape)}")
                if (per_pixel & ~inside).any():
                    raise DataError(f"{src}: {int((per_pixel & ~inside).sum())} grid cell(s) outside the domain hold values")
                if not inside.any():
                    raise DataError(f"{src}: the domain holds no grid cell")
            if not per_pixel[inside].all():
                raise DataError(
                    f"{src}: {int((~per_pixel[inside]).sum())} grid cell(s) have no observed value at all"
                )
        if self.timestamps is not None and len(self.timestamps) != v.shape[0]:
            raise DataError(f"{src}: {len(self.timestamps)} timestamps for {v.shape[0]} time steps")
        if self.segments is not None:
            seg = np.asarray(self.segments)
            if seg.ndim != 2 or seg.shape[1] != 2 or len(seg) == 0:
                raise DataError(f"{src}: segments must be a [G, 2] table of [start, stop) rows, got shape {tuple(seg.shape)}")
            seg = seg.astype(np.int64)
            if (seg[:, 0] < 0).any() or (seg[:, 1] > v.shape[0]).any() or (seg[:, 1] <= seg[:, 0]).any():
                raise DataError(f"{src}: segments must be non-empty row ranges inside [0, {v.shape[0]})")
            if (seg[1:, 0] < seg[:-1, 1]).any():
                raise DataError(f"{src}: segments must be sorted and must not overlap")
            self.segments = seg
        if self.steps_per_day < 1:
            raise DataError(f"{src}: steps_per_day must be >= 1, got {self.steps_per_day}")
        if not self.channels:
            self.channels = [f"c{i}" for i in range(self.n_channels)]
        return self
