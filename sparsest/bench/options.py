"""Options of ``sparsest bench``: one options class per suite, sharing :class:`BenchOptions`.

Imports without torch (``sparsest bench --help`` reads it). ``run_options`` holds the
per-run options (``--set KEY=VALUE``) of the suite's command (``run`` / ``train`` /
``compress``), checked against that command's options.
"""

from __future__ import annotations

from typing import Any

from pydantic import field_validator
from pydantic.dataclasses import dataclass

from ..engine.options import OPTION_CONFIG, Options, option
from ..pruning.sensors.options import BENCH_SCHEMES as SCHEMES

DEFAULT_SPARSITIES = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]
BUDGETS = [0.1, 0.3, 0.5, 0.7, 0.9]
#: methods of the st-prune budget sweep; every run at budget b gets ``--prune-ratio 1 - b``, which
#: st-prune, infobatch-budget (ours: InfoBatch held to the budget), random and static read as the
#: fraction of all windows skipped (they visit b n), and infobatch (as published) as r, the fraction
#: of the below-mean windows dropped: it keeps every above-mean window, visits more than b n, and its
#: measured epoch time (what the sweep's plot and time columns use) shows it
SWEEP_METHODS = ["st-prune", "infobatch", "infobatch-budget", "random", "static"]


@dataclass(config=OPTION_CONFIG)
class BenchOptions(Options):
    """What every bench suite takes."""

    datasets: list[str] = option(help="data sets (names or files)", default_factory=lambda: ["metr-la-week", "era5-t2m-uk"])
    backbones: list[str] | None = option(None, "backbones [default: per suite: every trainable one of each data set's kind "
                                         "(dynst), stid / simvp (st-prune), simvp convlstm tau (dyna-pruner)]")
    seeds: list[int] = option(help="seeds; tables show the mean", default_factory=lambda: [0])
    epochs: int | None = option(None, "max epochs per training [default: as the suite's command]", ge=1)
    quick: bool = option(False, "a few batches per epoch, fewer settings (minutes; accuracies not representative)")
    data_dir: str | None = option(None, "folder with the named data sets")
    from_runs: list[str] | None = option(None, "do not train: rebuild the tables from finished run directories "
                                         "(e.g. an interrupted bench's out/runs)")
    out: str = option("bench_out", "output folder")
    run_options: dict[str, Any] = option(help="options of every run (the suite's command's keys; --set KEY=VALUE)",
                                         default_factory=dict, cli=False)

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, v):
        for s in v:
            if not 0 <= s <= 2**32 - 1:
                raise ValueError(f"a seed must be in [0, 2**32 - 1], got {s}")
        return v

    @field_validator("datasets", "seeds")
    @classmethod
    def _nonempty(cls, v):
        if not v:
            raise ValueError("give at least one")
        return v


@dataclass(config=OPTION_CONFIG)
class DynstBenchOptions(BenchOptions):
    """``--suite dynst``: DynST Tables 1, 2 and 4 (sensor pruning)."""

    sparsities: list[float] = option(help="DynST sensor sparsities for Table 2, each in [0, 1) "
                                     "[default: 0.1 .. 0.6; quick: 0.3 0.5]", default_factory=lambda: list(DEFAULT_SPARSITIES))
    schemes: list[str] = option(help="schemes for Table 4 [default: dynst dynst-paper iterative one-shot dst random qr; quick: dynst qr random]",
                                default_factory=lambda: list(SCHEMES))
    table1_sparsity: float = option(0.3, "sensor sparsity of Tables 1 and 4, in [0, 1)", ge=0, lt=1)

    @field_validator("sparsities")
    @classmethod
    def _sparsities(cls, v):
        for s in v:
            if not 0 <= s < 1:
                raise ValueError(f"each must be in [0, 1), got {s}")
        return v

    @field_validator("schemes")
    @classmethod
    def _schemes(cls, v):
        for s in v:
            if s not in SCHEMES:
                raise ValueError(f"unknown scheme {s!r}; choose from {', '.join(SCHEMES)}")
        return v


@dataclass(config=OPTION_CONFIG)
class StPruneBenchOptions(BenchOptions):
    """``--suite st-prune``: the sample-pruning budget sweep (test MAE vs measured per-epoch time).

    At budget b every method runs with prune ratio ``1 - b``: a budget of all windows for
    st-prune, infobatch-budget, random and static; for infobatch (as published) the fraction
    of the below-mean windows dropped, so it trains on more than b (see :data:`SWEEP_METHODS`).
    """

    budgets: list[float] = option(help="per-epoch budgets (fraction of windows visited; infobatch visits more), each in (0, 1) "
                                  "[quick: 0.3 0.7]",
                                  default_factory=lambda: list(BUDGETS))
    methods: list[str] = option(help="sample-pruning methods swept at every budget (prune ratio 1 - budget; infobatch: of the "
                                "below-mean windows, so it visits more)", default_factory=lambda: list(SWEEP_METHODS))

    @field_validator("budgets")
    @classmethod
    def _budgets(cls, v):
        for b in v:
            if not 0 < b < 1:
                raise ValueError(f"each must be in (0, 1), got {b}")
        return v

    @field_validator("methods")
    @classmethod
    def _methods(cls, v):
        for m in v:
            if m not in SWEEP_METHODS:
                raise ValueError(f"unknown method {m!r}; choose from {', '.join(SWEEP_METHODS)}")
        return v


@dataclass(config=OPTION_CONFIG)
class DynaPrunerBenchOptions(BenchOptions):
    """``--suite dyna-pruner``: Dyna-Pruner Tables I-IV."""

    tables: list[int] | None = option(None, "which paper tables: 1 2 (vs dense / MP / random, robustness), 3 (sensitivity to "
                                      "s_d, s_w), 4 (ablation) [default: 1 2; with --from-runs: all the runs support]")

    @field_validator("tables")
    @classmethod
    def _tables(cls, v):
        if v is not None and not set(v) <= {1, 2, 3, 4}:
            raise ValueError(f"the dyna-pruner suite has Tables 1, 2, 3 and 4, got {v}")
        return v


#: suite name -> its options class (the runner is :func:`sparsest.bench.run_suite`)
SUITE_OPTIONS = {"dynst": DynstBenchOptions, "st-prune": StPruneBenchOptions, "dyna-pruner": DynaPrunerBenchOptions}
