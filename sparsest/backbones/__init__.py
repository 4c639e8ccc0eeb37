"""Forecasting backbones, registered by name (see :mod:`.registry`).

The registry loads every backbone module on first use; :mod:`.catalog` lists names, kinds
and summaries without importing torch (``sparsest backbones``).
"""

from importlib import import_module

_NAMES = ("DataSpec", "check_backbone_options", "create_backbone", "get_backbone_entry", "get_backbone_options",
          "list_backbones", "register_backbone")


def __getattr__(name):
    if name in _NAMES:
        return getattr(import_module(".registry", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = list(_NAMES)
