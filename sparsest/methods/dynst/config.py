"""Options of ``sparsest run`` (DynST); imports without torch.

Source: Wu et al., DynST, KDD 2025 (arXiv:2403.02914), Alg. 1.
"""

from __future__ import annotations

from typing import Literal

from pydantic.dataclasses import dataclass

from ...engine.options import OPTION_CONFIG, CommonOptions, option
from ...errors import ConfigError
from ...pruning.sensors.options import SCHEMES
from ..options import SamplePruningFields


@dataclass(config=OPTION_CONFIG)
class RunConfig(SamplePruningFields, CommonOptions):
    """Every option of ``sparsest run`` (the CLI, ``--config FILE.yaml`` and ``--set`` use
    these keys); the shared ones are :class:`~sparsest.engine.options.CommonOptions`.

    Attributes (units in brackets):
        sensor_sparsity: fraction of sensors switched off, in [0, 1) (old key: ``sparsity``).
        scheme: dynst, iterative, one-shot, dst or random.
        finetune_epochs: max fine-tuning epochs after the search (default ``epochs``).
        rounds, round_steps (R), mask_steps (M), regrow_fraction (q), mask_lr, mask_l1:
            the sensor search (:mod:`sparsest.pruning.sensors.search`).
        bench_batch, bench_repeats: the dense-vs-pruned latency / FLOPs measurement.
        dense_checkpoint: start from this trained dense checkpoint instead of training.
        sample_pruning, prune_ratio: the dense training and the search visit the windows
            this sample-pruning method keeps each epoch; fine-tuning uses all windows.
    """

    sensor_sparsity: float = option(0.3, "fraction of sensors switched off, in [0, 1)", aliases=("sparsity",), ge=0, lt=1)
    scheme: Literal[SCHEMES] = option("dynst", "sensor-search scheme: dynst (iterative pruning + drop/regrow), iterative (no regrow), "
                         "one-shot, dst (fixed sparsity with drop/regrow), random (random keep-set, same fine-tuning)")
    finetune_epochs: int | None = option(None, "max epochs of the fine-tuning after the search [default: --epochs]", ge=1)
    rounds: int = option(10, "pruning rounds; each prunes sparsity/rounds of the sensors", ge=1)
    round_steps: int = option(25, "R: network training steps per round [optimiser steps]", ge=0)
    mask_steps: int = option(10, "M: mask-score training steps per round [optimiser steps]", ge=1)
    regrow_fraction: float = option(0.01, "q: fraction of all sensors dropped and regrown between rounds, in [0, 1)", ge=0, lt=1)
    mask_lr: float = option(0.05, "learning rate of the sensor scores", gt=0)
    mask_l1: float = option(0.05, "L1 pull on sensor scores while they train (relative to the scaled loss)", ge=0)
    bench_batch: int = option(64, "batch size of the dense-vs-pruned latency and FLOPs measurement", ge=1)
    bench_repeats: int = option(10, "timed repeats of each model in the latency measurement (median reported)", ge=1)
    dense_checkpoint: str | None = option(None, "reuse the dense model of an earlier run (its checkpoints/dense.ckpt) "
                                          "instead of training one")


    def check(self) -> "RunConfig":
        """Registry checks. Raises ConfigError naming the option."""
        self.check_pruning_fields()
        if not self.check_backbone().trainable:
            raise ConfigError(f"--backbone: {self.backbone} is a baseline, always reported; pick a trainable backbone")
        return self
