"""Sensor coordinates, e.g. DCRNN's ``graph_sensor_locations.csv``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ._common import (
    _LAT_NAMES,
    _LON_NAMES,
    PathLike,
    _error,
    _existing,
    _first_present,
    _positions,
    _sensor_ids,
)
from ._csv import _numeric_table, _read_csv

__all__ = ["read_locations"]


def _column(p: Path, df: pd.DataFrame, options: Sequence[str]) -> str:
    """The first column named one of ``options`` (case-insensitive)."""
    found = _first_present(df.columns, options)
    if found is None:
        also = f" (also tried {', '.join(repr(o) for o in options[1:])})" if len(options) > 1 else ""
        raise _error(p, f"no {options[0]!r} column{also}; columns are {', '.join(map(str, df.columns))}")
    return found


def read_locations(path: PathLike, sensor_ids: list[str] | None) -> tuple[np.ndarray, np.ndarray]:
    """Read sensor coordinates from a CSV such as DCRNN's ``graph_sensor_locations.csv``
    (columns ``index,sensor_id,latitude,longitude``; github.com/liyaguang/DCRNN).

    Columns are matched case-insensitively: ``sensor_id`` or ``id``; ``latitude`` or
    ``lat``; ``longitude``, ``lon`` or ``lng``. Ids are compared as stripped strings, with
    ``"773869.0"`` equal to ``"773869"``. Empty coordinates become NaN.

    Args:
        path: the locations CSV.
        sensor_ids: reorder (and subset) the rows to these ids; ``None`` keeps file order.

    Returns:
        ``(latitude [N], longitude [N])`` float32, in degrees.

    Raises:
        DataError: missing file or column (naming it), a non-numeric coordinate, a duplicate
            id, or a requested sensor id absent from the file (naming it).
    """
    p = _existing(path)
    df = _read_csv(p, dtype=str)
    df.columns = [str(c).strip() for c in df.columns]
    id_col = _column(p, df, ("sensor_id", "id"))
    lat_col = _column(p, df, _LAT_NAMES)
    lon_col = _column(p, df, _LON_NAMES)
    coords = _numeric_table(p, df[[lat_col, lon_col]], [lat_col, lon_col], first_line=2)
    for k, (col, limit) in enumerate(((lat_col, 90.0), (lon_col, 180.0))):
        out = np.flatnonzero(np.abs(coords[:, k]) > limit)
        if out.size:
            raise _error(p, f"column {col!r}: {coords[out[0], k]:g} on line {out[0] + 2} is outside [-{limit:g}, {limit:g}] degrees")
    if sensor_ids is not None:
        ids = _sensor_ids(p, df[id_col].fillna(""), len(df), f"column {id_col!r}")
        coords = coords[_positions(p, ids, sensor_ids, f"column {id_col!r}")]
    return coords[:, 0].copy(), coords[:, 1].copy()
