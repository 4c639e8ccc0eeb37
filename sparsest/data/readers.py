"""Readers for the on-disk formats that spatio-temporal data sets come in.

Every reader returns float32 arrays in the project-wide layouts (``[T, N, C]`` for sensor
graphs, ``[T, C, H, W]`` for grids, ``[N, N]`` adjacency) and keeps ``NaN`` as the marker
of a missing reading. Every problem with a file raises :class:`~sparsest.errors.DataError`
with a one-line message that starts with the file path and names the offending field, e.g.
``"/x/speed.csv: expected [T, N] or [T, N, C] values, got 1-d array of shape (5,)"``.

Formats and their sources:

* T-GCN CSVs (Zhao et al., IEEE T-ITS 2019, github.com/lehaifeng/T-GCN): ``los_speed.csv``
  (header of sensor ids, one row per step) and ``los_adj.csv`` (dense, no header).
* DCRNN (Li et al., ICLR 2018, github.com/liyaguang/DCRNN): ``metr-la.h5`` /
  ``pems-bay.h5`` (pandas HDF5), ``adj_mx.pkl`` (Python-2 pickle),
  ``graph_sensor_locations.csv``, and the Gaussian-kernel graph of ``gen_adj_mx.py``.
* PEMS03/04/07/08 (ASTGCN, Guo et al., AAAI 2019; STSGCN, Song et al., AAAI 2020,
  github.com/Davidham3/STSGCN): ``PEMS0X.npz`` (key ``data``) and the ``from,to,cost``
  distance CSV.
* TaxiBJ (ST-ResNet, Zhang et al., AAAI 2017, github.com/lucktroy/DeepST): ``.h5`` with
  ``data`` [T, 2, 32, 32] and ``date``.
* WeatherBench (Rasp et al., JAMES 2020, github.com/pangeo-data/WeatherBench): netCDF with
  ``(time, [level,] lat, lon)`` variables; plus ``.npz`` grids such as the ERA5 ``t2m.npz``.
"""

from __future__ import annotations

import _compat_pickle
import csv
import importlib
import os
import pickle
import re
import warnings
import zipfile
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import DataError

__all__ = [
    "safe_load_pickle",
    "read_signals",
    "read_adjacency",
    "read_locations",
    "read_pems_npz",
    "read_metr_h5",
    "read_taxibj_h5",
    "read_grid",
    "sniff_kind",
]

PathLike = str | os.PathLike

_SIGNAL_KEYS = ("data", "values", "signals")
_TIME_KEYS = ("timestamps", "time")
_LAT_NAMES = ("latitude", "lat")
_LON_NAMES = ("longitude", "lon", "lng")
_TIME_HEADERS = {"", "time", "date", "timestamp", "datetime"}
_NETCDF_TIME_NAMES = ("time", "valid_time")
_TAXIBJ_CHANNELS = ["inflow", "outflow"]

# ----------------------------------------------------------------------------- helpers


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


def _looks_like_dates(col: pd.Series) -> bool:
    """True when a non-numeric column parses as dates throughout."""
    col = col.dropna()
    if col.empty or pd.to_numeric(col, errors="coerce").notna().all():
        return False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        parsed = pd.to_datetime(col, errors="coerce")
    return bool(parsed.notna().all())


def _numeric_table(p: Path, df: pd.DataFrame, names: Sequence[str], first_line: int) -> np.ndarray:
    """A parsed CSV table as float32 ``[rows, cols]``; empty / NA cells become NaN and any
    other non-numeric cell raises DataError naming its column and line."""
    num = df.apply(pd.to_numeric, errors="coerce")
    bad = num.isna().to_numpy() & df.notna().to_numpy()
    if bad.any():
        i, j = np.argwhere(bad)[0]
        raise _error(
            p, f"column {names[j]!r} holds non-numeric value {df.iat[i, j]!r} (line {i + first_line})"
        )
    return num.to_numpy(dtype=np.float32, na_value=np.nan)


def _read_csv(p: Path, **kwargs) -> pd.DataFrame:
    """``pd.read_csv`` with parse problems turned into DataError."""
    try:
        return pd.read_csv(p, **kwargs)
    except pd.errors.EmptyDataError:
        raise _error(p, "empty file") from None
    except (pd.errors.ParserError, ValueError, UnicodeDecodeError) as exc:
        raise _error(p, f"malformed CSV ({_oneline(exc)})") from None


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


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


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


