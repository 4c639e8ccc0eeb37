"""``sparsest run``: DynST sensor pruning end to end (:mod:`.config` options, :mod:`.run` driver)."""

from ..._lazy import lazy_attributes

_WHERE = {"RunConfig": "config", "run": "run", "measure_costs": "run"}

__getattr__ = lazy_attributes(__name__, _WHERE)


__all__ = sorted(_WHERE)
