"""Options of ``sparsest plan`` (the largest sensor sparsity within an error budget); imports
without torch.

``plan`` shares ``run``'s options for the dense model, the default ``dynst`` search
(``swap_candidates``, ``max_swaps``), the fine-tuning and the cost measurement; it has no
target sparsity and no scheme (the search decides the sparsity; the chosen keep-set is the
better of ``dynst`` and QR on validation), so those options are not offered.

Source: Wu et al., DynST, KDD 2025 (arXiv:2403.02914), Eq. 2.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic.dataclasses import dataclass

from ...engine.options import OPTION_CONFIG, CommonOptions, build_options, fields_of, option
from ...errors import ConfigError
from .config import RunConfig

PLAN_METRICS = ("mae", "rmse", "mse")


@dataclass(config=OPTION_CONFIG)
class PlanConfig(RunConfig):
    """Every option of ``sparsest plan``: those of :class:`~sparsest.methods.dynst.config.RunConfig`
    except the ones fixing a sparsity or a scheme (:attr:`UNUSED`), plus the budget.

    Attributes (units in brackets):
        max_increase: the error budget, a relative increase of the validation error over
            the dense model's (0.03: at most 3% worse), > 0.
        metric: the validation error the budget is on: ``mae``, ``rmse`` or ``mse`` (each
            averaged over the horizon, physical units, missing readings masked).
        confidence: the budget is checked on the upper ``confidence`` bound of a candidate's
            validation error (moving-block bootstrap of its error ratio to the dense model,
            :mod:`.budget`), in [0, 1); 0: on the validation error itself.
        checkpoint_step: sensor sparsity added between two checkpoints of the search, in (0, 1).
        checkpoint_finetune_epochs: epochs of the short fine-tuning each candidate keep-set
            (the search's and QR's) gets at a checkpoint before its validation error is
            measured (same schedule as the final fine-tuning), >= 1.
        checkpoint_start: ``previous``: a checkpoint's short fine-tuning starts from the model
            the previous checkpoint fine-tuned for the same chain (the search's keep-sets, or
            QR's), so after checkpoint k the network has adapted for k x
            ``checkpoint_finetune_epochs`` epochs while sensors went off (DynST's iterative
            rounds); ``dense``: from the dense weights every time. The full fine-tunings
            start from the dense weights either way.
        reference: ``finetuned``: the budget (and the test confirmation, the costs) is relative
            to the dense model fine-tuned with every sensor as a candidate's full fine-tuning
            (``finetune_epochs``, the same schedule; phase ``dense-ft``), so a pruned model is
            not "within the budget" only because it trained longer; ``dense``: the dense model
            as trained.
        max_sparsity: the search stops at this sensor sparsity even within budget, in (0, 1).
        finetune_epochs: the final full fine-tuning of the chosen keep-set [default: epochs].
        compress: grid data: after the plan, Dyna-Pruner (``sparsest compress``) on the
            kept-sensor model (:mod:`.plan_compress`).
        compress_options: options of that compress run (:func:`compress_config`), e.g.
            ``{data_sparsity: 0.8, epochs: 8}``; only with ``compress``.
    """

    UNUSED: ClassVar[tuple[str, ...]] = ("sensor_sparsity", "scheme", "keep_set", "qr_modes", "rounds", "round_steps",
                                         "mask_steps", "regrow_fraction", "mask_lr", "mask_l1")

    max_increase: float = option(0.03, "the error budget: largest relative increase of the validation error over the "
                                 "dense model's (0.03 = at most 3% worse); the plan keeps the largest sensor sparsity "
                                 "whose validation error (its upper --confidence bound) stays at or under (1 + this) x "
                                 "dense", gt=0, le=10)
    metric: Literal[PLAN_METRICS] = option("mae", "the validation error the budget is on: mae, rmse or mse (over the "
                                           "horizon, physical units)")
    confidence: float = option(0.95, "check the budget on this upper confidence bound of a keep-set's validation error "
                               "(moving-block bootstrap of its error ratio to the dense model over the validation windows): "
                               "a short validation split then accepts fewer switched-off sensors; 0 checks the validation "
                               "error itself, in [0, 1)", ge=0, lt=1)
    checkpoint_step: float = option(0.05, "sensor sparsity added between two checkpoints of the search, in (0, 1)", gt=0, lt=1)
    checkpoint_finetune_epochs: int = option(3, "epochs of the short fine-tuning of each candidate keep-set (the "
                                             "search's and QR's) at a checkpoint, before its validation error is "
                                             "measured", ge=1)
    checkpoint_start: Literal["previous", "dense"] = option(
        "previous", "what each checkpoint's short fine-tuning starts from: previous (the model the previous checkpoint "
        "fine-tuned for the same chain, the search's or QR's, so the network adapts as sensors go, as in DynST's "
        "rounds) or dense (the dense weights every time); the full fine-tunings always start from the dense weights")
    reference: Literal["finetuned", "dense"] = option(
        "finetuned", "what the budget is relative to: finetuned (the dense model fine-tuned with every sensor for "
        "--finetune-epochs on the candidates' schedule, so it has the same training after the dense model as each "
        "pruned candidate's full fine-tuning; one more fine-tuning) or dense (the dense model as trained)")
    max_sparsity: float = option(0.95, "stop the search at this sensor sparsity even within budget, in (0, 1)", gt=0, lt=1)
    compress: bool = option(False, "grid data: then apply Dyna-Pruner (sparsest compress) to the kept-sensor model: "
                            "its inputs are the kept sensors only, it starts from the plan's weights, and the run "
                            "reports sensors off, GFLOPs and latency against the dense model, and the accuracy cost "
                            "of all together")
    compress_options: dict[str, Any] = option(help="options of the --compress run as a YAML mapping, e.g. "
                                              "'{data_sparsity: 0.8, reading: tiles, epochs: 8}' (see sparsest "
                                              "compress --help; the shared options come from the plan) [default: "
                                              "epochs = --finetune-epochs, loss = mae for --metric mae else mse]",
                                              default_factory=dict)

    def check(self) -> "PlanConfig":
        """``run``'s checks, plus: a first checkpoint at or under ``max_sparsity``, one device
        (the plan decides after every checkpoint, on one process). Raises ConfigError."""
        super().check()
        if self.checkpoint_step > self.max_sparsity + 1e-9:
            raise ConfigError(f"--checkpoint-step {self.checkpoint_step:g}: larger than --max-sparsity "
                              f"{self.max_sparsity:g}, so the search would have no checkpoint")
        if self.sample_pruning != "none" and self.dense_checkpoint:
            raise ConfigError(f"--sample-pruning {self.sample_pruning} with --dense-checkpoint: the dense model would be "
                              "loaded, not trained, so there would be no training time to save; drop one of them")
        if self.devices != 1 or self.strategy not in ("auto", "single_device"):
            raise ConfigError(f"--devices {self.devices} / --strategy {self.strategy}: sparsest plan trains on one device "
                              "(it decides after every checkpoint); use --devices 1 --strategy auto")
        if self.compress_options and not self.compress:
            raise ConfigError("--compress-options: only with --compress (it configures the Dyna-Pruner run after the plan)")
        if self.compress:
            compress_config(self)
        return self


def compress_config(plan: PlanConfig):
    """The :class:`~sparsest.methods.dynapruner.config.CompressConfig` of ``plan --compress``:
    the shared options (data, window, horizon, patch size, backbone, batch size, learning
    rate, seed, devices, ...) and ``bench_repeats`` from the plan; ``epochs`` defaults to the
    plan's final fine-tuning (``finetune_epochs``, else ``epochs``) and ``loss`` to the
    budget's metric family (``mae`` for ``--metric mae``, else ``mse``); everything else
    from ``compress_options`` or compress's defaults.

    Raises:
        ConfigError: a ``compress_options`` key that is not a Dyna-Pruner option (a shared
            one comes from the plan), or any compress option error (named
            ``--compress-options: KEY``).
    """
    from ..dynapruner.config import CompressConfig

    shared = set(fields_of(CommonOptions))
    own = set(fields_of(CompressConfig)) - shared | {"epochs"}
    for key in plan.compress_options:
        k = str(key).replace("-", "_")
        if k in shared and k != "epochs":
            raise ConfigError(f"--compress-options {key}: a shared option, taken from the plan's own --{k.replace('_', '-')}")
        if k not in own:
            raise ConfigError(f"--compress-options {key}: not an option of sparsest compress; known: {', '.join(sorted(own))}")
    base = {k: getattr(plan, k) for k in fields_of(CompressConfig) if k in shared}
    base.update(epochs=plan.finetune_epochs or plan.epochs, loss="mae" if plan.metric == "mae" else "mse",
                bench_repeats=plan.bench_repeats)
    return build_options(CompressConfig, ("plan", base), ("--compress-options", dict(plan.compress_options)))


__all__ = ["PlanConfig", "PLAN_METRICS", "compress_config"]
