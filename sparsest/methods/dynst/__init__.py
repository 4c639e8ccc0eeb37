"""``sparsest run``: DynST sensor pruning end to end (:mod:`.config` options, :mod:`.run` driver)."""

from importlib import import_module

_WHERE = {"RunConfig": "config", "run": "run", "measure_costs": "run"}


def __getattr__(name):
    if name in _WHERE:
        return getattr(import_module(f".{_WHERE[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = sorted(_WHERE)
