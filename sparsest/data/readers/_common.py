"""Helpers shared by the readers: one-line errors, dtype and shape checks, sensor ids, dates,
and ``.npy`` / ``.npz`` access that never unpickles."""

from __future__ import annotations

import os
import re
import warnings
import zipfile
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ...errors import DataError

PathLike = str | os.PathLike

_TIME_KEYS = ("timestamps", "time")
_LAT_NAMES = ("latitude", "lat")
_LON_NAMES = ("longitude", "lon", "lng")


def _oneline(exc: BaseException, limit: int = 200) -> str:
    """An exception's message squeezed onto one line and cut to ``limit`` characters."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _error(path: PathLike, message: str) -> DataError:
    """A one-line DataError that starts with the file path."""
    return DataError(f"{path}: {' '.join(message.split())}")


def _existing(path: PathLike) -> Path:
    """``path`` as a Path, or DataError when it is not an existing file."""
    p = Path(path)
    if not p.is_file():
        raise _error(p, "no such file")
    return p


def _suffix(p: Path) -> str:
    return p.suffix.lower()


def _unsupported(p: Path, what: str, expected: str) -> DataError:
    kind = _suffix(p) or "(none)"
    return _error(p, f"unsupported file type {kind!r} for {what} (expected {expected})")


def _float32(p: Path, arr: np.ndarray, field: str) -> np.ndarray:
    """``arr`` as float32; DataError when it does not hold numbers."""
    arr = np.asarray(arr)
    if arr.dtype.kind not in "biuf":
        raise _error(p, f"{field} must hold numbers, got dtype {arr.dtype}")
    return arr.astype(np.float32, copy=False)


def _signals_3d(p: Path, arr: np.ndarray, field: str = "") -> np.ndarray:
    """Graph signals as float32 ``[T, N, C]``; ``[T, N]`` gains a channel axis."""
    arr = np.asarray(arr)
    if arr.ndim not in (2, 3):
        where = f" {field}" if field else ""
        raise _error(
            p, f"expected [T, N] or [T, N, C] values, got {arr.ndim}-d array{where} of shape {arr.shape}"
        )
    arr = _float32(p, arr, field or "values")
    return arr[:, :, None] if arr.ndim == 2 else arr


def _check_len(p: Path, arr: Sequence | np.ndarray | None, n: int, field: str, of: str) -> None:
    """DataError when ``arr`` (if given) does not have ``n`` entries."""
    if arr is not None and len(arr) != n:
        raise _error(p, f"{len(arr)} {field} for {n} {of}")


def _norm_id(raw: object) -> str:
    """A sensor id as a stripped string; ``"773869.0"`` becomes ``"773869"``."""
    s = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    s = s.strip()
    m = re.fullmatch(r"([+-]?\d+)\.0*", s)
    return m.group(1) if m else s


def _sensor_ids(p: Path, raw: Iterable, n: int, field: str) -> list[str]:
    """Normalised, unique sensor ids, exactly ``n`` of them."""
    ids = [_norm_id(x) for x in raw]
    _check_len(p, ids, n, field, "sensors")
    seen: set[str] = set()
    for i, sid in enumerate(ids):
        if not sid:
            raise _error(p, f"{field}: sensor id number {i} is empty")
        if sid in seen:
            raise _error(p, f"{field}: sensor id {sid!r} appears twice")
        seen.add(sid)
    return ids


def _positions(p: Path, ids: list[str], wanted: Iterable, where: str) -> list[int]:
    """Positions of the ``wanted`` ids in ``ids``; DataError naming the first absent one."""
    index = {sid: i for i, sid in enumerate(ids)}
    keys = [_norm_id(w) for w in wanted]
    missing = next((k for k in keys if k not in index), None)
    if missing is not None:
        raise _error(p, f"sensor id {missing!r} is not in {where}")
    return [index[k] for k in keys]


def _to_datetime(p: Path, values: Sequence | np.ndarray, field: str) -> np.ndarray:
    """Dates (datetime64, strings or bytes) as ``datetime64[ns]``; time zones are dropped
    keeping the local wall-clock time."""
    arr = np.asarray(values)
    if arr.dtype.kind in "biufc":
        raise _error(p, f"{field} holds numbers, expected dates such as 2012-03-01 00:05:00")
    if arr.dtype.kind == "S":
        arr = arr.astype(str)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "could not infer format" notices
            idx = pd.DatetimeIndex(pd.to_datetime(arr))
    except (ValueError, TypeError, OverflowError) as exc:
        raise _error(p, f"{field} holds values that are not dates ({_oneline(exc)})") from None
    if idx.tz is not None:
        idx = idx.tz_localize(None)
    n_missing = int(idx.isna().sum())
    if n_missing:
        raise _error(p, f"{field}: {n_missing} timestamps are missing")
    return idx.values.astype("datetime64[ns]")


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _first_present(names: Iterable[str], options: Sequence[str]) -> str | None:
    """The first of ``options`` that is in ``names`` (case-insensitive), as spelt in ``names``."""
    lower = {n.lower(): n for n in names}
    return next((lower[o] for o in options if o in lower), None)


def _npy(p: Path, mmap: bool = False) -> np.ndarray:
    """A ``.npy`` array, never unpickling."""
    try:
        arr = np.load(p, allow_pickle=False, mmap_mode="r" if mmap else None)
    except (OSError, ValueError, EOFError) as exc:
        raise _error(p, f"not a readable .npy file ({_oneline(exc)})") from None
    if not isinstance(arr, np.ndarray):
        arr.close()
        raise _error(p, "is an .npz archive, not a single .npy array")
    return arr


def _npz_shapes(p: Path) -> dict[str, tuple[int, ...]]:
    """The arrays of an ``.npz`` archive and their shapes, read from the headers only."""
    fmt = np.lib.format
    readers = {(1, 0): fmt.read_array_header_1_0, (2, 0): fmt.read_array_header_2_0}
    shapes: dict[str, tuple[int, ...]] = {}
    try:
        with zipfile.ZipFile(p) as zf:
            for member in zf.namelist():
                if not member.endswith(".npy"):
                    continue
                with zf.open(member) as fh:
                    reader = readers.get(fmt.read_magic(fh))
                    shape = reader(fh)[0] if reader else None
                if shape is None:  # rare newer header versions: read the array itself
                    with zf.open(member) as fh:
                        shape = fmt.read_array(fh, allow_pickle=False).shape
                shapes[member[: -len(".npy")]] = tuple(shape)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise _error(p, f"not a readable .npz archive ({_oneline(exc)})") from None
    return shapes


def _npz_arrays(p: Path, keys: Iterable[str | None]) -> dict[str, np.ndarray]:
    """The named arrays of an ``.npz`` archive (names it lacks, and ``None``, are skipped)."""
    out: dict[str, np.ndarray] = {}
    try:
        with np.load(p, allow_pickle=False) as z:
            for key in keys:
                if key is not None and key in z.files:
                    try:
                        out[key] = z[key]
                    except ValueError as exc:
                        why = _oneline(exc)
                        raise _error(p, f"array {key!r} cannot be read without pickle ({why})") from None
    except DataError:
        raise
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, AttributeError) as exc:
        raise _error(p, f"not a readable .npz archive ({_oneline(exc)})") from None
    return out


def _pick_key(
    p: Path,
    shapes: dict[str, tuple[int, ...]],
    preferred: Sequence[str],
    ndims: tuple[int, ...],
    what: str,
) -> str:
    """The first of ``preferred`` present, else the only array with ``ndims`` dimensions."""
    for key in preferred:
        if key in shapes:
            return key
    candidates = [k for k, s in shapes.items() if len(s) in ndims]
    if len(candidates) == 1:
        return candidates[0]
    named = f"no array named {'/'.join(preferred)} and " if preferred else ""
    raise _error(
        p,
        f"cannot tell which array holds the {what}: {named}{len(candidates)} arrays with "
        f"{' or '.join(map(str, ndims))} dims (arrays: {', '.join(shapes) or 'none'})",
    )
