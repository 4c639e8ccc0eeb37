"""Data: readers for every on-disk format, windowing, scalers and splits.

The names below load on first use (:mod:`.windows` needs torch; :mod:`.core` does not).
"""

from importlib import import_module

_WHERE = {"SpatioTemporalData": "core", "Split": "windows", "StandardScaler": "windows", "WindowDataset": "windows",
          "chronological_split": "windows", "time_features": "windows"}


def __getattr__(name):
    if name in _WHERE:
        return getattr(import_module(f".{_WHERE[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = sorted(_WHERE)