# ----------------------------------------------------------------------------- pickle

_PICKLE_BUILTINS = (
    *("list", "dict", "tuple", "set", "frozenset", "slice"),
    *("str", "bytes", "int", "float", "bool", "complex"),
)
_PICKLE_ALLOWED = frozenset(
    {("builtins", name) for name in _PICKLE_BUILTINS}
    | {
        ("collections", "OrderedDict"),
        # Python 3 writes bytes (e.g. an array's buffer) as _codecs.encode(str, "latin1")
        # in protocols 0-2; it only re-encodes text (torch's weights_only loader allows it too).
        ("_codecs", "encode"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        # protocol-5 pickles of arrays
        ("numpy.core.numeric", "_frombuffer"),
        ("numpy._core.numeric", "_frombuffer"),
    }
)


def _pickle_global_allowed(module: str, name: str) -> bool:
    if (module, name) in _PICKLE_ALLOWED:
        return True
    return module == "numpy.dtypes" and name.endswith("DType")  # numpy >= 1.25 dtype classes


def _import_global(module: str, name: str) -> object:
    """``module.name``; ``numpy.core.*`` is read from ``numpy._core`` where that exists
    (numpy >= 2 deprecates the old path)."""
    if module.startswith("numpy.core."):
        try:
            new_module = "numpy._core." + module[len("numpy.core.") :]
            return getattr(importlib.import_module(new_module), name)
        except (ImportError, AttributeError):
            pass
    return getattr(importlib.import_module(module), name)


class _SafeUnpickler(pickle.Unpickler):
    """An unpickler that resolves only plain containers, scalars and numpy arrays."""

    def __init__(self, file, path: Path) -> None:
        super().__init__(file, encoding="latin1")
        self._path = path

    def find_class(self, module: str, name: str) -> object:
        # Python-2 names (``__builtin__.set``); the keys are not Python-3 module names.
        module, name = _compat_pickle.NAME_MAPPING.get((module, name), (module, name))
        module = _compat_pickle.IMPORT_MAPPING.get(module, module)
        if not _pickle_global_allowed(module, name):
            raise _error(
                self._path,
                f"pickle refers to {module}.{name}, which is not allowed "
                "(only plain containers and numpy arrays are read)",
            )
        return _import_global(module, name)


def safe_load_pickle(path: PathLike) -> object:
    """Load a pickle that may hold only plain containers, scalars and numpy arrays.

    A pickle can run arbitrary code when loaded; this one refuses every global other than
    the builtin containers/scalars (list, dict, tuple, set, frozenset, str, bytes, int,
    float, bool, complex, slice), ``collections.OrderedDict``, numpy arrays, dtypes and
    scalars (and ``_codecs.encode``, which Python 3 uses for bytes in protocols 0-2), so a
    malicious file raises before anything runs. Strings of Python-2 pickles are decoded
    with ``encoding="latin1"``, as the DCRNN ``adj_mx.pkl`` requires.

    Args:
        path: the pickle file, e.g. DCRNN's ``data/sensor_graph/adj_mx.pkl``
            (github.com/liyaguang/DCRNN).

    Returns:
        The unpickled object.

    Raises:
        DataError: the file is missing, corrupt, or refers to a disallowed global.
    """
    p = _existing(path)
    try:
        with open(p, "rb") as fh:
            return _SafeUnpickler(fh, p).load()
    except DataError:
        raise
    except Exception as exc:  # a corrupt pickle can fail in many ways
        raise _error(p, f"not a readable pickle ({type(exc).__name__}: {_oneline(exc)})") from None


# ----------------------------------------------------------------------------- signals


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
            timestamps = _to_datetime(p, df[0].to_numpy(), f"column {first_name!r}")
        df, header = df.drop(columns=0), header[1:]
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
      dropped. Empty and NA/NaN cells become NaN.
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
            cell (naming its column), unparseable timestamps, duplicate sensor ids, or ids /
            timestamps whose count does not match the values.
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


# ----------------------------------------------------------------------------- adjacency


def _square(p: Path, adj: object) -> np.ndarray:
    """A finite square float32 matrix."""
    arr = np.asarray(adj)
    if arr.ndim != 2 or arr.shape[0] != arr.shape[1]:
        raise _error(p, f"adjacency must be a square N x N matrix, got shape {arr.shape}")
    arr = _float32(p, arr, "adjacency")
    n_bad = int((~np.isfinite(arr)).sum())
    if n_bad:
        raise _error(p, f"adjacency holds {n_bad} NaN/inf/empty entries; use 0 for no edge")
    return arr


def _gaussian_weights(p: Path, distances: np.ndarray, column: str) -> np.ndarray:
    """DCRNN's thresholded Gaussian kernel ``exp(-(d / sigma)^2)``, sigma = std of ``d``,
    weights below 0.1 set to 0 (``gen_adj_mx.py``, github.com/liyaguang/DCRNN)."""
    if (distances < 0).any():
        raise _error(p, f"column {column!r} holds negative distances")
    sigma = float(distances.std())
    if not sigma > 0:
        raise _error(
            p,
            f"column {column!r}: all distances are equal, so the Gaussian kernel width "
            "(their std) is 0",
        )
    weights = np.exp(-np.square(distances / sigma))
    weights[weights < 0.1] = 0.0
    return weights


def _edge_indices(
    p: Path, ends: pd.DataFrame, sensor_ids: list[str] | None, n_nodes: int | None
) -> tuple[np.ndarray, int]:
    """Map the ``from``/``to`` columns to 0-based node indices; returns ``(indices [E, 2], N)``.

    Endpoints are sensor ids when all of them are in ``sensor_ids``, else 0-based indices.
    """
    labels = ends.map(_norm_id)
    if sensor_ids is not None:
        index = {_norm_id(s): i for i, s in enumerate(sensor_ids)}
        if labels.isin(list(index)).all().all():
            return labels.apply(lambda col: col.map(index)).to_numpy(dtype=np.int64), len(index)
    numbers = labels.apply(pd.to_numeric, errors="coerce")
    n = len(sensor_ids) if sensor_ids is not None else n_nodes
    for col in labels.columns:
        bad = numbers[col].isna() | (numbers[col] % 1 != 0) | (numbers[col] < 0)
        if n is not None:
            bad |= numbers[col] >= n
        if bad.any():
            value = labels[col][bad].iloc[0]
            below = f" below {n}" if n is not None else ""
            what = "neither one of the sensor ids nor" if sensor_ids is not None else "not"
            raise _error(p, f"column {col!r}: {value!r} is {what} a 0-based node index{below}")
    idx = numbers.to_numpy(dtype=np.int64)
    return idx, n if n is not None else int(idx.max()) + 1


def _read_edge_list(p: Path, sensor_ids: list[str] | None, n_nodes: int | None) -> np.ndarray:
    df = _read_csv(p, dtype=str)
    df.columns = [str(c).strip().lower() for c in df.columns]
    columns = ", ".join(df.columns)
    for col in ("from", "to"):
        if col not in df.columns:
            raise _error(p, f"edge list has no {col!r} column (columns: {columns})")
    weight_col = _first_present(df.columns, ("cost", "distance", "weight"))
    if weight_col is None:
        raise _error(
            p, f"edge list has no 'cost', 'distance' or 'weight' column (columns: {columns})"
        )
    if df.empty:
        raise _error(p, "edge list has no edges")
    if df[["from", "to"]].isna().any().any():
        raise _error(p, "edge list has an empty 'from' or 'to' cell")
    w = _numeric_table(p, df[[weight_col]], [weight_col], first_line=2)[:, 0].astype(np.float64)
    if not np.isfinite(w).all():
        raise _error(p, f"column {weight_col!r} holds empty or non-finite values")
    if weight_col != "weight":
        w = _gaussian_weights(p, w, weight_col)
    idx, n = _edge_indices(p, df[["from", "to"]], sensor_ids, n_nodes)
    adj = np.zeros((n, n), np.float32)
    adj[idx[:, 0], idx[:, 1]] = w
    return np.maximum(adj, adj.T)


def _reorder_pickled(p: Path, adj: np.ndarray, pickled_ids: object, sensor_ids: list[str]) -> np.ndarray:
    """Rows/columns of a DCRNN adjacency put in ``sensor_ids`` order."""
    if not isinstance(pickled_ids, (list, tuple, np.ndarray)):
        raise _error(p, f"the first element (sensor ids) is a {type(pickled_ids).__name__}, not a list")
    ids = _sensor_ids(p, pickled_ids, adj.shape[0], "pickled sensor ids")
    order = _positions(p, ids, sensor_ids, "the pickle's sensor id list")
    return adj[np.ix_(order, order)]


def _read_pickled_adjacency(p: Path, sensor_ids: list[str] | None) -> np.ndarray:
    obj = safe_load_pickle(p)
    if isinstance(obj, np.ndarray):
        return _square(p, obj)
    if not (isinstance(obj, (list, tuple)) and len(obj) == 3):
        raise _error(
            p,
            "expected the DCRNN layout [sensor_ids, sensor_id_to_ind, adj_mx], "
            f"got {type(obj).__name__}",
        )
    adj = _square(p, obj[2])
    return adj if sensor_ids is None else _reorder_pickled(p, adj, obj[0], sensor_ids)


def read_adjacency(
    path: PathLike, sensor_ids: list[str] | None = None, n_nodes: int | None = None
) -> np.ndarray:
    """Read a sensor graph as a dense weighted adjacency matrix.

    Formats:

    * dense ``.csv`` without header, N rows of N numbers (T-GCN ``los_adj.csv``,
      github.com/lehaifeng/T-GCN), or dense ``.npy``.
    * edge-list ``.csv`` with a header ``from,to`` plus ``cost``, ``distance`` or ``weight``
      (the PEMS0X distance CSV of ASTGCN/STSGCN, github.com/Davidham3/STSGCN). ``from``/
      ``to`` are sensor ids (mapped through ``sensor_ids``) or 0-based indices. Distances
      (``cost``/``distance``, any unit) become DCRNN Gaussian-kernel weights
      ``exp(-(d / sigma)^2)`` with sigma the std of the listed distances, weights below 0.1
      set to 0; ``weight`` is used as is. The graph is symmetrised with ``max(A, A.T)``, so
      an edge listed in one direction links both ways. Unlisted pairs (and the diagonal,
      unless listed) are 0. N is ``len(sensor_ids)``, else ``n_nodes``, else the largest
      index + 1.
    * DCRNN ``adj_mx.pkl`` (github.com/liyaguang/DCRNN), a pickle of ``[sensor_ids,
      sensor_id_to_ind, adj_mx]`` read with :func:`safe_load_pickle`; with ``sensor_ids``
      the rows and columns are reordered (and subset) to that order.

    Args:
        path: the adjacency file.
        sensor_ids: the signals' sensor ids, used to map edge-list ids and to reorder the
            DCRNN pickle.
        n_nodes: the signals' number of sensors N, checked against the result.

    Returns:
        float32 ``[N, N]`` edge weights (unitless; 0 = no edge).

    Raises:
        DataError: missing file, unsupported type, a non-square or non-finite matrix (with
            its shape), a missing edge-list column, an unknown sensor id or out-of-range
            index, or a size that differs from ``n_nodes`` / ``len(sensor_ids)``.
    """
    p = _existing(path)
    suffix = _suffix(p)
    if suffix in (".pkl", ".pickle"):
        adj = _read_pickled_adjacency(p, sensor_ids)
    elif suffix == ".npy":
        adj = _square(p, _npy(p))
    elif suffix == ".csv":
        first = _first_csv_row(p)
        if _is_number(first[0]):
            table = _read_csv(p, header=None, index_col=False)
            names = [str(j) for j in range(table.shape[1])]
            adj = _square(p, _numeric_table(p, table, names, first_line=1))
        else:
            adj = _read_edge_list(p, sensor_ids, n_nodes)
    else:
        raise _unsupported(p, "an adjacency", ".csv, .npy or .pkl")
    n = adj.shape[0]
    for expected in (n_nodes, None if sensor_ids is None else len(sensor_ids)):
        if expected is not None and expected != n:
            raise _error(p, f"adjacency is {n} x {n} but the signals have {expected} sensors")
    return adj


# ----------------------------------------------------------------------------- locations


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
    if sensor_ids is not None:
        ids = _sensor_ids(p, df[id_col].fillna(""), len(df), f"column {id_col!r}")
        coords = coords[_positions(p, ids, sensor_ids, f"column {id_col!r}")]
    return coords[:, 0].copy(), coords[:, 1].copy()


# ----------------------------------------------------------------------------- standard benchmarks


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


# ----------------------------------------------------------------------------- grids


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


# ----------------------------------------------------------------------------- sniffing


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
