"""Options of ``sparsest train`` (one backbone trained with sample pruning); imports without torch.

Source: ST-Prune (arXiv:2602.19113), METHODS.md section 3; InfoBatch (Qin et al., ICLR 2024).
"""

from __future__ import annotations

from typing import Literal

from pydantic.dataclasses import dataclass

from ...engine.options import OPTION_CONFIG, CommonOptions, option
from ...errors import ConfigError
from ...pruning.samples.options import RESCALE, PruningOptions
from ..options import SamplePruningFields


@dataclass(config=OPTION_CONFIG)
class TrainConfig(SamplePruningFields, CommonOptions):
    """Every option of ``sparsest train``; the shared ones are
    :class:`~sparsest.engine.options.CommonOptions`, the sample-pruning hyper-parameters
    those of :class:`~sparsest.pruning.samples.options.PruningOptions` (same names, same
    defaults).

    Attributes (units in brackets):
        sample_pruning, prune_ratio: see :class:`~sparsest.methods.options.SamplePruningFields`
            (``infobatch``: prune_ratio is the fraction of the below-mean windows dropped).
        epochs: training epochs (the same for every method; annealing is planned on it).
        patience: early-stopping patience [epochs]; 0 = off (train all epochs).
        lr_schedule: cosine (over fractional epochs, correct for pruned epoch lengths) or none.
    """

    epochs: int = option(30, "training epochs, the same for every method", ge=1)
    patience: int = option(0, "early-stopping patience [epochs]; 0 = train all epochs", ge=0)
    lr_schedule: Literal["cosine", "none"] = option("cosine", "cosine (over fractional epochs, correct for pruned epochs) or none")
    anneal: float = option(PruningOptions.anneal, "fraction of epochs that may be pruned, in (0, 1]: full data from epoch "
                           "floor(anneal * epochs) on (InfoBatch's delta)", gt=0, le=1)
    beta: float = option(PruningOptions.beta, "ST-Prune: weight of the top-k node-loss term of the score", ge=0)
    topk_fraction: float = option(PruningOptions.topk_fraction, "ST-Prune: k of the top-k term, fraction of the nodes, in (0, 1]",
                                  gt=0, le=1)
    complexity_weight: float = option(PruningOptions.complexity_weight, "ST-Prune: exponent of the window-complexity factor "
                                      "(0 = off)", ge=0)
    n_strata: int = option(PruningOptions.n_strata, "ST-Prune: stationarity strata for loss rescaling", ge=1)
    hard_cap: float = option(PruningOptions.hard_cap, "ST-Prune and infobatch-budget (not infobatch): most hard (above-mean "
                             "score) windows kept outright, fraction of the epoch's budget, in (0, 1]", gt=0, le=1)
    rescale: Literal[RESCALE] = option(PruningOptions.rescale, "ST-Prune: loss weights of kept low-score windows: strata (each stratum's share "
                          "of the low pool, mean 1) or mass (each stratum's whole loss, unbiased)")



    def check(self) -> "TrainConfig":
        """Registry checks. Raises ConfigError naming the option."""
        self.check_pruning_fields()
        self.pruning().check()
        if not self.check_backbone().trainable:
            raise ConfigError(f"--backbone: {self.backbone} is a baseline; pick a trainable backbone")
        return self
