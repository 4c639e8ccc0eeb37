"""Readers for the standard benchmark containers: PEMS0X ``.npz``, METR-LA / PEMS-BAY pandas
``.h5`` and TaxiBJ ``.h5``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ...errors import DataError
from ._common import (
    PathLike,
    _check_len,
    _error,
    _existing,
    _float32,
    _npz_arrays,
    _npz_shapes,
    _oneline,
    _sensor_ids,
    _signals_3d,
    _to_datetime,
)

__all__ = ["read_pems_npz", "read_metr_h5", "read_taxibj_h5"]

def read_pems_npz(path: PathLike) -> np.ndarray:
    """Read a PEMS03/04/07/08 ``.npz`` (ASTGCN, Guo et al., AAAI 2019; STSGCN, Song et al.,
    AAAI 2020, github.com/Davidham3/STSGCN).

    The archive holds ``data`` ``[T, N, 3]``: 5-minute flow (vehicles / 5 min), occupancy
    (fraction) and speed (mph); PEMS03 has only flow, ``[T, N, 1]``. Values are kept as
    stored (zeros are not turned into NaN).

    Args:
        path: e.g. ``PEMS04.npz``.

    Returns:
        float32 ``[T, N, C]`` (a ``[T, N]`` array gains ``C = 1``).

    Raises:
        DataError: missing file, no ``data`` array, or the wrong number of dimensions.
    """
    p = _existing(path)
    shapes = _npz_shapes(p)
    if "data" not in shapes:
        arrays = ", ".join(shapes) or "none"
        raise _error(p, f"no array 'data' (PEMS .npz files hold data [T, N, 3]); arrays: {arrays}")
    return _signals_3d(p, _npz_arrays(p, ["data"])["data"], "'data'")


def read_metr_h5(path: PathLike) -> tuple[np.ndarray, list[str], np.ndarray]:
    """Read METR-LA / PEMS-BAY speeds from DCRNN's pandas HDF5 file (``metr-la.h5``,
    ``pems-bay.h5``; Li et al., ICLR 2018, github.com/liyaguang/DCRNN).

    The file holds one DataFrame (key ``df`` for METR-LA, ``speed`` for PEMS-BAY) with a
    5-minute ``DatetimeIndex`` and one column per sensor id; values are speeds in mph.
    These files store missing readings as 0.0 (DCRNN convention), so every 0.0 is turned
    into NaN.

    Args:
        path: the ``.h5`` file.

    Returns:
        ``(values [T, N, 1] float32 mph with NaN = missing, N sensor ids, [T]
        datetime64[ns] timestamps)``.

    Raises:
        DataError: missing file, not a pandas HDF5 file, several tables and none named
            ``df``/``speed``, non-numeric columns, or an index that is not a DatetimeIndex.
    """
    p = _existing(path)
    try:
        with pd.HDFStore(p, mode="r") as store:
            keys = store.keys()
            named = [k for k in keys if k.strip("/") in ("df", "speed")]
            if len(keys) != 1 and len(named) != 1:
                raise _error(
                    p,
                    "expected one pandas DataFrame (METR-LA: key 'df', PEMS-BAY: key 'speed'), "
                    f"found keys: {', '.join(keys) or 'none'}",
                )
            key = keys[0] if len(keys) == 1 else named[0]
            df = store[key]
    except DataError:
        raise
    except Exception as exc:  # tables / h5py raise many kinds for a foreign file
        raise _error(p, f"not a pandas HDF5 file ({type(exc).__name__}: {_oneline(exc)})") from None
    if not isinstance(df, pd.DataFrame):
        raise _error(p, f"table {key!r} is a {type(df).__name__}, expected a DataFrame of sensors")
    if not isinstance(df.index, pd.DatetimeIndex):
        raise _error(p, f"table {key!r}: index must be a DatetimeIndex, got {type(df.index).__name__}")
    values = df.to_numpy()
    values = _float32(p, values, f"table {key!r}").copy()
    values[values == 0.0] = np.nan
    ids = _sensor_ids(p, df.columns, values.shape[1], f"table {key!r} columns")
    timestamps = _to_datetime(p, df.index.to_numpy(), f"table {key!r} index")
    return values[:, :, None], ids, timestamps


def _taxibj_timestamps(p: Path, raw: np.ndarray) -> np.ndarray:
    """TaxiBJ ``date`` entries (``b"2013070101"`` = YYYYMMDD + half-hour slot 01..48) as
    the start of each slot, ``datetime64[ns]``."""
    texts = [d.decode("ascii", "replace") if isinstance(d, bytes) else str(d) for d in raw.ravel()]
    for t in texts:
        if not (len(t) == 10 and t.isdigit() and 1 <= int(t[8:]) <= 48):
            raise _error(p, f"dataset 'date': {t!r} is not YYYYMMDD followed by a half-hour slot 01..48")
    try:
        days = pd.to_datetime([t[:8] for t in texts], format="%Y%m%d").values.astype("datetime64[ns]")
    except ValueError as exc:
        raise _error(p, f"dataset 'date' holds an invalid day ({_oneline(exc)})") from None
    slots = np.array([int(t[8:]) for t in texts], dtype=np.int64)
    return days + (slots - 1) * np.timedelta64(30, "m").astype("timedelta64[ns]")


def read_taxibj_h5(path: PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Read a TaxiBJ crowd-flow file (ST-ResNet, Zhang et al., AAAI 2017,
    github.com/lucktroy/DeepST), e.g. ``BJ16_M32x32_T30_InOut.h5``.

    The HDF5 file holds ``data`` ``[T, 2, 32, 32]`` (inflow, outflow: taxis entering /
    leaving each cell per 30 minutes) and ``date`` ``[T]`` bytes like ``b"2013070101"``
    (YYYYMMDD + half-hour slot 01..48); a timestamp is the day + (slot - 1) * 30 min.
    Other grid sizes in the same layout (e.g. BikeNYC) are read too.

    Args:
        path: the ``.h5`` file.

    Returns:
        ``(values [T, C, H, W] float32, timestamps [T] datetime64[ns])``.

    Raises:
        DataError: missing file, not HDF5, a missing ``data``/``date`` dataset, ``data``
            not 4-d, a malformed date, or counts that differ.
    """
    import h5py

    p = _existing(path)
    try:
        with h5py.File(p, "r") as f:
            found = {}
            for name in ("data", "date"):
                if not isinstance(f.get(name), h5py.Dataset):
                    raise _error(
                        p, f"no dataset {name!r} (TaxiBJ files hold data [T, 2, 32, 32] and date [T])"
                    )
                found[name] = f[name][()]
    except DataError:
        raise
    except OSError as exc:
        raise _error(p, f"not a readable HDF5 file ({_oneline(exc)})") from None
    if found["data"].ndim != 4:
        raise _error(p, f"dataset 'data': expected [T, 2, 32, 32], got shape {found['data'].shape}")
    values = _float32(p, found["data"], "dataset 'data'")
    timestamps = _taxibj_timestamps(p, found["date"])
    _check_len(p, timestamps, values.shape[0], "dates", "time steps")
    return values, timestamps
