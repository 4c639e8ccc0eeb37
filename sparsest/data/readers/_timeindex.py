"""The time index of a signals CSV: date-part columns (``year, month, day[, hour, minute]``)
combined into datetimes, and the check that timestamps strictly increase."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ._common import _error
from ._csv import _data_line

_DATE_PARTS = ("year", "month", "day", "hour", "minute")
_REQUIRED_PARTS = ("year", "month", "day")
# datetime64[ns] spans 1677-09-21 .. 2262-04-11
_YEARS = (1678, 2261)


def _date_part_positions(p: Path, header: Sequence[str]) -> dict[str, int]:
    """``{part: position in header}`` of the date-part columns (names in any case), or ``{}``
    when the header lacks one of year, month and day."""
    lower = [h.strip().lower() for h in header]
    if not all(part in lower for part in _REQUIRED_PARTS):
        return {}
    found: dict[str, int] = {}
    for part in _DATE_PARTS:
        hits = [i for i, name in enumerate(lower) if name == part]
        if len(hits) > 1:
            raise _error(p, f"{len(hits)} {part!r} columns (columns {', '.join(header[i] for i in hits)})")
        if hits:
            found[part] = hits[0]
    return found


def _whole_numbers(p: Path, table: pd.DataFrame, names: Sequence[str]) -> np.ndarray:
    """The date-part cells as int64 ``[rows, parts]``; DataError naming the first empty or
    non-whole-number cell, its column and line."""
    num = table.apply(pd.to_numeric, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    with np.errstate(invalid="ignore"):
        bad = ~np.isfinite(num) | (num % 1 != 0) | (np.abs(num) > 1e9)
    if bad.any():
        i, j = (int(k) for k in np.argwhere(bad)[0])
        raw = table.iat[i, j]
        what = "is empty" if pd.isna(raw) else f"holds {raw!r}, not a whole number"
        raise _error(p, f"date-part column {names[j]!r} {what} (line {_data_line(p, i)})")
    return num.astype(np.int64)


def _invalid_reason(y: int, mo: int, d: int, h: int, mi: int, days_in_month: int) -> str | None:
    if not _YEARS[0] <= y <= _YEARS[1]:
        return f"year must be {_YEARS[0]}..{_YEARS[1]}"
    if not 1 <= mo <= 12:
        return "month must be 1..12"
    if not 1 <= d <= days_in_month:
        return f"day must be 1..{days_in_month} in {y:04d}-{mo:02d}"
    if not 0 <= h <= 23:
        return "hour must be 0..23"
    if not 0 <= mi <= 59:
        return "minute must be 0..59"
    return None


def _date_parts_index(
    p: Path, df: pd.DataFrame, header: Sequence[str], positions: dict[str, int]
) -> tuple[np.ndarray, Callable[[int], str]]:
    """``(timestamps [T] datetime64[ns], text of row i's date)`` from the date-part columns
    of ``df`` (whose columns line up with ``header``); DataError naming the line of the first
    invalid date (e.g. month 13)."""
    parts = list(positions)
    names = [header[positions[part]] for part in parts]
    table = _whole_numbers(p, df.iloc[:, [positions[part] for part in parts]], names)
    cols = {part: table[:, k] for k, part in enumerate(parts)}
    zeros = np.zeros(len(df), np.int64)
    y, mo, d = cols["year"], cols["month"], cols["day"]
    h, mi = cols.get("hour", zeros), cols.get("minute", zeros)
    ok_month = (_YEARS[0] <= y) & (y <= _YEARS[1]) & (1 <= mo) & (mo <= 12)
    months = np.where(ok_month, (y - 1970) * 12 + mo - 1, 0).astype("datetime64[M]")
    first_day = months.astype("datetime64[D]")
    days_in_month = ((months + 1).astype("datetime64[D]") - first_day).astype(np.int64)
    ok = ok_month & (1 <= d) & (d <= days_in_month) & (0 <= h) & (h <= 23) & (0 <= mi) & (mi <= 59)
    if not ok.all():
        i = int(np.flatnonzero(~ok)[0])
        values = (int(y[i]), int(mo[i]), int(d[i]), int(h[i]), int(mi[i]))
        reason = _invalid_reason(*values, int(days_in_month[i]))
        given = ", ".join(f"{name} {cols[part][i]}" for name, part in zip(names, parts))
        raise _error(p, f"line {_data_line(p, i)}: {given} is not a valid date ({reason})")
    minutes = ((d - 1) * 1440 + h * 60 + mi).astype("timedelta64[m]")
    timestamps = (first_day.astype("datetime64[m]") + minutes).astype("datetime64[ns]")
    with_time = "hour" in positions or "minute" in positions

    def shown(i: int) -> str:
        text = f"{y[i]:04d}-{mo[i]:02d}-{d[i]:02d}"
        return f"{text} {h[i]:02d}:{mi[i]:02d}" if with_time else text

    return timestamps, shown


def _check_increasing(p: Path, timestamps: np.ndarray, field: str, shown: Callable[[int], str]) -> None:
    """DataError naming the first data row (line and value) whose timestamp is not later
    than the one before; ``shown(i)`` is row i's value as the file writes it."""
    if len(timestamps) < 2:
        return
    bad = np.flatnonzero(timestamps[1:] <= timestamps[:-1])
    if bad.size:
        j = int(bad[0]) + 1
        raise _error(
            p,
            f"{field}: timestamps must be strictly increasing, but {shown(j)!r} on line "
            f"{_data_line(p, j)} does not come after {shown(j - 1)!r} on line {_data_line(p, j - 1)}",
        )
