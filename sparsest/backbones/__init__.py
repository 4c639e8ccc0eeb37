"""Forecasting backbones, registered by name (see :mod:`.registry`).

The registry loads every backbone module on first use; :mod:`.catalog` lists names, kinds
and summaries without importing torch (``sparsest backbones``).
"""

from .._lazy import lazy_attributes

_NAMES = ("DataSpec", "check_backbone_options", "create_backbone", "get_backbone_entry", "get_backbone_options",
          "list_backbones", "register_backbone")

__getattr__ = lazy_attributes(__name__, {name: "registry" for name in _NAMES})


__all__ = list(_NAMES)
