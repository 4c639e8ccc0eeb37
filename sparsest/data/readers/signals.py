"""Sensor readings (graph signals) from CSV, ``.npz``, ``.npy`` or pandas ``.h5``."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from ._common import (
    _TIME_KEYS,
    PathLike,
    _check_len,
    _error,
    _existing,
    _npy,
    _npz_arrays,
    _npz_shapes,
    _pick_key,
    _sensor_ids,
    _signals_3d,
    _suffix,
    _to_datetime,
    _unsupported,
)
from ._csv import _first_csv_row, _numeric_table, _read_csv
from ._timeindex import _check_increasing, _date_part_positions, _date_parts_index
from .hdf5 import read_metr_h5

__all__ = ["read_signals"]

_SIGNAL_KEYS = ("data", "values", "signals")
_TIME_HEADERS = {"", "time", "date", "timestamp", "datetime"}


def _looks_like_dates(col: pd.Series) -> bool:
    """True when a non-numeric column parses as dates throughout."""
    col = col.dropna()
    if col.empty or pd.to_numeric(col, errors="coerce").notna().all():
        return False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        parsed = pd.to_datetime(col, errors="coerce")
    return bool(parsed.notna().all())


def _read_signals_csv(p: Path) -> tuple[np.ndarray, list[str], np.ndarray | None]:
    header = _first_csv_row(p)
    df = _read_csv(p, header=None, skiprows=1, names=range(len(header)), index_col=False, dtype={0: str})
    if df.empty:
        raise _error(p, "no data rows below the header")
    timestamps = None
    first_name = header[0]
    if first_name.lower() in _TIME_HEADERS or _looks_like_dates(df[0]):
        # An unnamed all-number first column is a row index (pandas' to_csv), not time.
        if not (first_name == "" and pd.to_numeric(df[0], errors="coerce").notna().all()):
            field = f"column {first_name!r}"
            timestamps = _to_datetime(p, df[0].to_numpy(), field)
            _check_increasing(p, timestamps, field, lambda i: str(df.iat[i, 0]))
        df, header = df.drop(columns=0), header[1:]
    parts = _date_part_positions(p, header)
    if parts:
        if timestamps is not None:
            raise _error(
                p,
                f"both a time column {first_name!r} and date-part columns "
                f"({', '.join(header[i] for i in parts.values())}); keep one of them",
            )
        timestamps, shown = _date_parts_index(p, df, header, parts)
        _check_increasing(p, timestamps, "date-part columns", shown)
        keep = [i for i in range(len(header)) if i not in parts.values()]
        df, header = df.iloc[:, keep], [header[i] for i in keep]
    if not header:
        raise _error(p, "no sensor columns besides the time column")
    values = _numeric_table(p, df, header, first_line=2)
    return values[:, :, None], _sensor_ids(p, header, len(header), "header"), timestamps


def _read_signals_npz(p: Path) -> tuple[np.ndarray, list[str] | None, np.ndarray | None]:
    shapes = _npz_shapes(p)
    key = _pick_key(p, shapes, _SIGNAL_KEYS, (2, 3), "signals [T, N] or [T, N, C]")
    time_key = next((k for k in _TIME_KEYS if k in shapes), None)
    arrays = _npz_arrays(p, [key, time_key, "sensor_ids"])
    values = _signals_3d(p, arrays[key], repr(key))
    timestamps = None
    if time_key is not None:
        timestamps = _to_datetime(p, arrays[time_key].ravel(), f"array {time_key!r}")
    ids = None
    if "sensor_ids" in arrays:
        ids = _sensor_ids(p, arrays["sensor_ids"].ravel(), values.shape[1], "array 'sensor_ids'")
    return values, ids, timestamps


def read_signals(path: PathLike) -> tuple[np.ndarray, list[str] | None, np.ndarray | None]:
    """Read sensor readings (graph signals) from CSV, ``.npz``, ``.npy`` or pandas ``.h5``.

    Formats:

    * ``.csv``: a header row of N sensor ids, then T rows of N numbers (T-GCN's
      ``los_speed.csv``, github.com/lehaifeng/T-GCN). The first column holds timestamps
      when its header is empty or one of time/date/timestamp/datetime (any case), or when
      its values parse as dates; an unnamed all-number first column is a row index and is
      dropped. Alternatively the time is spread over date-part columns ``year``, ``month``,
      ``day`` and optionally ``hour`` and ``minute`` (any case, anywhere in the header, as
      in many R and NOAA exports): they are combined into the timestamps and are not
      sensors. Timestamps must strictly increase. Empty and NA/NaN cells become NaN; every
      row must have as many fields as the header.
    * ``.npz``: values under ``data``, ``values`` or ``signals`` (else the only 2-d/3-d
      array), optional ``timestamps`` or ``time`` and ``sensor_ids`` arrays.
    * ``.npy``: a bare ``[T, N]`` or ``[T, N, C]`` array.
    * ``.h5`` / ``.hdf5``: METR-LA / PEMS-BAY layout, see :func:`read_metr_h5` (zeros
      become NaN there).

    Args:
        path: the signals file.

    Returns:
        ``(values, sensor_ids, timestamps)``: values float32 ``[T, N, C]`` in the file's
        units (``[T, N]`` gains ``C = 1``; NaN = missing), N sensor ids or ``None``, and
        ``[T]`` ``datetime64[ns]`` timestamps or ``None``.

    Raises:
        DataError: missing file, unsupported type, wrong number of dimensions, a non-numeric
            cell (naming its column), a CSV row with too few or too many fields, unparseable
            timestamps or date parts, CSV timestamps that do not strictly increase (naming
            the line), duplicate sensor ids, or ids / timestamps whose count does not match
            the values.
    """
    p = _existing(path)
    suffix = _suffix(p)
    if suffix == ".csv":
        values, ids, timestamps = _read_signals_csv(p)
    elif suffix == ".npz":
        values, ids, timestamps = _read_signals_npz(p)
    elif suffix == ".npy":
        values, ids, timestamps = _signals_3d(p, _npy(p)), None, None
    elif suffix in (".h5", ".hdf5"):
        values, ids, timestamps = read_metr_h5(p)
    else:
        raise _unsupported(p, "signals", ".csv, .npz, .npy or .h5")
    _check_len(p, timestamps, values.shape[0], "timestamps", "time steps")
    return values, ids, timestamps
