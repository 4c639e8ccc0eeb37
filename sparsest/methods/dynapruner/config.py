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
        reading: which computation the masks skip (:data:`~sparsest.pruning.adaptive.READINGS`,
            :class:`~sparsest.pruning.adaptive.DynaPruner` module doc): ``tiles`` (spatial
            tiles, soft-to-hard), ``tiles+channels``, ``channels`` (soft-to-hard unit gating,
            one global budget), ``channels-hard`` (hard masks from the first step, a budget
            per layer: the reading first built).
        tiles: rows and columns of the tile grid of the tile readings (empty: tiles of
            about 8 x 8 pixels, at most an 8 x 8 grid: 16-pixel tiles on a 128 x 128 frame).
        hard_from: fraction of the training steps after which the soft masks are hard.
        loss: training loss of every row (``mse`` or ``mae``).
        clip_forecast: every row trains on its forecast clipped at the data set's lower bound
            (the forecast that is scored), gradient straight through the clip
            (:class:`~sparsest.engine.module.ForecastModule`): ``auto`` = on where the data set
            has a lower bound (radar rain: 0 mm/h), ``on`` (refused on data without one), ``off``.
        generator_warmup: optimiser steps of the mask generator's warm-up toward the future
            change before each Dyna-Pruner row (0 = off).
        compare_readings: also train every other reading (rows ``dyna:<reading>``), from the
            same dense weights with the same budget, measured in the same run.
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
    reading: Literal["tiles", "tiles+channels", "channels", "channels-hard"] = option(
        "tiles", "what the masks skip: tiles (only active spatial tiles computed; the default), tiles+channels, "
        "channels (soft-to-hard channel gating, one global budget), channels-hard (hard masks from step 1, a budget per layer)")
    tiles: list[int] = option(default_factory=list, help="tile grid of the tile readings: ROWS COLS [default: tiles of "
                              "about 8 x 8 pixels, at most 8 8: 8-pixel tiles on a 64 x 64 frame, 16-pixel on 128 x 128]")
    hard_from: float = option(0.6, "soft readings: fraction of the training steps after which the masks are hard, in (0, 1]",
                              gt=0, le=1)
    loss: Literal["mse", "mae"] = option("mse", "training loss of every row on the scaled targets: mse (as SimVP / the paper "
                                         "train and evaluate) or mae")
    clip_forecast: Literal["auto", "on", "off"] = option(
        "auto", "train every row on its forecast clipped at the data set's lower bound (e.g. 0 mm/h, the forecast that is "
        "scored), gradient straight through the clip: auto (on where the data set has a lower bound), on, off")
    generator_warmup: int = option(100, "steps that pre-train the mask generator alone toward the future change "
                                   "|y - x_T| before each Dyna-Pruner row (0 = off: S starts flat)", ge=0)
    compare_readings: bool = option(False, "also train every other reading from the same dense weights (rows dyna:<reading>)")


    def check(self) -> "CompressConfig":
        """Cross-field and registry checks. Raises ConfigError naming the option."""
        if self.data_sparsity == 0 and self.model_sparsity == 0:
            raise ConfigError("--data-sparsity / --model-sparsity: both 0 prunes nothing (that is the dense row); "
                              "set at least one > 0")
        if self.tiles and (len(self.tiles) != 2 or min(self.tiles) < 1):
            raise ConfigError(f"--tiles: two integers >= 1 (rows cols), got {self.tiles}")
        readings = {"tiles", "tiles+channels", "channels", "channels-hard"} if self.compare_readings else {self.reading}
        if self.reading == "tiles" and self.model_sparsity not in (0.0, 0.7):
            raise ConfigError("--model-sparsity: --reading tiles gates no channels; use --reading tiles+channels to gate them too")
        if self.data_sparsity == 0 and any(r.startswith("tiles") for r in readings):
            raise ConfigError("--data-sparsity 0: the tile readings skip the tiles the data mask prunes; set s_d > 0 "
                              "or --reading channels")
        if self.tiles and not any(r.startswith("tiles") for r in readings):
            raise ConfigError(f"--tiles: --reading {self.reading} uses no tiles")
        if self.hard_from != 0.6 and readings == {"channels-hard"}:
            raise ConfigError("--hard-from: --reading channels-hard uses hard masks from the first step")
        entry = self.check_backbone()
        if entry.kind not in ("grid", "any") or not entry.trainable:
            raise ConfigError(f"--backbone: Dyna-Pruner gates the convolutions of a trainable grid backbone; "
                              f"{self.backbone} is not one")
        return self
