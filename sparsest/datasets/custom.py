"""Bring-your-own data: a signals file (+ adjacency, + locations) or a grid file.

Graph signals: CSV (T rows x N columns, header of sensor ids), ``.npz`` / ``.npy``
``[T, N]`` or ``[T, N, C]``, PEMS0X ``.npz`` (key ``data``), METR-LA / PEMS-BAY ``.h5``.
Grids: ``.npz`` / netCDF ``[T, H, W]`` or ``[T, C, H, W]``, TaxiBJ ``.h5``. Adjacency: dense
CSV / NPY ``N x N``, edge-list CSV (``from,to,cost``) or DCRNN ``adj_mx.pkl``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..data.core import SpatioTemporalData
from ..data.readers import (
    read_adjacency,
    read_grid,
    read_locations,
    read_metr_h5,
    read_pems_npz,
    read_signals,
    read_taxibj_h5,
    sniff_kind,
)
from ..data.graph import DEFAULT_KNN, knn_graph
from ..data.segments import read_segment_table, regular_step_s, segments_from_timestamps
from ..errors import ConfigError, DataError
from . import infer_steps_per_day

PEMS_STEPS_PER_DAY = 288  # PEMS0X .npz files carry no timestamps; they are 5-minute data


def load_custom(path: Path, adjacency: str | Path | None = None, locations: str | Path | None = None,
                segments: str | Path | None = None, knn: int | None = None) -> SpatioTemporalData:
    """Read a user's data file into :class:`SpatioTemporalData` (not yet validated).

    Gaps: a time column whose step is longer than the regular one somewhere splits the
    series into unbroken runs (``segments``), and so does a segment table (``segments``, a
    CSV ``start,end``); windows never cross them. A graph from coordinates: ``locations``
    without ``adjacency`` gives the ``knn``-nearest-neighbour Gaussian-kernel graph
    (:func:`~sparsest.data.graph.knn_graph`, k = 8 by default).

    Raises:
        DataError: missing file, unknown format, wrong shape (message names the file).
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file")
    kind = sniff_kind(path)
    name = path.stem
    if kind == "grid":
        if path.suffix == ".h5":
            values, ts = read_taxibj_h5(path)
            lat = lon = None
            channels = ["inflow", "outflow"]
        else:
            values, lat, lon, ts, channels = read_grid(path)
        return SpatioTemporalData(
            values=values, kind="grid", name=name, source=str(path), latitude=lat, longitude=lon,
            timestamps=ts, steps_per_day=infer_steps_per_day(ts, 1), channels=channels or [],
        )
    ids, ts, spd = None, None, None
    if path.suffix == ".h5":
        values, ids, ts = read_metr_h5(path)
    elif path.suffix == ".npz" and _is_pems(path):
        values = read_pems_npz(path)
        spd = PEMS_STEPS_PER_DAY
    else:
        values, ids, ts = read_signals(path)
    n = values.shape[1]
    if knn is not None and (adjacency or not locations):
        raise ConfigError("--knn: builds the graph from --locations when no --adjacency is given; "
                          + ("you gave --adjacency" if adjacency else "give --locations"))
    adj = read_adjacency(Path(adjacency), sensor_ids=ids, n_nodes=n) if adjacency else None
    lat = lon = None
    notes = []
    if locations:
        lat, lon = read_locations(Path(locations), ids)
        if adj is None:
            k = DEFAULT_KNN if knn is None else knn
            adj = knn_graph(lat, lon, k, str(locations))
            notes.append(f"graph: {k}-nearest-neighbour Gaussian kernel of the haversine distance from {Path(locations).name}")
            n_loc = int((~np.isfinite(lat) | ~np.isfinite(lon)).sum())
            if n_loc:
                notes.append(f"{n_loc} sensors without coordinates are isolated nodes (self-loop only) in that graph")
    seg = None
    if segments:
        seg = read_segment_table(segments, values.shape[0], ts)
        notes.append(f"{len(seg)} unbroken runs from {Path(segments).name}")
    elif ts is not None:
        seg = segments_from_timestamps(ts)
        if seg is not None:
            notes.append(f"{len(seg)} unbroken runs: the time column has {len(seg) - 1} gap(s); windows never cross them")
    spd = spd or infer_steps_per_day(ts, 1)
    if seg is not None and ts is not None and not segments:
        spd = _regular_steps_per_day(ts, spd)
    return SpatioTemporalData(
        values=values, kind="graph", name=name, source=str(path), sensor_ids=ids or [str(i) for i in range(n)],
        latitude=lat, longitude=lon, adjacency=adj, timestamps=ts,
        steps_per_day=spd, segments=seg, notes=notes,
    )


def _is_pems(path: Path) -> bool:
    """A PEMS0X ``.npz``: one array, ``data``."""
    with np.load(path, allow_pickle=False) as z:
        return list(z.files) == ["data"]


def _regular_steps_per_day(ts, default: int) -> int:
    """Samples per day from the regular time step (gaps must not skew it)."""
    step = regular_step_s(ts)
    return max(1, int(round(86_400 / step))) if step > 0 else default
