"""Bring-your-own data: a signals file (+ adjacency, + locations) or a grid file.

Graph signals: CSV (T rows x N columns, header of sensor ids), ``.npz`` / ``.npy``
``[T, N]`` or ``[T, N, C]``, PEMS0X ``.npz`` (key ``data``), METR-LA / PEMS-BAY ``.h5``.
Grids: ``.npz`` / netCDF ``[T, H, W]`` or ``[T, C, H, W]``, TaxiBJ ``.h5``. Adjacency: dense
CSV / NPY ``N x N``, edge-list CSV (``from,to,cost``) or DCRNN ``adj_mx.pkl``.
"""

from __future__ import annotations

from pathlib import Path

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
from ..errors import DataError
from . import infer_steps_per_day

PEMS_STEPS_PER_DAY = 288  # PEMS0X .npz files carry no timestamps; they are 5-minute data


def load_custom(path: Path, adjacency: str | Path | None = None, locations: str | Path | None = None) -> SpatioTemporalData:
    """Read a user's data file into :class:`SpatioTemporalData` (not yet validated).

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
    adj = read_adjacency(Path(adjacency), sensor_ids=ids, n_nodes=n) if adjacency else None
    lat = lon = None
    if locations:
        lat, lon = read_locations(Path(locations), ids)
    return SpatioTemporalData(
        values=values, kind="graph", name=name, source=str(path), sensor_ids=ids or [str(i) for i in range(n)],
        latitude=lat, longitude=lon, adjacency=adj, timestamps=ts,
        steps_per_day=spd or infer_steps_per_day(ts, 1),
    )


def _is_pems(path: Path) -> bool:
    import numpy as np

    with np.load(path, allow_pickle=False) as z:
        return list(z.files) == ["data"]
