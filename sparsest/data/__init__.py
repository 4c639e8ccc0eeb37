"""Data: readers for every on-disk format, windowing, scalers and splits."""

from .core import SpatioTemporalData
from .windows import Split, StandardScaler, WindowDataset, chronological_split, time_features

__all__ = [
    "SpatioTemporalData",
    "Split",
    "StandardScaler",
    "WindowDataset",
    "chronological_split",
    "time_features",
]
