"""``sparsest run``: DynST sensor pruning end to end (:mod:`.config` options, :mod:`.run` driver),
and ``sparsest plan``: the largest sensor sparsity within an error budget, in one search
(:mod:`.plan_config`, :mod:`.plan`, :mod:`.plan_outputs`); both are built from the same
phases (:mod:`.pieces`)."""

from ..._lazy import lazy_attributes

_WHERE = {"RunConfig": "config", "run": "run", "measure_costs": "run", "PlanConfig": "plan_config", "plan": "plan"}

__getattr__ = lazy_attributes(__name__, _WHERE)


__all__ = sorted(_WHERE)
