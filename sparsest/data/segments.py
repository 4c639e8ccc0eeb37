"""Unbroken runs (segments) of a series with gaps: found from timestamps, read from a
segment table, and applied (rows outside every segment dropped).

A window must never cross a gap: :func:`~sparsest.data.windows.chronological_split` and
:class:`~sparsest.data.windows.WindowDataset` cut windows inside segments only.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from ..errors import DataError
from .core import SpatioTemporalData


def regular_step_s(timestamps: np.ndarray) -> int:
    """The series' regular time step [s]: the most common step between consecutive rows
    (gaps do not skew it, unlike a mean). ``timestamps`` ``[T]``, T >= 2."""
    d = np.diff(timestamps.astype("datetime64[s]").astype(np.int64))
    vals, counts = np.unique(d, return_counts=True)
    return int(vals[np.argmax(counts)])


def segments_from_timestamps(timestamps: np.ndarray) -> np.ndarray | None:
    """Unbroken runs of strictly increasing ``timestamps`` ``[T]``: a new run starts wherever
    the step to the next row is longer than the series' regular step (the most common one).

    Returns:
        ``[G, 2]`` int64 ``[start, stop)`` row ranges, or ``None`` when there is no gap.
    """
    if timestamps is None or len(timestamps) < 3:
        return None
    d = np.diff(timestamps.astype("datetime64[s]").astype(np.int64))
    breaks = np.flatnonzero(d > regular_step_s(timestamps)) + 1
    if breaks.size == 0:
        return None
    edges = np.concatenate([[0], breaks, [len(timestamps)]])
    return np.stack([edges[:-1], edges[1:]], axis=1).astype(np.int64)


def read_segment_table(path: str | Path, n_steps: int, timestamps: np.ndarray | None) -> np.ndarray:
    """Read a segment table: a CSV with columns ``start,end``, one unbroken run per row.

    Cells are either whole row numbers (0-based, ``[start, end)`` as in Python slices) or
    timestamps (``end`` inclusive: the last reading of the run), matched against the data's
    time column. Runs must be sorted, disjoint and inside the data.

    Returns:
        ``[G, 2]`` int64 ``[start, stop)`` row ranges.

    Raises:
        DataError: missing file or column, a cell that is neither, a timestamp not in the
            data, or runs out of order, overlapping or empty (naming the line).
    """
    import pandas as pd

    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p}: no such file (--segments)")
    try:
        df = pd.read_csv(p, dtype=str, skipinitialspace=True)
    except Exception as exc:  # noqa: BLE001  (pandas raises many types)
        raise DataError(f"{p}: not a readable CSV ({' '.join(str(exc).split())})") from None
    cols = {c.strip().lower(): c for c in df.columns}
    missing = [c for c in ("start", "end") if c not in cols]
    if missing:
        raise DataError(f"{p}: no {missing[0]!r} column; a segment table has columns start,end")
    if df.empty:
        raise DataError(f"{p}: no segments below the header")
    start, end = df[cols["start"]].str.strip(), df[cols["end"]].str.strip()
    as_int = pd.to_numeric(pd.concat([start, end]), errors="coerce")
    if as_int.notna().all() and (as_int % 1 == 0).all():
        seg = np.stack([pd.to_numeric(start).to_numpy(), pd.to_numeric(end).to_numpy()], axis=1).astype(np.int64)
    else:
        if timestamps is None:
            raise DataError(f"{p}: timestamps in the segment table, but the data have no time column; use row numbers")
        ts = timestamps.astype("datetime64[ns]")
        seg = np.empty((len(df), 2), dtype=np.int64)
        for j, (col, off) in enumerate(((start, 0), (end, 1))):
            parsed = pd.to_datetime(col, errors="coerce")
            for i, t in enumerate(parsed):
                if pd.isna(t):
                    raise DataError(f"{p}: line {i + 2}: {col.iat[i]!r} is neither a row number nor a timestamp")
                k = int(np.searchsorted(ts, np.datetime64(t.to_datetime64(), "ns")))
                if k >= len(ts) or ts[k] != np.datetime64(t.to_datetime64(), "ns"):
                    raise DataError(f"{p}: line {i + 2}: {col.iat[i]!r} is not a timestamp of the data")
                seg[i, j] = k + off
    for i, (a, b) in enumerate(seg):
        if not 0 <= a < b <= n_steps:
            raise DataError(f"{p}: line {i + 2}: segment [{a}, {b}) is empty or outside the data's {n_steps} rows")
        if i and a < seg[i - 1, 1]:
            raise DataError(f"{p}: line {i + 2}: segments must be sorted and must not overlap")
    return seg


def keep_segments(data: SpatioTemporalData, min_length: int = 1) -> SpatioTemporalData:
    """Drop the rows outside every segment (and segments shorter than ``min_length``).

    Returns a new :class:`SpatioTemporalData` whose rows are the segments back to back
    (``segments`` renumbered; timestamps kept, so time-of-day stays right); the data itself
    when it has no segments.

    Raises:
        DataError: when no segment is ``min_length`` long.
    """
    if data.segments is None:
        return data
    seg = data.segments[(data.segments[:, 1] - data.segments[:, 0]) >= min_length]
    if len(seg) == 0:
        raise DataError(f"{data.source}: no unbroken run of at least {min_length} steps")
    rows = np.concatenate([np.arange(a, b) for a, b in seg])
    lengths = seg[:, 1] - seg[:, 0]
    edges = np.concatenate([[0], np.cumsum(lengths)])
    new = np.stack([edges[:-1], edges[1:]], axis=1).astype(np.int64)
    if len(rows) == data.n_steps:
        return replace(data, segments=new)
    ts = data.timestamps[rows] if data.timestamps is not None else None
    return replace(data, values=np.ascontiguousarray(data.values[rows]), timestamps=ts, segments=new)


def hour_ranges(hours: list[int]) -> str:
    """``[15, 16, 17, 20]`` -> ``"15:00-17:59, 20:00-20:59"``."""
    out, i = [], 0
    while i < len(hours):
        j = i
        while j + 1 < len(hours) and hours[j + 1] == hours[j] + 1:
            j += 1
        out.append(f"{hours[i]:02d}:00-{hours[j]:02d}:59")
        i = j + 1
    return ", ".join(out)


def missed_hours(hours: list[int]) -> str:
    """What a validation split missing ``hours`` (0-23) means for a budget, one phrase for the
    plan's console note and its report row: ``"15:00-17:59 (3 of 24 hours of the day): the budget
    cannot see what switched-off sensors cost then"``."""
    return (f"{hour_ranges(hours)} ({len(hours)} of 24 hours of the day): the budget cannot see what "
            "switched-off sensors cost then")
