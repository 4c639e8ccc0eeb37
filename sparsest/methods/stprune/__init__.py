"""``sparsest train``: sample pruning (ST-Prune, InfoBatch, random, static), timed."""

from ..._lazy import lazy_attributes

_WHERE = {"TrainConfig": "config", "train": "run", "EpochClock": "run"}

__getattr__ = lazy_attributes(__name__, _WHERE)


__all__ = sorted(_WHERE)
