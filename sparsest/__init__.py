"""sparsest: resource-efficient spatio-temporal forecasting.

Find which sensors can be switched off (DynST), on standard backbones, on real data.
"""

from .backbones import DataSpec, create_backbone, list_backbones, register_backbone
from .data import SpatioTemporalData, StandardScaler, WindowDataset
from .datasets import list_datasets, load_dataset
from .errors import ConfigError, DataError, SparsestError
from .experiment import RunConfig, run

__version__ = "0.1.0"

__all__ = [
    "RunConfig",
    "run",
    "load_dataset",
    "list_datasets",
    "create_backbone",
    "list_backbones",
    "register_backbone",
    "DataSpec",
    "SpatioTemporalData",
    "StandardScaler",
    "WindowDataset",
    "SparsestError",
    "DataError",
    "ConfigError",
]
