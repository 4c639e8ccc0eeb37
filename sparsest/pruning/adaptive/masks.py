"""The importance map, the hard data mask and the filter masks of Dyna-Pruner, as pure
tensor functions plus the small mask-generator network.

Source: Zhang et al., "Dyna-Pruner: Input-Adaptive Data-Model Co-Pruning for Efficient and
Scalable Spatio-Temporal Media Prediction", arXiv:2606.15346: Eq. 3 (``S = g(X; phi)``),
Sec. III-C2 (hard masks trained with a straight-through estimator, STE; filter importance
aggregated from S over a unit's receptive field; learnable threshold tau), Eq. 2 (the
sparsity constraints). Our reading is in ``../shared/design/METHODS.md`` section 2; the
choices below are ours where the paper is silent and are marked "ours".
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class MaskGenerator(nn.Module):
    """Lightweight mask generator ``g(X; phi)`` (Eq. 3): time-stacked input -> importance map.

    Ours: two 3x3 convolutions (the first with stride 2) with GELU, a 1x1 convolution to one
    channel, bilinear upsampling back to H x W, sigmoid. About 3.4 MFLOPs per sample on a
    33 x 49 grid with T*C = 12 (under 1% of the backbones it gates).

    Args:
        in_channels: T * C (input frames stacked on the channel axis).
        hidden: channels of the two hidden convolutions.

    Shapes:
        x: ``[B, T, C, H, W]`` (scaled units) -> S ``[B, H, W]`` in (0, 1).
    """

    def __init__(self, in_channels: int, hidden: int = 16):
        super().__init__()
        self.net = nn.Sequential(  # replicate padding: a zero border would rank the frame's edge apart
            nn.Conv2d(in_channels, hidden, 3, stride=2, padding=1, padding_mode="replicate"),
            nn.GELU(),
            nn.Conv2d(hidden, hidden, 3, padding=1, padding_mode="replicate"),
            nn.GELU(),
            nn.Conv2d(hidden, 1, 1),
        )
        nn.init.zeros_(self.net[-1].weight)  # start from S = 0.5 everywhere
        nn.init.zeros_(self.net[-1].bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C, H, W = x.shape
        logits = self.net(x.reshape(B, T * C, H, W))  # [B, 1, ceil(H/2), ceil(W/2)]
        logits = F.interpolate(logits, size=(H, W), mode="bilinear", align_corners=False)
        return torch.sigmoid(logits[:, 0])  # [B, H, W]


def topk_ste(scores: torch.Tensor, keep: int) -> torch.Tensor:
    """Hard top-``keep`` mask of each sample's scores with a straight-through gradient.

    Forward: 1 on the ``keep`` largest entries of each sample, 0 elsewhere. Backward: the
    gradient of ``scores`` itself (STE, Sec. III-C2: "binarize S into a hard mask, simulated
    during training using the STE"), so the data mask trains the generator as the soft mask
    ``X * S`` would.

    Args:
        scores: ``[B, ...]`` importance scores (S, ``[B, H, W]``).
        keep: entries kept per sample, ``1 <= keep <= numel / B``.

    Returns:
        ``[B, ...]`` float mask (values exactly 0 or 1 in the forward pass).
    """
    flat = scores.flatten(1)
    idx = flat.topk(keep, dim=1).indices
    hard = torch.zeros_like(flat).scatter_(1, idx, 1.0).view_as(scores)
    return hard + (scores - scores.detach())  # exactly 0 or 1 forward


def threshold_ste(importance: torch.Tensor, tau: torch.Tensor, temperature: float) -> torch.Tensor:
    """Filter mask ``1[I > tau]`` with a sigmoid straight-through gradient.

    Forward: hard 0/1. Backward: the gradient of ``sigmoid((I - tau) / temperature)``, so
    both the importance ``I`` (hence the generator) and the learnable threshold ``tau``
    receive gradients (Sec. III-C2: "units with importance scores below a learnable
    threshold tau are pruned").

    Args:
        importance: ``[B, K]`` unit importances I.
        tau: ``[K]`` (or broadcastable) thresholds.
        temperature: sigmoid temperature (> 0), in units of I.
    """
    soft = torch.sigmoid((importance - tau) / temperature)
    hard = (importance > tau).to(soft.dtype)
    return hard + (soft - soft.detach())  # exactly 0 or 1 forward


def soft_topk(scores: torch.Tensor, keep: int, scale: float | None) -> torch.Tensor:
    """Soft-to-hard top-``keep`` mask of each sample's scores (the paper's soft data mask,
    Sec. III-D1, annealed to its hard mask; METHODS.md section 2).

    Each sample's scores are standardised (``z``) and ``theta`` is the midpoint between its
    ``keep``-th and ``keep + 1``-th largest ``z``. Soft (``scale`` a float):
    ``sigmoid((z - theta) / scale)``, so the mask is centred on the budget and sharpens as
    ``scale`` anneals (1 -> 0.1 in the schedule of :class:`~.wrapper.DynaPruner`). Hard
    (``scale=None``): exactly 1 on the ``keep`` largest entries, 0 elsewhere, with the
    gradient of ``sigmoid((z - theta) / 0.1)`` (straight-through; continuous with the end of
    the anneal).

    Args:
        scores: ``[B, ...]`` importance scores (S ``[B, H, W]`` or tile scores ``[B, rows, cols]``).
        keep: entries kept per sample, ``1 <= keep <= numel / B``.
        scale: temperature in units of the scores' standard deviation, or None (hard).

    Returns:
        ``[B, ...]`` mask in [0, 1].
    """
    flat = scores.flatten(1)
    n = flat.shape[1]
    z = (flat - flat.mean(1, keepdim=True)) / flat.std(1, keepdim=True).clamp_min(1e-6) if n > 1 else flat * 0
    top = z.topk(min(keep + 1, n), dim=1).values
    theta = (top[:, keep - 1] + top[:, keep]) / 2 if keep < n else top[:, -1] - 1.0
    soft = torch.sigmoid((z - theta[:, None]) / (0.1 if scale is None else scale))
    if scale is not None:
        return soft.view_as(scores)
    hard = torch.zeros_like(flat).scatter_(1, z.topk(keep, dim=1).indices, 1.0)
    return (hard + (soft - soft.detach())).view_as(scores)


def soft_threshold(importance: torch.Tensor, tau: torch.Tensor, temperature: float, scale: float | None) -> torch.Tensor:
    """Soft-to-hard unit mask ``1[I > tau]``: ``sigmoid((I - tau) / (10 * temperature *
    scale))`` while soft (``scale`` from 1 to 0.1 in the schedule), then
    :func:`threshold_ste` (hard forward, the gradient of the sigmoid at ``temperature``,
    continuous with the end of the anneal).

    Shapes: ``importance`` ``[B, K]``, ``tau`` broadcastable -> ``[B, K]``.
    """
    if scale is None:
        return threshold_ste(importance, tau, temperature)
    return torch.sigmoid((importance - tau) / (10 * temperature * scale))


def warm_start_generator(generator: nn.Module, batches, steps: int = 100, lr: float = 1e-2) -> float:
    """Pre-train a mask generator alone so S starts where the future changes (ours; the
    paper's Fig. 3 reading: S aligns with the magnitude of the future change). Target per
    pixel: ``max_s |y_s - x_T|`` (scaled units, observed entries) divided by its largest value
    in the sample, so ``t`` is in [0, 1]; loss: binary cross-entropy of S against t, balanced
    between the pixels that change (``t > 0.05``) and the rest (on a rain frame the few
    changing pixels would otherwise be outweighed and S would sink to 0 everywhere). Without
    it S starts flat (0.5 everywhere) and the first hard masks are arbitrary. Only the
    generator's weights change.

    Args:
        generator: :class:`MaskGenerator`, ``[B, T, C, H, W]`` -> S ``[B, H, W]``.
        batches: a list (re-iterated as needed) of batch dicts with ``x`` (scaled
            ``[B, T, C, H, W]``), ``y_scaled`` ``[B, S, C, H, W]`` and ``y_mask`` (bool, same shape).
        steps: optimiser steps (Adam).
        lr: learning rate.

    Returns:
        the last step's loss.
    """
    opt = torch.optim.Adam(generator.parameters(), lr=lr)
    was = generator.training
    generator.train()
    loss, done = torch.zeros(()), 0
    while done < steps and batches:
        for b in batches:
            change = ((b["y_scaled"] - b["x"][:, -1:]).abs() * b["y_mask"].to(b["x"].dtype)).amax(dim=(1, 2))  # [B, H, W]
            target = change / change.flatten(1).amax(1).clamp_min(1e-6)[:, None, None]
            pos = target > 0.05  # where something changes; usually a few % of a rain frame
            frac = pos.flatten(1).float().mean(1).clamp(1e-3, 1 - 1e-3)[:, None, None]
            weight = torch.where(pos, 0.5 / frac, 0.5 / (1 - frac))  # balanced: S ranks changing pixels first
            loss = F.binary_cross_entropy(generator(b["x"]).clamp(1e-6, 1 - 1e-6), target, weight=weight)
            opt.zero_grad()
            loss.backward()
            opt.step()
            done += 1
            if done >= steps:
                break
    generator.train(was)
    return float(loss.detach())


def apply_data_mask(x: torch.Tensor, mask: torch.Tensor, fill: str = "last") -> torch.Tensor:
    """Prune input locations: what the backbone sees at masked-out pixels.

    - ``fill="zero"``: the paper's ``X * M_data`` (Eq. 1); 0 is the training mean in scaled
      units.
    - ``fill="last"`` (ours, default): a pruned pixel's whole history is replaced by its
      last observed value, ``x_T + M * (x - x_T)``. The network then reads no temporal
      information there ("calm region: persistence"), only the current state; the grid
      backbones here forecast the change from the last frame, and with ``"zero"`` they would
      first have to in-paint 70% of the field. The importance map then ranks pixels by how
      much their dynamics matter, which is the paper's Fig. 3 reading (S aligns with the
      future change).

    Args:
        x: ``[B, T, C, H, W]`` scaled input.
        mask: ``[B, H, W]`` data mask (1 = keep).
        fill: ``"last"`` or ``"zero"``.

    Raises:
        ValueError: unknown ``fill``.
    """
    m = mask[:, None, None]  # [B, 1, 1, H, W]
    if fill == "zero":
        return x * m
    if fill == "last":
        last = x[:, -1:]
        return last + m * (x - last)
    raise ValueError(f"fill must be 'last' or 'zero', got {fill!r}")


def region_scores(scores: torch.Tensor, regions: tuple[int, int]) -> torch.Tensor:
    """Mean of S over each cell of a ``regions`` grid (adaptive average pooling).

    Shapes: ``[B, H, W]`` -> ``[B, R]`` with ``R = regions[0] * regions[1]``.
    """
    return F.adaptive_avg_pool2d(scores[:, None], regions).flatten(1)


def flip_important(mask: torch.Tensor, fraction: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Simulated mask failure (Table II): per sample, switch ``fraction`` of the kept
    (important) entries of a hard data mask to pruned, chosen uniformly at random.

    Shapes: ``[B, H, W]`` -> ``[B, H, W]`` (a new tensor; gradients are not kept).
    """
    flat = mask.detach().flatten(1).clone()
    for b in range(flat.shape[0]):
        on = torch.nonzero(flat[b] > 0.5).squeeze(1)
        n = int(round(fraction * on.numel()))
        if n:
            pick = on[torch.randperm(on.numel(), generator=generator)[:n]]
            flat[b, pick] = 0.0
    return flat.view_as(mask)


__all__ = ["MaskGenerator", "topk_ste", "threshold_ste", "soft_topk", "soft_threshold", "warm_start_generator", "apply_data_mask", "region_scores", "flip_important"]
