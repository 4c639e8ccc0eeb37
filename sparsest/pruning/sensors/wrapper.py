"""Attach a per-sensor mask to any backbone without editing it."""

from __future__ import annotations

import torch
from torch import nn

from .layout import SensorLayout


class KeptToAllPropagation(nn.Module):
    """One learned propagation step from kept sensors' forecasts to switched-off ones.

    ``y'_i = y_i`` for kept sensors; for a switched-off sensor
    ``y'_i = a_i * y_i + sum_{j kept, j != i} W_ij * y_j + b_i``, where ``y_i`` is the
    backbone's own forecast there (from identity / time embeddings and its zeroed input, a
    mask token, or 0 for graph backbones run on the kept subgraph). ``W`` and ``b`` start at
    0 and ``a`` at 1, so before training the layer is the identity. This is our addition
    for backbones without cross-node mixing (STID): the issue's "one propagation step that
    maps kept nodes to all nodes"; a kriging-like linear read-out.

    On grids the sensors are p x p patches: pixel (r, c) of a switched-off patch takes
    ``a_i`` times its own forecast plus ``sum_j W_ij`` times the pixel at the same offset
    (r, c) of each kept patch j, plus ``b_i``.

    Args:
        n_nodes: N_s, the number of sensors.
        layout: the :class:`SensorLayout` (``None`` = graph).

    Shapes: graph ``y`` ``[B, S, N, C]``, grid ``y`` ``[B, S, C, H, W]``; ``keep`` ``[N_s]``
    bool; output shaped like ``y``.
    """

    def __init__(self, n_nodes: int, layout: SensorLayout | None = None):
        super().__init__()
        self.grid = layout is not None and layout.kind == "grid"
        if self.grid:
            self.p = layout.patch_size
            self.patches = layout.patches
        self.weight = nn.Parameter(torch.zeros(n_nodes, n_nodes))
        self.self_weight = nn.Parameter(torch.ones(n_nodes))
        self.bias = nn.Parameter(torch.zeros(n_nodes))

    def _mix(self, y: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        """Graph layout ``[B, S, N, C]``: switched-off rows from kept rows.

        Only the ``N_off x K`` block of ``W`` is used, so the cost is ``N_off * K`` per column.
        """
        off = torch.nonzero(~keep).flatten()
        kept = torch.nonzero(keep).flatten()
        w = self.weight.index_select(0, off).index_select(1, kept)  # [N_off, K]
        prop = torch.einsum("ok,bskc->bsoc", w, y.index_select(2, kept))
        y_off = self.self_weight[off, None] * y.index_select(2, off) + prop + self.bias[off, None]
        return y.index_copy(2, off, y_off)

    def mix_tokens(self, tokens: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        """The same step on patch tokens ``[B, N_s, P]`` (P = all pixels of a patch over
        steps and channels, one layout for every patch), for backbones that forecast in patch
        space (ViT): no re-patchify of the field."""
        if bool(keep.all()):
            return tokens
        return self._mix(tokens.unsqueeze(1), keep).squeeze(1)  # patches as nodes

    def forward(self, y: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        if bool(keep.all()):
            return y
        if not self.grid:
            return self._mix(y, keep)
        B, S, C, H, W = y.shape
        p, (hp, wp) = self.p, self.patches
        yp = nn.functional.pad(y, (0, wp * p - W, 0, hp * p - H))  # [B, S, C, hp*p, wp*p]
        yp = yp.view(B, S, C, hp, p, wp, p).permute(0, 1, 2, 4, 6, 3, 5).reshape(B, S * C * p * p, hp * wp, 1)
        yp = self._mix(yp, keep)  # patches as nodes, (step, channel, offset) as batch
        yp = yp.view(B, S, C, p, p, hp, wp).permute(0, 1, 2, 5, 3, 6, 4).reshape(B, S, C, hp * p, wp * p)
        return yp[..., :H, :W]


class SensorMaskedForecaster(nn.Module):
    """A backbone fed ``x * (k * m)``: DynST's parameterised sensor mask (Sec. 5.1-5.2).

    ``m`` (:attr:`scores`, real, ``[N_s]``, initialised to 1) scores each sensor and is
    trained only in mask phases; ``k`` (:attr:`keep`, bool buffer ``[N_s]``) switches
    sensors off. The product broadcasts over time steps and channels (graph) or over the
    pixels of each patch (grid), so one score is shared by all samples and times.

    ``propagate`` (default on) adds :class:`KeptToAllPropagation` on the
    output so switched-off sensors are forecast from kept ones even by backbones without
    cross-node mixing; it is the identity while all sensors are kept.

    ``mask_l1`` weighs the L1 pull on kept scores while they train (see :meth:`penalty`).

    While :attr:`track_grad` is True and ``m`` requires grad, the magnitude of the gradient
    of the loss w.r.t. the effective mask ``k * m`` is summed into :attr:`grad_acc`; it is
    defined for switched-off sensors too and drives drop / regrow (Eqs. 5-6).

    Shapes:
        graph ``x`` ``[B, T, N, C]`` -> ``[B, S, N, C]``;
        grid ``x`` ``[B, T, C, H, W]`` -> ``[B, S, C, H, W]``.

    Note: masking alone saves no compute; it decides *which* sensors may be switched off.
    With :attr:`subset` True and a backbone that has ``forward_subset`` (token and graph
    backbones), the backbone runs on the kept sensors only: graph inputs are gathered to
    ``[B, T, K, C]``; grid backbones receive the masked input and the kept patch indices.
    """

    def __init__(self, backbone: nn.Module, layout: SensorLayout, mask_l1: float = 0.0, propagate: bool = True,
                 mask_lr: float = 0.05):
        super().__init__()
        self.mask_l1 = mask_l1
        self.mask_lr = mask_lr
        self.propagation = KeptToAllPropagation(layout.n_sensors, layout) if propagate else None
        self.backbone = backbone
        self.layout = layout
        n = layout.n_sensors
        self.scores = nn.Parameter(torch.ones(n))
        self.register_buffer("keep", torch.ones(n, dtype=torch.bool))
        self.register_buffer("grad_acc", torch.zeros(n))
        self.track_grad = False
        self.subset = False

    @property
    def runs_subset(self) -> bool:
        """True when forward runs the backbone on kept sensors only (real compute saving)."""
        return self.subset and getattr(self.backbone, "supports_subset", False)

    @property
    def n_sensors(self) -> int:
        return self.layout.n_sensors

    @property
    def sparsity(self) -> float:
        """Fraction of sensors currently switched off."""
        return 1.0 - float(self.keep.float().mean())

    def effective_mask(self) -> torch.Tensor:
        """``k * m``, shape ``[N_s]``."""
        return self.keep.to(self.scores.dtype) * self.scores

    def penalty(self) -> torch.Tensor:
        """``mask_l1 * mean(|m|)`` over kept sensors while the scores train, else 0.

        Our addition to Eq. 3: without a pull towards 0, the scores of sensors the loss does
        not care about stay near their initial value and |m| does not rank them.
        """
        if not self.scores.requires_grad or self.mask_l1 == 0:
            return self.scores.new_zeros(())
        return self.mask_l1 * self.scores[self.keep].abs().mean()

    def param_groups(self, lr: float, weight_decay: float) -> list[dict]:
        """AdamW groups: the network at ``lr`` / ``weight_decay``, the sensor scores at
        ``mask_lr`` without weight decay (the engine's optimiser hook)."""
        net = [p for n, p in self.named_parameters() if n != "scores"]
        return [{"params": net, "lr": lr, "weight_decay": weight_decay},
                {"params": [self.scores], "lr": self.mask_lr, "weight_decay": 0.0}]

    def _accumulate(self, grad: torch.Tensor) -> None:
        self.grad_acc += grad.detach().abs()

    def forward(self, x: torch.Tensor, tod: torch.Tensor | None = None, dow: torch.Tensor | None = None):
        eff = self.effective_mask()
        if self.runs_subset:
            idx = torch.nonzero(self.keep).flatten()
            if self.layout.kind == "graph":
                x_kept = x.index_select(2, idx) * eff[idx][:, None]  # [B, T, K, C]
                y = self.backbone.forward_subset(x_kept, idx, tod, dow)
            elif self.propagation is not None and getattr(self.backbone, "propagates_in_patch_space", False):
                return self.backbone.forward_subset(x * self.layout.expand(eff), idx, tod, dow, propagation=self.propagation)
            else:
                y = self.backbone.forward_subset(x * self.layout.expand(eff), idx, tod, dow)
        else:
            if self.track_grad and eff.requires_grad:
                eff.register_hook(self._accumulate)
            y = self.backbone(x * self.layout.expand(eff), tod, dow)
        if self.propagation is not None:
            y = self.propagation(y, self.keep)
        return y
