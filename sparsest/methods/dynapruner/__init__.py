"""``sparsest compress``: Dyna-Pruner with its baselines (:mod:`.run`) and its Tables III-IV study (:mod:`.study`)."""

from ..._lazy import lazy_attributes

_WHERE = {"CompressConfig": "config", "compress": "run", "remeasure": "run", "run_study": "study"}

__getattr__ = lazy_attributes(__name__, _WHERE)


__all__ = sorted(_WHERE)
