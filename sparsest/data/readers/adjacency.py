"""Sensor graphs: dense CSV / NPY matrices, edge lists and DCRNN's pickled ``adj_mx.pkl``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ._common import (
    PathLike,
    _error,
    _existing,
    _float32,
    _is_number,
    _norm_id,
    _npy,
    _positions,
    _sensor_ids,
    _suffix,
    _unsupported,
)
from ._csv import _first_csv_row, _numeric_table, _read_csv
from .unpickle import safe_load_pickle

__all__ = ["read_adjacency"]

# endpoint column pairs, in order of preference: PEMS0X / STSGCN, networkx and PyTorch
# Geometric Temporal exports, and the src/dst convention of DGL and others
_EDGE_ENDS = (("from", "to"), ("source", "target"), ("src", "dst"))
_ENDS_TEXT = "'from'/'to', 'source'/'target' or 'src'/'dst'"
# the first of these present holds the edge values; the first two are distances
_WEIGHT_COLUMNS = ("cost", "distance", "weight")


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
    """Map the two endpoint columns to 0-based node indices; returns ``(indices [E, 2], N)``.

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


def _edge_columns(p: Path, columns: list[str]) -> tuple[str, str]:
    """The endpoint columns of an edge list (``columns`` are lower-cased)."""
    for a, b in _EDGE_ENDS:
        if a in columns and b in columns:
            return a, b
    listed = ", ".join(columns)
    pairs = _ENDS_TEXT
    halves = [(a, b) if a in columns else (b, a) for a, b in _EDGE_ENDS if (a in columns) != (b in columns)]
    if halves:
        has = " and ".join(f"{have!r} without {lack!r}" for have, lack in halves)
        raise _error(p, f"edge list has {has}; endpoint columns are {pairs} (columns: {listed})")
    raise _error(p, f"edge list has none of the endpoint column pairs {pairs} (columns: {listed})")


def _weight_column(p: Path, columns: list[str]) -> str | None:
    """The column holding edge values; ``None`` for a file of only the two endpoint columns."""
    found = next((c for c in _WEIGHT_COLUMNS if c in columns), None)
    if found is None and len(columns) != 2:
        raise _error(
            p, f"edge list has no 'cost', 'distance' or 'weight' column (columns: {', '.join(columns)})"
        )
    return found


def _read_edge_list(p: Path, sensor_ids: list[str] | None, n_nodes: int | None) -> np.ndarray:
    df = _read_csv(p, dtype=str)
    df.columns = [str(c).strip().lower() for c in df.columns]
    ends = list(_edge_columns(p, list(df.columns)))
    weight_col = _weight_column(p, list(df.columns))
    if df.empty:
        raise _error(p, "edge list has no edges")
    if df[ends].isna().any().any():
        raise _error(p, f"edge list has an empty {ends[0]!r} or {ends[1]!r} cell")
    if weight_col is None:
        w = np.ones(len(df), np.float64)
    else:
        w = _numeric_table(p, df[[weight_col]], [weight_col], first_line=2)[:, 0].astype(np.float64)
        if not np.isfinite(w).all():
            raise _error(p, f"column {weight_col!r} holds empty or non-finite values")
        if weight_col != "weight":
            w = _gaussian_weights(p, w, weight_col)
    idx, n = _edge_indices(p, df[ends], sensor_ids, n_nodes)
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
    * edge-list ``.csv`` with a header naming the endpoints ``from,to`` (the PEMS0X
      distance CSV of ASTGCN/STSGCN, github.com/Davidham3/STSGCN), ``source,target``
      (networkx, PyTorch Geometric Temporal exports) or ``src,dst``, plus ``cost``,
      ``distance`` or ``weight`` (names in any case; the first of these present is used).
      Endpoints are sensor ids (mapped through ``sensor_ids``) or 0-based indices.
      Distances (``cost``/``distance``, any unit) become DCRNN Gaussian-kernel weights
      ``exp(-(d / sigma)^2)`` with sigma the std of the listed distances, weights below 0.1
      set to 0; ``weight`` is used as is; a file of only the two endpoint columns gives
      every listed edge weight 1. The graph is symmetrised with ``max(A, A.T)``, so an edge
      listed in one direction links both ways. Unlisted pairs (and the diagonal, unless
      listed) are 0. N is ``len(sensor_ids)``, else ``n_nodes``, else the largest index + 1.
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
    if (adj < 0).any():
        i, j = map(int, np.argwhere(adj < 0)[0])
        raise _error(p, f"{int((adj < 0).sum())} edge weight(s) are negative (first {adj[i, j]:g} at row {i}, column {j}); "
                        "weights are >= 0, 0 = no edge")
    return adj
