"""Options of ``sparsest compress`` (Dyna-Pruner and its baselines); imports without torch.

Dyna-Pruner: Zhang et al., arXiv:2606.15346; our reading in ``../shared/design/METHODS.md``
section 2 and :mod:`sparsest.pruning.adaptive`.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic.dataclasses import dataclass

from ...engine.options import OPTION_CONFIG, CommonOptions, option
from ...errors import ConfigError


@dataclass(config=OPTION_CONFIG)
class CompressConfig(CommonOptions):
    """Every option of ``sparsest compress``; the shared ones are
    :class:`~sparsest.engine.options.CommonOptions` (without ``patience``: every row trains
    exactly ``epochs``; without ``adjacency`` / ``locations``: grid data only).

    Attributes (units in brackets):
        data_sparsity: s_d, fraction of pixels pruned per sample, in [0, 1) (paper: 0.7);
            0 = no data mask ("MP only").
        model_sparsity: s_w, target fraction of gated units off per sample, in [0, 1) (0.7);
            0 = no channel gating ("DP only"). Not both 0.
        epochs: training epochs of every row (dense, Dyna-Pruner, MP, random) after the
            shared dense pre-training: the same budget for all rows.
        pretrain_epochs: dense pre-training epochs (default: ``epochs``).
        tau_lr: learning rate of the thresholds tau.
        min_usage: the static compact model removes units active for fewer than this
            fraction of the training samples.
        fill: what pruned pixels show the backbone: ``last`` (their last value) or ``zero``.
        baselines: also train MP and random (the comparison rows).
        bench_repeats: timed repeats per model in the latency measurement (median).
        latency_samples: test windows timed one by one at batch 1.
        n_maps: importance-map PNGs written.
    """

    UNUSED: ClassVar[tuple[str, ...]] = ("patience", "adjacency", "locations", "knn", "segments")

    data: str = option("era5-t2m-uk", "grid data set name (see `sparsest datasets`) or grid file (.npz/.nc [T, (C,) H, W])")
    backbone: str = option("simvp", "grid backbone: simvp, tau, convlstm (see `sparsest backbones`)")
    data_sparsity: float = option(0.7, "s_d: fraction of pixels pruned per sample, in [0, 1); 0 = no data mask "
                                  "(channel gating only)", ge=0, lt=1)
    model_sparsity: float = option(0.7, "s_w: target fraction of gated channels off per sample, in [0, 1); 0 = no channel "
                                   "gating (data mask only); not both 0", ge=0, lt=1)
    epochs: int = option(3, "training epochs of every row (dense, Dyna-Pruner, MP, random) after the shared dense pre-training",
                         ge=1)
    pretrain_epochs: int | None = option(None, "dense pre-training epochs [default: --epochs]", ge=1)
    tau_lr: float = option(0.01, "learning rate of the learnable thresholds", gt=0)
    min_usage: float = option(0.05, "static compact model: remove channels active for fewer than this fraction of training "
                              "samples, in [0, 1)", ge=0, lt=1)
    fill: Literal["last", "zero"] = option("last", "what pruned pixels show the backbone: last (their last value) or zero (paper's X*M)")
    baselines: bool = option(True, "also train the MP (L1 at matched FLOPs) and random rows")
    bench_repeats: int = option(10, "timed repeats per model in the latency measurement (median)", ge=1)
    latency_samples: int = option(8, "test windows timed one at a time at batch 1", ge=1)
    n_maps: int = option(3, "importance-map PNGs to write", ge=0)


    def check(self) -> "CompressConfig":
        """Cross-field and registry checks. Raises ConfigError naming the option."""
        if self.data_sparsity == 0 and self.model_sparsity == 0:
            raise ConfigError("--data-sparsity / --model-sparsity: both 0 prunes nothing (that is the dense row); "
                              "set at least one > 0")
        entry = self.check_backbone()
        if entry.kind not in ("grid", "any") or not entry.trainable:
            raise ConfigError(f"--backbone: Dyna-Pruner gates the convolutions of a trainable grid backbone; "
                              f"{self.backbone} is not one")
        return self
