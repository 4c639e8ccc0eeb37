"""Lazy package attributes (PEP 562): a package names what it offers and where it lives; the
module is imported on first use, so light commands (``--help``, listings) never load torch."""

from __future__ import annotations

from importlib import import_module


def lazy_attributes(package: str, where: dict[str, str]):
    """A module ``__getattr__`` that imports ``package + "." + where[name]`` on first access."""

    def __getattr__(name: str):
        if name in where:
            return getattr(import_module(f".{where[name]}", package), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__
