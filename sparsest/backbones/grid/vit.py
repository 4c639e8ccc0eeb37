"""ViT over space-time patches with a dense prediction head, and a kept-patches-only path.

Dosovitskiy et al., "An Image is Worth 16x16 Words: Transformers for Image Recognition at
Scale", ICLR 2021 (arXiv:2010.11929); dense head after Ranftl et al., "Vision Transformers
for Dense Prediction", ICCV 2021 (arXiv:2103.13413).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..layers import SelfAttention
from ..registry import DataSpec, register_backbone


class Block(nn.Module):
    """Pre-norm transformer block: ``x + Attn(LN(x))``, then ``x + MLP(LN(x))`` (GELU MLP).

    Args:
        dim: token width D.
        heads: attention heads.
        mlp_ratio: MLP hidden width / D.

    Shapes:
        ``[B, N, D]`` -> ``[B, N, D]``.
    """

    def __init__(self, dim: int, heads: int, mlp_ratio: float = 4.0):
        super().__init__()
        hidden = int(dim * mlp_ratio)
        self.norm1 = nn.LayerNorm(dim)
        self.attn = SelfAttention(dim, heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class ViT(nn.Module):
    """ViT forecaster over space-time patch tokens (Dosovitskiy et al., ICLR 2021,
    arXiv:2010.11929) with a per-token dense head (Ranftl et al., ICCV 2021,
    arXiv:2103.13413).

    The H x W field is zero-padded at the bottom / right to multiples of p and cut into
    ``Hp x Wp`` patches (``Hp = ceil(H / p)``, ``Wp = ceil(W / p)``), numbered in row-major
    order exactly like the grid sensors of :class:`sparsest.pruning.sensors.layout.SensorLayout`
    (patch j covers rows ``(j // Wp) * p ...`` and columns ``(j % Wp) * p ...``). Each token
    embeds all T steps and C channels of its p x p pixels (DynST's stream morph):
    ``Linear(T * C * p * p -> D)`` plus a learned positional embedding per patch. ``depth``
    pre-norm transformer blocks encode the tokens; ``decoder_depth`` further blocks (default
    0) may run on the full token grid; a LayerNorm + ``Linear(D -> S * C * p * p)`` head
    turns every token into its patch's S future frames, which are un-patchified and cropped
    back to H x W.

    Switched-off sensors (:meth:`forward_subset`, ``supports_subset = True``): only the K
    kept patch tokens are embedded and run through the encoder, so the encoder cost scales
    with K (attention with K^2) instead of N = Hp * Wp; the switched-off positions are then
    filled with a learned :attr:`mask_token` plus their positional embedding (as in MAE),
    the decoder blocks (if any, cost in N) and the head run on all N tokens. With every
    patch kept, ``forward_subset`` equals ``forward``. Note that ``forward`` on an input
    whose switched-off patches are zeroed (the sensor-mask wrapper) still encodes those
    patches as tokens, so it differs from ``forward_subset``; fine-tune with the path you
    deploy.

    Our addition: with ``residual=True`` (default) the model predicts the change from the
    last input frame, which makes short training on small data sets stable. In
    :meth:`forward_subset` the last frame is added only on kept patches (switched-off pixels
    get 0, as their zeroed input would give), so the output never reads switched-off input.

    Args:
        input_size: C.
        window: T.
        horizon: S.
        height, width: H, W of the field (fixed: they size the positional embedding).
        patch_size: p, patch side (the sensors' patch size, ``spec.patch_size``).
        hidden_size: token width D.
        depth: encoder transformer blocks.
        n_heads: attention heads.
        mlp_ratio: MLP hidden width / D.
        decoder_depth: transformer blocks on the full token grid after the mask tokens are
            filled in (our addition; lets switched-off positions attend to kept ones).
        residual: add the last input frame to the output.

    Shapes:
        x: ``[B, T, C, H, W]`` -> ``[B, S, C, H, W]`` (H, W need not be multiples of p).
        ``tod`` / ``dow`` are ignored.
    """

    supports_subset = True

    def __init__(
        self,
        input_size: int,
        window: int,
        horizon: int,
        height: int,
        width: int,
        patch_size: int = 4,
        hidden_size: int = 64,
        depth: int = 4,
        n_heads: int = 4,
        mlp_ratio: float = 4.0,
        decoder_depth: int = 0,
        residual: bool = True,
    ):
        super().__init__()
        p = patch_size
        self.input_size, self.window, self.horizon = input_size, window, horizon
        self.height, self.width, self.patch_size, self.residual = height, width, p, residual
        self.patches = (math.ceil(height / p), math.ceil(width / p))
        self.n_patches = self.patches[0] * self.patches[1]
        self.embed = nn.Linear(window * input_size * p * p, hidden_size)
        self.pos_embed = nn.Parameter(torch.zeros(1, self.n_patches, hidden_size))
        self.mask_token = nn.Parameter(torch.zeros(1, 1, hidden_size))
        self.blocks = nn.ModuleList([Block(hidden_size, n_heads, mlp_ratio) for _ in range(depth)])
        self.decoder_blocks = nn.ModuleList([Block(hidden_size, n_heads, mlp_ratio) for _ in range(decoder_depth)])
        self.norm = nn.LayerNorm(hidden_size)
        self.head = nn.Linear(hidden_size, horizon * input_size * p * p)
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.trunc_normal_(self.mask_token, std=0.02)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)

    def _patchify(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, T, C, H, W]`` -> ``[B, N, T * C * p * p]`` (zero-padded to whole patches)."""
        B, T, C, H, W = x.shape
        if (H, W) != (self.height, self.width):
            raise ValueError(f"ViT built for {self.height}x{self.width} fields, got {H}x{W}")
        p, (Hp, Wp) = self.patch_size, self.patches
        x = F.pad(x, (0, Wp * p - W, 0, Hp * p - H))
        x = x.reshape(B, T, C, Hp, p, Wp, p).permute(0, 3, 5, 1, 2, 4, 6)
        return x.reshape(B, Hp * Wp, T * C * p * p)

    def _unpatchify(self, y: torch.Tensor) -> torch.Tensor:
        """``[B, N, S * C * p * p]`` -> ``[B, S, C, H, W]`` (cropped)."""
        B = y.shape[0]
        p, (Hp, Wp) = self.patch_size, self.patches
        y = y.reshape(B, Hp, Wp, self.horizon, self.input_size, p, p).permute(0, 3, 4, 1, 5, 2, 6)
        y = y.reshape(B, self.horizon, self.input_size, Hp * p, Wp * p)
        return y[..., : self.height, : self.width]

    def _head(self, h: torch.Tensor) -> torch.Tensor:
        for blk in self.decoder_blocks:
            h = blk(h)
        return self._unpatchify(self.head(self.norm(h)))

    def forward(self, x: torch.Tensor, tod=None, dow=None) -> torch.Tensor:
        h = self.embed(self._patchify(x)) + self.pos_embed
        for blk in self.blocks:
            h = blk(h)
        # + 0 * mask_token: every parameter gets a (zero) gradient in full-input training,
        # which DDP without find_unused_parameters and the generic backbone tests expect.
        y = self._head(h + 0.0 * self.mask_token)
        if self.residual:
            y = y + x[:, -1:]
        return y

    @property
    def propagates_in_patch_space(self) -> bool:
        """True when :meth:`forward_subset` can apply the sensor wrapper's kept-to-all
        propagation on its patch-token output (no decoder blocks), saving the wrapper a
        full-field re-patchify of the forecast."""
        return len(self.decoder_blocks) == 0

    def forward_subset(self, x: torch.Tensor, kept_idx: torch.Tensor, tod=None, dow=None, propagation=None) -> torch.Tensor:
        """Forecast from the kept patches only; the encoder runs on K tokens.

        Args:
            x: full input ``[B, T, C, H, W]``; the pixels of switched-off patches may hold
                anything and are never read.
            kept_idx: ``[K]`` long, indices of the kept patches in row-major patch order
                (the :class:`~sparsest.pruning.sensors.layout.SensorLayout` numbering);
                a ``[N]`` bool keep mask is accepted too.
            tod, dow: ignored.
            propagation: optional :class:`~sparsest.pruning.sensors.wrapper.KeptToAllPropagation`
                applied to the patch tokens of the forecast (after the residual) before they are
                put back on the grid; only when :attr:`propagates_in_patch_space`. Equal on
                every visible pixel to applying it to the returned field (tested).

        Returns:
            ``[B, S, C, H, W]`` forecasts for the whole field.
        """
        if kept_idx.dtype == torch.bool:
            kept_idx = kept_idx.nonzero().flatten()
        kept_idx = kept_idx.to(device=x.device, dtype=torch.long)
        B = x.shape[0]
        tokens = self._patchify(x).index_select(1, kept_idx)  # [B, K, T * C * p * p]
        h = self.embed(tokens) + self.pos_embed.index_select(1, kept_idx)
        if kept_idx.numel():
            for blk in self.blocks:
                h = blk(h)
        if len(self.decoder_blocks):
            full = (self.mask_token + self.pos_embed).expand(B, -1, -1)
            y = self._head(full.index_copy(1, kept_idx, h))
        else:
            # the head is per token: switched-off tokens (mask token + position) are the same
            # for every sample, so their head output is computed once, not B times
            off = torch.ones(self.n_patches, dtype=torch.bool, device=x.device)
            off[kept_idx] = False
            off_idx = off.nonzero().flatten()
            out_off = self.head(self.norm(self.mask_token + self.pos_embed.index_select(1, off_idx)))  # [1, N_off, P]
            out = out_off.new_empty(B, self.n_patches, out_off.shape[-1])
            out[:, off_idx] = out_off.expand(B, -1, -1)
            out_kept = self.head(self.norm(h))  # [B, K, S * C * p * p]
            if propagation is not None:
                # pixels of the padding of edge patches: 0, as in the cropped field the
                # generic propagation re-pads, so they do not leak into other patches' offsets
                valid = self._patchify(x.new_ones(1, self.horizon, *x.shape[2:]))  # [1, N, S * C * p * p]
                out_kept = out_kept * valid.index_select(1, kept_idx)
                if self.residual:  # the last input frame of each kept patch, for every step
                    c_pp = tokens.shape[-1] // self.window
                    out_kept = out_kept + tokens[..., -c_pp:].repeat(1, 1, self.horizon)
                out[:, kept_idx] = out_kept
                keep = torch.zeros(self.n_patches, dtype=torch.bool, device=x.device)
                keep[kept_idx] = True
                return self._unpatchify(propagation.mix_tokens(out, keep))
            out[:, kept_idx] = out_kept
            y = self._unpatchify(out)
        if self.residual:
            p, (Hp, Wp) = self.patch_size, self.patches
            keep = torch.zeros(self.n_patches, dtype=torch.bool, device=x.device)
            keep[kept_idx] = True
            keep = keep.view(Hp, Wp).repeat_interleave(p, 0).repeat_interleave(p, 1)[: self.height, : self.width]
            y = y + torch.where(keep, x[:, -1:], 0.0)  # where, not *: NaN / inf off-patch input stays unread
        return y


@register_backbone("vit", kind="grid", summary="ViT (Dosovitskiy et al., ICLR 2021) on space-time patches, dense head; encodes kept sensor patches only")
def vit(spec: DataSpec, **kwargs) -> ViT:
    kwargs.setdefault("patch_size", spec.patch_size)
    return ViT(
        input_size=spec.n_channels,
        window=spec.window,
        horizon=spec.horizon,
        height=spec.height,
        width=spec.width,
        **kwargs,
    )
