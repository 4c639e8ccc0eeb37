"""Gridded (image-type) data: ``.npz`` grids, WeatherBench netCDF and TaxiBJ ``.h5``."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ._common import (
    _LAT_NAMES,
    _LON_NAMES,
    _TIME_KEYS,
    PathLike,
    _check_len,
    _error,
    _existing,
    _first_present,
    _float32,
    _npz_arrays,
    _npz_shapes,
    _oneline,
    _pick_key,
    _suffix,
    _to_datetime,
    _unsupported,
)
from .hdf5 import read_taxibj_h5

__all__ = ["read_grid"]

_NETCDF_TIME_NAMES = ("time", "valid_time")
_TAXIBJ_CHANNELS = ["inflow", "outflow"]


def _grid_4d(p: Path, arr: np.ndarray, field: str) -> np.ndarray:
    """Grid frames as float32 ``[T, C, H, W]``; ``[T, H, W]`` gains a channel axis."""
    arr = np.asarray(arr)
    if arr.ndim not in (3, 4):
        raise _error(
            p,
            f"expected [T, H, W] or [T, C, H, W] values, got {arr.ndim}-d array {field} "
            f"of shape {arr.shape}",
        )
    arr = _float32(p, arr, field)
    return arr[:, None] if arr.ndim == 3 else arr


def _read_grid_npz(
    p: Path, variable: str | None
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None, np.ndarray | None, list[str]]:
    shapes = _npz_shapes(p)
    if variable is not None and variable not in shapes:
        raise _error(p, f"no array {variable!r} (arrays: {', '.join(shapes) or 'none'})")
    key = variable or _pick_key(p, shapes, (), (3, 4), "grid [T, H, W] or [T, C, H, W]")
    lat_key, lon_key = _first_present(shapes, _LAT_NAMES), _first_present(shapes, _LON_NAMES)
    time_key = _first_present(shapes, _TIME_KEYS)
    arrays = _npz_arrays(p, [key, lat_key, lon_key, time_key])
    values = _grid_4d(p, arrays[key], repr(key))
    channels = [key] if len(shapes[key]) == 3 else [f"{key}_{i}" for i in range(values.shape[1])]
    lat = None if lat_key is None else _float32(p, arrays[lat_key].ravel(), f"array {lat_key!r}")
    lon = None if lon_key is None else _float32(p, arrays[lon_key].ravel(), f"array {lon_key!r}")
    times = None
    if time_key is not None:
        times = _to_datetime(p, arrays[time_key].ravel(), f"array {time_key!r}")
    return values, lat, lon, times, channels


def _netcdf_engine(p: Path) -> str:
    """``h5netcdf`` for netCDF4/HDF5 files, ``scipy`` for classic netCDF3 ones."""
    with open(p, "rb") as fh:
        magic = fh.read(4)
    if magic == b"\x89HDF":
        return "h5netcdf"
    if magic[:3] == b"CDF":
        return "scipy"
    raise _error(p, "not a netCDF file (neither netCDF4/HDF5 nor classic netCDF3)")


def _level_name(level: object) -> str:
    """``500.0`` -> ``"500"``; other values as they print."""
    value = level.item() if isinstance(level, np.generic) else level
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value)


def _netcdf_channels(p: Path, ds, var: str, dims: tuple[str, str, str]) -> tuple[np.ndarray, list[str]]:
    """One data variable as ``[T, L, H, W]`` and its channel names (``z_500`` per level)."""
    da = ds[var]
    missing = [d for d in dims if d not in da.dims]
    extra = [d for d in da.dims if d not in dims]
    if missing or len(extra) > 1:
        raise _error(
            p,
            f"variable {var!r} has dims {da.dims}; expected (time, lat, lon) "
            "or (time, level, lat, lon)",
        )
    time_dim, lat_dim, lon_dim = dims
    values = _float32(p, da.transpose(time_dim, *extra, lat_dim, lon_dim).values, f"variable {var!r}")
    if not extra:
        return values[:, None], [var]
    levels = ds[extra[0]].values if extra[0] in ds.variables else range(values.shape[1])
    return values, [f"{var}_{_level_name(level)}" for level in levels]


def _read_grid_netcdf(
    p: Path, variable: str | None
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None, np.ndarray | None, list[str]]:
    import xarray as xr

    engine = _netcdf_engine(p)
    try:
        ds = xr.open_dataset(p, engine=engine)
    except Exception as exc:  # backends raise many kinds for a damaged file
        raise _error(p, f"not a readable netCDF file ({type(exc).__name__}: {_oneline(exc)})") from None
    with ds:
        all_dims = [str(d) for d in ds.dims]
        options = (_NETCDF_TIME_NAMES, ("lat", "latitude"), ("lon", "longitude"))
        found = [_first_present(all_dims, names) for names in options]
        for name, dim in zip(("time", "lat/latitude", "lon/longitude"), found):
            if dim is None:
                raise _error(p, f"no {name} dimension (dims: {', '.join(all_dims)})")
        dims = tuple(found)
        variables = ", ".join(map(str, ds.data_vars))
        if variable is not None:
            if variable not in ds.data_vars:
                raise _error(p, f"no variable {variable!r} (variables: {variables})")
            names = [variable]
        else:
            names = [str(v) for v in ds.data_vars if set(dims) <= set(ds[v].dims)]
            if not names:
                raise _error(p, f"no variable has dims (time, lat, lon) (variables: {variables})")
        parts = [_netcdf_channels(p, ds, name, dims) for name in names]
        values = np.concatenate([v for v, _ in parts], axis=1)
        channels = [c for _, names_ in parts for c in names_]
        time_dim, lat_dim, lon_dim = dims
        lat = _float32(p, ds[lat_dim].values, lat_dim) if lat_dim in ds.variables else None
        lon = _float32(p, ds[lon_dim].values, lon_dim) if lon_dim in ds.variables else None
        times = _to_datetime(p, ds[time_dim].values, time_dim) if time_dim in ds.variables else None
    return values, lat, lon, times, channels


def read_grid(
    path: PathLike, variable: str | None = None
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None, np.ndarray | None, list[str]]:
    """Read gridded (image-type) data: ``.npz`` grids, WeatherBench netCDF, or TaxiBJ ``.h5``.

    Formats:

    * ``.npz``: the array ``variable`` (else the only 3-d/4-d array), optional
      ``latitude``/``lat``, ``longitude``/``lon`` and ``time`` arrays; e.g. the ERA5
      ``t2m.npz`` (Hersbach et al., QJRMS 2020) with ``t2m`` [744, 33, 49] in kelvin. A 4-d
      array's channels are named ``{key}_0``, ``{key}_1``, ...
    * ``.nc``: WeatherBench netCDF (Rasp et al., JAMES 2020,
      github.com/pangeo-data/WeatherBench), opened with xarray (``h5netcdf`` for
      netCDF4/HDF5 files, ``scipy`` for classic netCDF3). Dimensions ``time`` (or
      ``valid_time``), ``lat``/``latitude``, ``lon``/``longitude``. With ``variable=None``
      every data variable with time, lat and lon dims becomes a channel; a level dimension
      becomes one channel per level, named ``z_500`` etc. Fill values become NaN.
    * ``.h5``: TaxiBJ, see :func:`read_taxibj_h5` (channels ``inflow``, ``outflow``; no
      coordinates).

    Args:
        path: the grid file.
        variable: the array / data variable to read; ``None`` picks as described above.

    Returns:
        ``(values [T, C, H, W] float32 in the file's units, latitude [H] or None, longitude
        [W] or None, timestamps [T] datetime64[ns] or None, C channel names)``. ``[T, H, W]``
        gains ``C = 1``.

    Raises:
        DataError: missing file, unsupported type, a missing variable/dimension, no or
            several candidate arrays, wrong number of dimensions, unparseable times, or
            coordinates whose length does not match the grid.
    """
    p = _existing(path)
    suffix = _suffix(p)
    if suffix == ".npz":
        values, lat, lon, times, channels = _read_grid_npz(p, variable)
    elif suffix in (".nc", ".nc4", ".netcdf"):
        values, lat, lon, times, channels = _read_grid_netcdf(p, variable)
    elif suffix in (".h5", ".hdf5"):
        (values, times), lat, lon = read_taxibj_h5(p), None, None
        n_channels = values.shape[1]
        channels = list(_TAXIBJ_CHANNELS) if n_channels == 2 else [f"c{i}" for i in range(n_channels)]
    else:
        raise _unsupported(p, "a grid", ".npz, .nc or .h5")
    _check_len(p, lat, values.shape[2], "latitudes", "grid rows")
    _check_len(p, lon, values.shape[3], "longitudes", "grid columns")
    _check_len(p, times, values.shape[0], "timestamps", "time steps")
    return values, lat, lon, times, channels
