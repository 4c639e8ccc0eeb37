"""CSV helpers: pandas reads with parse problems (and rows with too few or too many fields)
turned into DataError, and exact line numbers for messages."""

from __future__ import annotations

import csv
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ...errors import DataError
from ._common import _error, _oneline


def _records(p: Path) -> Iterator[tuple[int, list[str]]]:
    """``(line, fields)`` for each record of a CSV file that pandas reads as a row: blank and
    whitespace-only lines are skipped. ``line`` is the 1-based line the record starts on."""
    with open(p, newline="", encoding="utf-8-sig") as fh:
        reader = csv.reader(fh)
        end = 0
        for row in reader:
            start, end = end + 1, reader.line_num
            if not row or (len(row) == 1 and not row[0].strip()):
                continue
            yield start, row


def _data_line(p: Path, row: int, skip: int = 1) -> int:
    """The line of data row ``row`` (0-based) when ``skip`` header records come first
    (blank lines, which pandas skips, are counted); used for error messages only."""
    try:
        for k, (line, _) in enumerate(_records(p)):
            if k == row + skip:
                return line
    except (OSError, UnicodeDecodeError, csv.Error):
        pass
    return row + skip + 1


def _field_count_error(p: Path, too_many: bool) -> DataError | None:
    """A DataError naming the first record with more (``too_many``) or fewer fields than the
    file's first record, or ``None`` when there is none."""
    try:
        records = _records(p)
        first = next(records, None)
        if first is None:
            return None
        first_line, n = first[0], len(first[1])
        for line, row in records:
            if (len(row) > n) if too_many else (len(row) < n):
                return _error(
                    p, f"malformed CSV (line {line} has {len(row)} fields, line {first_line} has {n})"
                )
    except (UnicodeDecodeError, csv.Error) as exc:
        return _error(p, f"malformed CSV ({_oneline(exc)})")
    return None


def _read_csv(p: Path, **kwargs) -> pd.DataFrame:
    """``pd.read_csv`` with parse problems, including a row with too few or too many fields,
    turned into DataError."""
    try:
        with warnings.catch_warnings():
            # pandas drops the extra fields of every row when the first data row is too long
            warnings.filterwarnings("error", "Length of header or names", pd.errors.ParserWarning)
            df = pd.read_csv(p, **kwargs)
    except pd.errors.ParserWarning:
        error = _field_count_error(p, too_many=True)
        raise error or _error(p, "malformed CSV (rows have more fields than the header)") from None
    except pd.errors.EmptyDataError:
        raise _error(p, "empty file") from None
    except (pd.errors.ParserError, ValueError, UnicodeDecodeError) as exc:
        raise _error(p, f"malformed CSV ({_oneline(exc)})") from None
    # pandas pads a row with too few fields with NaN, so only a table whose last column
    # holds a NaN can have one; others are not scanned again
    if df.shape[1] and df.iloc[:, -1].isna().any():
        error = _field_count_error(p, too_many=False)
        if error is not None:
            raise error
    return df


def _first_csv_row(p: Path) -> list[str]:
    """The first row of a CSV file, cells stripped."""
    try:
        with open(p, newline="", encoding="utf-8-sig") as fh:
            row = next(csv.reader(fh), None)
    except (UnicodeDecodeError, csv.Error) as exc:
        raise _error(p, f"malformed CSV ({_oneline(exc)})") from None
    if not row:
        raise _error(p, "empty file")
    return [c.strip() for c in row]


def _numeric_table(p: Path, df: pd.DataFrame, names: Sequence[str], first_line: int) -> np.ndarray:
    """A parsed CSV table as float32 ``[rows, cols]``; empty / NA cells become NaN and any
    other non-numeric cell raises DataError naming its column and line (``first_line`` is
    the line of the first data row when the file has no blank lines)."""
    num = df.apply(pd.to_numeric, errors="coerce")
    bad = num.isna().to_numpy() & df.notna().to_numpy()
    if bad.any():
        i, j = np.argwhere(bad)[0]
        line = _data_line(p, int(i), first_line - 1)
        raise _error(p, f"column {names[j]!r} holds non-numeric value {df.iat[i, j]!r} (line {line})")
    return num.to_numpy(dtype=np.float32, na_value=np.nan)
