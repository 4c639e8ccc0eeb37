"""Option fields more than one command shares but the engine must not know (method names).

:class:`SamplePruningFields`: which windows each epoch trains on (``sparsest run`` and
``sparsest train``). Defaults come from :class:`sparsest.pruning.samples.options.PruningOptions`
(one place). Imports without torch.
"""

from __future__ import annotations

from typing import Literal

from pydantic.dataclasses import dataclass

from ..engine.options import OPTION_CONFIG, Options, option
from ..pruning.samples.options import METHODS, PruningOptions


@dataclass(config=OPTION_CONFIG)
class SamplePruningFields(Options):
    """``sample_pruning`` (the method) and ``prune_ratio`` (fraction of all windows skipped;
    for ``infobatch``, fraction of the below-mean windows dropped)."""

    sample_pruning: Literal[METHODS] = option(PruningOptions.method, "which training windows each epoch visits: "
                                 + ", ".join(METHODS) + " (infobatch: as published, keeps every above-mean window; "
                                 "infobatch-budget: ours, InfoBatch held to the budget of all windows)")
    prune_ratio: float = option(PruningOptions.prune_ratio, "in [0, 1): R, fraction of all training windows skipped per pruned "
                                "epoch; for infobatch: r, fraction of the below-mean windows dropped (it visits more)",
                                ge=0, lt=1)

    def pruning(self) -> PruningOptions:
        """The :class:`PruningOptions` of this run: every same-named field of the command's
        options (``sample_pruning`` -> ``method``); the others keep their defaults."""
        import dataclasses

        shared = {f.name: getattr(self, f.name) for f in dataclasses.fields(PruningOptions) if hasattr(self, f.name)}
        return PruningOptions(**{**shared, "method": self.sample_pruning})

    def check_pruning_fields(self) -> None:
        """``prune_ratio`` without a sample-pruning method would be ignored: refused.

        Raises:
            ConfigError: naming ``--prune-ratio``.
        """
        from ..errors import ConfigError

        if self.sample_pruning == "none" and self.prune_ratio not in (0.0, PruningOptions.prune_ratio):
            raise ConfigError(f"--prune-ratio {self.prune_ratio:g}: has no effect without --sample-pruning "
                              f"({', '.join(m for m in METHODS if m != 'none')})")

