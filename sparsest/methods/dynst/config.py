"""Options of ``sparsest run`` (DynST); imports without torch.

Source: Wu et al., DynST, KDD 2025 (arXiv:2403.02914), Alg. 1.
"""

from __future__ import annotations

from typing import Literal

from pydantic.dataclasses import dataclass

from ...engine.options import OPTION_CONFIG, CommonOptions, option
from ...errors import ConfigError
from ...pruning.sensors.options import PLACEMENT_SCHEMES, SCHEMES
from ..options import SamplePruningFields


DEFAULT_SCHEME = "dynst"
SENSOR_SPARSITY = 0.3
NO_SEARCH = ("random", *PLACEMENT_SCHEMES)
"""Schemes with no training search phase."""
SEARCH_OPTIONS = ("rounds", "round_steps", "mask_steps", "regrow_fraction", "mask_lr", "mask_l1")
USED_BY = {
    **{name: tuple(s for s in SCHEMES if s not in NO_SEARCH) for name in SEARCH_OPTIONS},
    "swap_candidates": ("dynst",),
    "max_swaps": ("dynst",),
    "qr_modes": ("qr", "dynst"),
}
"""Scheme-specific options and the schemes that use them (the others refuse them)."""


DEFAULT_FINETUNE_SCHEDULE = "cosine"


def unused_options(scheme: str, dense_loaded: bool = False,
                   finetune_schedule: str = DEFAULT_FINETUNE_SCHEDULE) -> dict[str, str]:
    """The options a run of ``scheme`` ignores, each with why (the run refuses them when
    given; a bench drops them per run): the scheme-specific ones of :data:`USED_BY`, and
    ``patience`` when the dense model is loaded and the cosine fine-tuning runs every epoch."""
    unused = {name: f"only for --scheme {' / '.join(users)}; --scheme {scheme} would ignore it"
              for name, users in USED_BY.items() if scheme not in users}
    if dense_loaded and finetune_schedule == "cosine":
        unused["patience"] = ("the dense model is loaded (--dense-checkpoint) and the cosine fine-tuning runs every epoch, "
                              "so nothing would stop early; drop it or use --finetune-schedule constant")
    return unused


