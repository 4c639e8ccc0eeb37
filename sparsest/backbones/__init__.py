"""Forecasting backbones, registered by name (see :mod:`.registry`)."""

from . import baselines  # noqa: F401  (registers persistence, historical-average)
from .graph import gwn, staeformer, stgcn, stid  # noqa: F401
from .grid import convlstm, simvp, tau, vit  # noqa: F401
from .registry import DataSpec, create_backbone, get_backbone_entry, list_backbones, register_backbone

__all__ = ["DataSpec", "create_backbone", "get_backbone_entry", "list_backbones", "register_backbone"]
