"""Tell sensor-graph files from grid files by their layout."""

from __future__ import annotations

from pathlib import Path

from ._common import (
    _LAT_NAMES,
    _LON_NAMES,
    PathLike,
    _error,
    _existing,
    _first_present,
    _npy,
    _npz_shapes,
    _oneline,
    _suffix,
    _unsupported,
)

__all__ = ["sniff_kind"]


def _h5_has_4d_data(p: Path) -> bool:
    import h5py

    try:
        with h5py.File(p, "r") as f:
            data = f.get("data")
            return isinstance(data, h5py.Dataset) and data.ndim == 4
    except OSError as exc:
        raise _error(p, f"not a readable HDF5 file ({_oneline(exc)})") from None


def _npz_kind(p: Path) -> str:
    shapes = _npz_shapes(p)
    has_coords = any(_first_present(shapes, names) for names in (_LAT_NAMES, _LON_NAMES))
    data = shapes.get("data")
    if data is not None and len(data) == 3 and data[-1] <= 3 and not has_coords:
        return "graph"  # PEMS0X
    ndims = {len(s) for s in shapes.values()}
    return "grid" if 4 in ndims or (3 in ndims and has_coords) else "graph"


def sniff_kind(path: PathLike) -> str:
    """Tell whether a signals file holds sensor-graph or grid data, from its layout only.

    Rules: ``.nc`` -> grid; ``.h5`` -> grid when it has a 4-d ``data`` dataset (TaxiBJ),
    else graph (pandas METR-LA/PEMS-BAY); ``.npz`` -> graph when ``data`` is 3-d with at
    most 3 channels and there are no latitude/longitude arrays (PEMS0X), grid when any
    array is 4-d or a 3-d array comes with latitude/longitude, else graph; ``.npy`` -> grid
    when 4-d, else graph; ``.csv`` -> graph. Only headers are read.

    Args:
        path: the signals file.

    Returns:
        ``"graph"`` or ``"grid"``.

    Raises:
        DataError: missing file, unsupported type, or an unreadable container.
    """
    p = _existing(path)
    suffix = _suffix(p)
    if suffix in (".nc", ".nc4", ".netcdf"):
        return "grid"
    if suffix in (".h5", ".hdf5"):
        return "grid" if _h5_has_4d_data(p) else "graph"
    if suffix == ".npz":
        return _npz_kind(p)
    if suffix == ".npy":
        return "grid" if _npy(p, mmap=True).ndim == 4 else "graph"
    if suffix == ".csv":
        return "graph"
    raise _unsupported(p, "signals", ".csv, .npz, .npy, .h5 or .nc")