@dataclass(config=OPTION_CONFIG)
class RunConfig(SamplePruningFields, CommonOptions):
    """Every option of ``sparsest run`` (the CLI, ``--config FILE.yaml`` and ``--set`` use
    these keys); the shared ones are :class:`~sparsest.engine.options.CommonOptions`.

    Attributes (units in brackets):
        sensor_sparsity: fraction of sensors switched off, in [0, 1) (old key: ``sparsity``).
        scheme: dynst (default: QR start + drop / regrow by held-out full-field error,
            :func:`sparsest.pruning.sensors.placement.swap_search`), dynst-paper,
            iterative, one-shot, dst, random, qr or keep-set.
        keep_set, qr_modes, swap_candidates, max_swaps: the placements
            (:mod:`sparsest.pruning.sensors.placement`); refused with schemes that ignore them.
        finetune_epochs: fine-tuning epochs after the search (default ``epochs``; all of
            them run with the cosine schedule, at most that many with constant).
        finetune_schedule: ``cosine`` (default: lr decays to 1% over ``finetune_epochs``,
            no early stopping, the best validation epoch is kept) or ``constant`` (``lr``,
            early stopping after ``patience``). A constant lr leaves the validation MAE
            bouncing by about 1% between epochs on metr-la-week, more than the keep-sets
            differ, so which epoch early stopping picks decides a comparison of schemes.
        finetune_epoch: ``best`` (default: the epoch with the lowest validation error) or
            ``last`` (the end of the cosine schedule). On ghcnd-us (23 validation windows) the
            validation MAE of one fine-tuning jumps by 2-3% between epochs until the schedule
            anneals, so the best epoch is 2-4% below the annealed end by chance, and which
            fine-tuning drew the luckiest pass decides a budget of 3%. ``last`` needs the
            cosine schedule.
        rounds, round_steps (R), mask_steps (M), regrow_fraction (q), mask_lr, mask_l1:
            the sensor search (:mod:`sparsest.pruning.sensors.search`).
        bench_batch, bench_repeats: the dense-vs-pruned latency / FLOPs measurement.
        dense_checkpoint: start from this trained dense checkpoint instead of training.
        sample_pruning, prune_ratio: the dense training and the search visit the windows
            this sample-pruning method keeps each epoch; fine-tuning uses all windows.
    """

    sensor_sparsity: float = option(SENSOR_SPARSITY, "fraction of sensors switched off, in [0, 1)", aliases=("sparsity",), ge=0, lt=1)
    scheme: Literal[SCHEMES] = option(DEFAULT_SCHEME, "sensor-search scheme: dynst (QR keep-set, then drop/regrow by the held-out "
                         "full-field error of the dense model with a linear read-out), dynst-paper (the paper: iterative pruning "
                         "by |m| + drop/regrow), iterative (no regrow), one-shot, dst (fixed sparsity with drop/regrow), random, "
                         "qr (PySensors QR placement on the training split), keep-set (--keep-set FILE); all get the same fine-tuning")
    finetune_epochs: int | None = option(None, "epochs of the fine-tuning after the search (all run with the cosine "
                                         "schedule, at most with constant) [default: --epochs]", ge=1)
    finetune_schedule: Literal["cosine", "constant"] = option(
        DEFAULT_FINETUNE_SCHEDULE, "learning rate of the fine-tuning: cosine (decays to 1% of --lr over --finetune-epochs, every epoch run, "
        "best validation epoch kept) or constant (--lr with early stopping after --patience epochs)")
    finetune_epoch: Literal["best", "last"] = option(
        "best", "which epoch of the cosine fine-tuning is kept: best (lowest validation error) or last (the annealed end "
        "of the schedule; on a short validation split the best epoch is mostly a lucky validation pass)")
    rounds: int = option(10, "pruning rounds of the training searches (dynst-paper, iterative, one-shot, dst); each prunes sparsity/rounds", ge=1)
    round_steps: int = option(25, "R: network training steps per round [optimiser steps]", ge=0)
    mask_steps: int = option(10, "M: mask-score training steps per round [optimiser steps]", ge=1)
    regrow_fraction: float = option(0.01, "q: fraction of all sensors dropped and regrown between rounds, in [0, 1)", ge=0, lt=1)
    mask_lr: float = option(0.05, "learning rate of the sensor scores", gt=0)
    mask_l1: float = option(0.05, "L1 pull on sensor scores while they train (relative to the scaled loss)", ge=0)
    bench_batch: int = option(64, "batch size of the dense-vs-pruned latency and FLOPs measurement", ge=1)
    bench_repeats: int = option(10, "timed repeats of each model in the latency measurement (median reported)", ge=1)
    dense_checkpoint: str | None = option(None, "reuse the dense model of an earlier run (its checkpoints/dense.ckpt) "
                                          "instead of training one")
    keep_set: str | None = option(None, "your own keep-set: a file of sensor ids to keep (one per line, or a CSV with a "
                                  "sensor_id column, e.g. a run's sensors.csv); implies --scheme keep-set, sets the sparsity")
    qr_modes: int | None = option(None, "--scheme qr / dynst: SVD modes the QR pivoting uses [default: as many as sensors kept]",
                                  ge=1)
    swap_candidates: int = option(8, "--scheme dynst: sensors tried on each side of a drop / regrow round (their square "
                                  "is the exchanges measured per round)", ge=1)
    max_swaps: int = option(40, "--scheme dynst: drop / regrow exchanges at most (0 = the QR keep-set itself)", ge=0)


    def check(self) -> "RunConfig":
        """Registry checks; options the scheme would ignore are refused. Raises ConfigError
        naming the option."""
        self.check_pruning_fields()
        if self.keep_set is not None:
            if self.scheme not in ("keep-set", DEFAULT_SCHEME):
                raise ConfigError(f"--keep-set: fixes the keep-set; it cannot be combined with --scheme {self.scheme}")
            if self.sensor_sparsity != SENSOR_SPARSITY:
                raise ConfigError("--sensor-sparsity: --keep-set sets the sparsity (the sensors not in the file are off)")
            self.scheme = "keep-set"
        elif self.scheme == "keep-set":
            raise ConfigError("--scheme keep-set: needs --keep-set FILE (the sensor ids to keep)")
        if self.finetune_epoch == "last" and self.finetune_schedule != "cosine":
            raise ConfigError("--finetune-epoch last: the constant schedule stops early at an epoch chosen by the "
                              "validation error; last needs --finetune-schedule cosine")
        for name, why in unused_options(self.scheme, self.dense_checkpoint is not None, self.finetune_schedule).items():
            if getattr(self, name) != _DEFAULTS[name]:
                raise ConfigError(f"--{name.replace('_', '-')}: {why}")
        if not self.check_backbone().trainable:
            raise ConfigError(f"--backbone: {self.backbone} is a baseline, always reported; pick a trainable backbone")
        return self


_DEFAULTS = {name: f.default for name, f in RunConfig.__pydantic_fields__.items()}
