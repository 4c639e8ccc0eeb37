"""Data: readers for every on-disk format, windowing, scalers and splits.

The names below load on first use (:mod:`.windows` needs torch; :mod:`.core` does not).
"""

from .._lazy import lazy_attributes

_WHERE = {"SpatioTemporalData": "core", "Split": "windows", "StandardScaler": "windows", "WindowDataset": "windows",
          "chronological_split": "windows", "time_features": "windows"}

__getattr__ = lazy_attributes(__name__, _WHERE)


__all__ = sorted(_WHERE)
