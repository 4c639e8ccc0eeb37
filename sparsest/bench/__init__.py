"""``sparsest bench``: one registry of bench suites, one module each.

- ``dynst`` (:mod:`.dynst`): sensor pruning, DynST Tables 1, 2 and 4;
- ``st-prune`` (:mod:`.stprune`): sample pruning, test MAE against per-epoch time at budgets;
- ``dyna-pruner`` (:mod:`.dynapruner`): Dyna-Pruner Tables I-IV.

Each suite takes its own options object (:mod:`.options`) and returns an exit code.
"""

from __future__ import annotations

from .options import SUITE_OPTIONS


def run_suite(options, console) -> int:
    """Run the suite that ``options`` (an instance of one of :data:`SUITE_OPTIONS`) belongs to."""
    from ..engine.run import check_out
    from .options import DynaPrunerBenchOptions, DynstBenchOptions, StPruneBenchOptions

    check_out(options.out)  # a file or an unwritable folder: one line before anything trains

    if isinstance(options, DynstBenchOptions):
        from .dynst import suite
    elif isinstance(options, StPruneBenchOptions):
        from .stprune import suite
    elif isinstance(options, DynaPrunerBenchOptions):
        from .dynapruner import suite
    else:
        raise TypeError(f"not a bench suite's options: {type(options).__name__}")
    return suite(options, console)


SUITES = tuple(SUITE_OPTIONS)

__all__ = ["SUITES", "SUITE_OPTIONS", "run_suite"]
