"""Baselines of Dyna-Pruner's Table I, through the same gating code: MP (static L1-norm
filter pruning at matched FLOPs) and the robustness evaluation of Table II.

MP follows Li et al. / Kumar et al. (paper ref. [14]): in every prunable layer remove the
``ratio`` fraction of units with the smallest L1 norm, then fine-tune. Units are those of
Dyna-Pruner (:class:`~.gating.GatedConv2d`): the input channels of a dense convolution
(scored by the L1 norm of all weights that read the channel, i.e. the channel's share of
the layer, as Torch-Pruning's group L1 importance scores consumers) and the filters of a
depthwise one; the ratio is chosen so MP's FLOPs match Dyna-Pruner's average per-sample
FLOPs (:func:`match_flops_ratio`). The issue asks for Torch-Pruning;
:func:`torch_pruning_error` tries its ``DependencyGraph`` on the backbone and reports why it
fails. With torch-pruning 1.6.1 it fails on all three grid backbones here: SimVP and TAU
(``ZeroDivisionError`` in ``get_pruning_group``; presumably the ``[B*T, C, h, w] ->
[B, T*C, h, w]`` reshape between encoder and translator, which mixes frame and channel axes)
and ConvLSTM (``TypeError`` in ``update_index_mapping``; presumably the cell, which
concatenates input and hidden state and reuses one conv across time steps). The reason
found for each run is stored in ``metrics.json`` (``mp.torch_pruning_error``). MP is therefore cut with our own code: the removed units are never
computed (sliced weights, :class:`~.gating.GatedConv2d` ``keep``), the same engine as
Dyna-Pruner's static compact model, so latency comparisons are like for like.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from ...efficiency import count_flops
from ...metrics import HorizonMetrics
from .gating import attach_gates, find_prunable_convs


def l1_filter_prune(backbone: nn.Module, ratio: float, min_channels: int = 8) -> nn.Module:
    """A copy of ``backbone`` with the ``ratio`` fraction of each prunable layer's units
    (smallest L1 norm; see the module doc) removed for good (MP baseline).

    Args:
        backbone: grid forecaster (not modified).
        ratio: fraction of filters removed per layer, in [0, 1); each layer keeps >= 1.
        min_channels: as :func:`~.gating.find_prunable_convs`.

    Raises:
        ValueError: ratio outside [0, 1).
    """
    model = copy.deepcopy(backbone)
    l1_prune_gates(attach_gates(model, find_prunable_convs(model, min_channels)), ratio)
    return model


def l1_prune_gates(gates: list, ratio: float) -> list[int]:
    """Static L1-norm pruning of already attached gates (in place): each
    :class:`~.gating.GatedConv2d` keeps the ``1 - ratio`` fraction of its units with the
    largest L1 norm (at least one) in its ``keep`` buffer, so the others are never computed.

    This is MP's selection (:func:`l1_filter_prune`) on gates that belong to another model,
    e.g. a :class:`~.wrapper.DynaPruner` without gating: the "independent DP + MP" row of
    the paper's Table IV (data mask from the generator, channels chosen by weight norm, not
    by the importance map S).

    Args:
        gates: the gates to prune (e.g. ``DynaPruner.gates``).
        ratio: fraction of each gate's units removed, in [0, 1).

    Returns:
        units kept per gate.

    Raises:
        ValueError: ratio outside [0, 1).
    """
    if not 0 <= ratio < 1:
        raise ValueError(f"ratio must be in [0, 1), got {ratio}")
    kept = []
    for g in gates:
        l1 = g.unit_weights().detach().abs().flatten(1).sum(1)
        n_keep = max(1, int(round((1 - ratio) * g.n_units)))
        g.keep = l1.topk(n_keep).indices.sort().values
        kept.append(n_keep)
    return kept


def match_flops_ratio(backbone: nn.Module, x: torch.Tensor, target_flops: float, min_channels: int = 8, iters: int = 14) -> float:
    """Pruning ratio whose :func:`l1_filter_prune` model costs ``target_flops`` on input
    ``x`` (bisection on :func:`sparsest.efficiency.count_flops`)."""
    def flops(r):
        m = l1_filter_prune(backbone, r, min_channels).eval()
        return count_flops(lambda: m(x))

    lo, hi = 0.0, 0.99
    for _ in range(iters):
        mid = (lo + hi) / 2
        if flops(mid) > target_flops:
            lo = mid
        else:
            hi = mid
    return min((lo, hi), key=lambda r: abs(flops(r) - target_flops))  # channel counts are integers


def torch_pruning_error(backbone: nn.Module, x: torch.Tensor) -> str | None:
    """Try Torch-Pruning's L1 ``MagnitudePruner`` on a copy of ``backbone``; ``None`` if it
    builds, prunes and runs, else the one-line reason it cannot handle the backbone."""
    try:
        import torch_pruning as tp
    except ImportError as e:  # pragma: no cover - dependency declared in pyproject
        return f"torch-pruning not installed ({e})"
    import warnings

    model = copy.deepcopy(backbone).eval()
    last = [m for m in model.modules() if isinstance(m, nn.Conv2d)][-1]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pruner = tp.pruner.MagnitudePruner(model, example_inputs=(x,), importance=tp.importance.MagnitudeImportance(p=1),
                                               pruning_ratio=0.5, ignored_layers=[last])
            pruner.step()
            model(x)
    except Exception as e:  # noqa: BLE001 - any failure means "cannot handle"
        return f"{type(e).__name__}: {str(e).splitlines()[0][:160] if str(e) else ''}".rstrip(": ")
    return None


@torch.no_grad()
def evaluate_perturbed(model: nn.Module, loader, scaler, horizon: int, noise_sigma: float = 0.0, mask_failure: float = 0.0, seed: int = 0) -> dict:
    """Test metrics (physical units) under Gaussian input noise and / or mask failure
    (Dyna-Pruner Table II).

    Args:
        model: ``forward(x, tod, dow)`` in scaled units; for mask failure a
            :class:`~.wrapper.DynaPruner` (its ``mask_failure`` is set for the call).
        noise_sigma: std of Gaussian noise added to the scaled input ``x``.
        mask_failure: fraction of kept data-mask entries flipped to pruned, per sample.
        seed: seeds the noise and the flips (same perturbation for every model).

    Returns:
        :meth:`sparsest.metrics.HorizonMetrics.compute` of the whole loader.

    Raises:
        ValueError: ``mask_failure > 0`` for a model without a data mask.
    """
    if mask_failure > 0 and not hasattr(model, "mask_failure"):
        raise ValueError("mask failure needs a model with a data mask (DynaPruner)")
    g = torch.Generator().manual_seed(seed)
    was = model.training
    model.eval()
    meter = HorizonMetrics(horizon)
    if mask_failure > 0:
        model.mask_failure, model.failure_generator = mask_failure, torch.Generator().manual_seed(seed + 1)
    try:
        for batch in loader:
            x = batch["x"]
            if noise_sigma > 0:
                x = x + noise_sigma * torch.randn(x.shape, generator=g)
            meter.update(scaler.physical(model(x, batch["tod"], batch["dow"])), batch["y"], batch["y_mask"])
    finally:
        if mask_failure > 0:
            model.mask_failure, model.failure_generator = 0.0, None
        model.train(was)
    return meter.compute()


__all__ = ["l1_filter_prune", "l1_prune_gates", "match_flops_ratio", "torch_pruning_error", "evaluate_perturbed"]
