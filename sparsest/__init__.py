"""sparsest: resource-efficient spatio-temporal forecasting.

Find which sensors can be switched off (DynST), make inference input-adaptive (Dyna-Pruner)
and train on fewer windows (ST-Prune), on standard backbones, on real data. The names below
load on first use, so ``import sparsest`` (and the command line's help) does not import torch.
"""

from ._lazy import lazy_attributes

from .errors import ConfigError, DataError, SparsestError  # noqa: F401  (re-exported)

__version__ = "0.1.0"

_WHERE = {
    "RunConfig": "methods.dynst", "run": "methods.dynst", "TrainConfig": "methods.stprune", "train": "methods.stprune",
    "CompressConfig": "methods.dynapruner.config", "compress": "methods.dynapruner.run",
    "load_dataset": "datasets", "list_datasets": "datasets", "create_backbone": "backbones", "list_backbones": "backbones",
    "register_backbone": "backbones", "DataSpec": "backbones", "SpatioTemporalData": "data.core",
    "StandardScaler": "data.windows", "WindowDataset": "data.windows",
}

__getattr__ = lazy_attributes(__name__, _WHERE)


__all__ = sorted([*_WHERE, "SparsestError", "DataError", "ConfigError"])
