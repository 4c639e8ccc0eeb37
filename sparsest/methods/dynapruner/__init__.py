"""``sparsest compress``: Dyna-Pruner with its baselines (:mod:`.run`) and its Tables III-IV study (:mod:`.study`)."""

from importlib import import_module

_WHERE = {"CompressConfig": "config", "compress": "run", "remeasure": "run", "run_study": "study"}


def __getattr__(name):
    if name in _WHERE:
        return getattr(import_module(f".{_WHERE[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = sorted(_WHERE)
