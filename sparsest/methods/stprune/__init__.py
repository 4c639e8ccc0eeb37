"""``sparsest train``: sample pruning (ST-Prune, InfoBatch, random, static), timed."""

from importlib import import_module

_WHERE = {"TrainConfig": "config", "train": "run", "EpochClock": "run"}


def __getattr__(name):
    if name in _WHERE:
        return getattr(import_module(f".{_WHERE[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = sorted(_WHERE)
