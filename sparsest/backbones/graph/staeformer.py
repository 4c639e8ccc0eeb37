"""STAEformer (Liu et al., CIKM 2023, arXiv:2308.10425)."""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from ..layers import SelfAttention
from ..registry import DataSpec, preset_options, register_backbone

#: option values of each ``preset`` (explicit options override them)
PRESETS = {
    # the authors' code (github.com/XDZhelheim/STAEformer, model/STAEformer.py, METR-LA):
    # 24-dim input projection and time-of-day / day-of-week embeddings, 80-dim adaptive
    # embedding (width 152), FFN 256, 4 heads, 3 temporal + 3 spatial layers
    "reference": {"hidden_size": 24, "adaptive_size": 80, "n_heads": 4, "feed_forward_size": 256, "n_temporal_layers": 3,
                  "n_spatial_layers": 3},
    # quick CPU runs: width 3 * 8 + 24 = 48, 2 heads, FFN 64, 1 + 1 layers
    "small": {"hidden_size": 8, "adaptive_size": 24, "n_heads": 2, "feed_forward_size": 64, "n_temporal_layers": 1,
              "n_spatial_layers": 1},
}


class _AttentionBlock(nn.Module):
    """Post-norm transformer layer (STAEformer's ``SelfAttentionLayer``).

    ``h = LN(h + Drop(MHA(h)))``; ``h = LN(h + Drop(FFN(h)))``, multi-head attention by
    :func:`torch.nn.functional.scaled_dot_product_attention` over the second-to-last axis
    (no dropout on the attention weights, as in the reference code; it also lets PyTorch
    pick its fused CPU kernel).
    """

    def __init__(self, dim: int, n_heads: int, ff_size: int, dropout: float):
        super().__init__()
        self.attn = SelfAttention(dim, n_heads)
        self.ff = nn.Sequential(nn.Linear(dim, ff_size), nn.ReLU(), nn.Linear(ff_size, dim))
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.drop1, self.drop2 = nn.Dropout(dropout), nn.Dropout(dropout)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        # h: [M, L, D], attention across L.
        h = self.norm1(h + self.drop1(self.attn(h)))
        return self.norm2(h + self.drop2(self.ff(h)))


class STAEformer(nn.Module):
    """STAEformer: vanilla transformers on spatio-temporal adaptive embeddings.

    Liu, Xia, Liang, Yu, Hu, Li, Song, "Spatio-Temporal Adaptive Embedding Makes Vanilla
    Transformer SOTA for Traffic Forecasting", CIKM 2023, arXiv:2308.10425. Each token
    (step t, node i) is the concatenation of a linear projection of ``x[t, i]``, the
    time-of-day and day-of-week embeddings of step t and the learned spatio-temporal
    adaptive embedding ``E_a[t, i]`` (``[T, N, D_a]``). ``n_temporal_layers`` transformer
    layers attend across the T steps of each node, then ``n_spatial_layers`` across the
    nodes of each step; a linear head maps each node's ``[T * D]`` tokens to its S-step
    forecast (the paper's "mixed" output projection).

    :meth:`forward_subset` embeds the kept sensors' tokens only (with their own adaptive
    embeddings), runs temporal and spatial attention on those K nodes (cost scales with
    K: ``O(K)`` temporal, ``O(K^2)`` spatial), then fills the switched-off positions with a
    learned ``mask_token`` plus their time and adaptive embeddings before the output head,
    so all N sensors are forecast (switched-off ones from identity and time only, no data:
    the wrapper's ``KeptToAllPropagation`` can still refine them). :meth:`forward` runs the
    same path with all nodes kept (the mask token then receives a zero gradient).

    Presets (``preset``; any size option given explicitly overrides its value):

    - ``"reference"`` (default): the authors' code (github.com/XDZhelheim/STAEformer,
      ``model/STAEformer.py`` defaults for METR-LA): 24-dim input projection, time-of-day
      and day-of-week embeddings, 80-dim adaptive embedding (model width
      ``D = 3 * 24 + 80 = 152``), feed-forward width 256, 4 heads, 3 temporal + 3 spatial
      layers, dropout 0.1, mixed output projection.
    - ``"small"``: for quick CPU runs: width ``D = 3 * 8 + 24 = 48``, feed-forward width 64,
      2 heads (at a fixed width, fewer heads are markedly faster on CPU for attention over
      N = 207 nodes), 1 temporal + 1 spatial layer; dropout as the reference.

    Args:
        n_nodes: N.
        window: T.
        horizon: S.
        input_size: C input channels.
        output_size: C output channels (default ``input_size``).
        preset: ``"reference"`` or ``"small"``: the defaults of the size options below.
        hidden_size: width of the input projection and of each of the time-of-day and
            day-of-week embeddings (reference: 24, small: 8).
        adaptive_size: width ``D_a`` of the adaptive embedding (reference: 80, small: 24).
        n_heads: attention heads (reference: 4, small: 2).
        feed_forward_size: hidden width of each layer's FFN (reference: 256, small: 64).
        n_temporal_layers: temporal transformer layers (reference: 3, small: 1).
        n_spatial_layers: spatial transformer layers (reference: 3, small: 1).
        steps_per_day: time-of-day vocabulary size (1 disables the embedding).
        dropout: dropout after each attention and feed-forward sub-layer (paper: 0.1).

    Shapes:
        x: ``[B, T, N, C]``; tod, dow: ``[B, T + S]`` (input steps 0..T-1 are used);
        returns ``[B, S, N, C_out]``.
        forward_subset: ``x_kept`` ``[B, T, K, C]``, ``kept_idx`` ``[K]`` sorted ->
        ``[B, S, N, C_out]``.
    """

    supports_subset = True

    def __init__(
        self,
        n_nodes: int,
        window: int,
        horizon: int,
        input_size: int = 1,
        output_size: int | None = None,
        preset: Literal["reference", "small"] = "reference",
        hidden_size: int | None = None,
        adaptive_size: int | None = None,
        n_heads: int | None = None,
        feed_forward_size: int | None = None,
        n_temporal_layers: int | None = None,
        n_spatial_layers: int | None = None,
        steps_per_day: int = 288,
        dropout: float = 0.1,
    ):
        super().__init__()
        sizes = preset_options("staeformer", PRESETS, preset, hidden_size=hidden_size, adaptive_size=adaptive_size,
                               n_heads=n_heads, feed_forward_size=feed_forward_size, n_temporal_layers=n_temporal_layers,
                               n_spatial_layers=n_spatial_layers)
        hidden_size, adaptive_size, n_heads = sizes["hidden_size"], sizes["adaptive_size"], sizes["n_heads"]
        feed_forward_size = sizes["feed_forward_size"]
        n_temporal_layers, n_spatial_layers = sizes["n_temporal_layers"], sizes["n_spatial_layers"]
        self.preset = preset
        self.n_nodes, self.window, self.horizon = n_nodes, window, horizon
        self.output_size = output_size or input_size
        self.input_proj = nn.Linear(input_size, hidden_size)
        self.use_tod = steps_per_day > 1
        self.tod_emb = nn.Embedding(steps_per_day, hidden_size) if self.use_tod else None
        self.dow_emb = nn.Embedding(7, hidden_size)
        self.adaptive_emb = nn.Parameter(torch.empty(window, n_nodes, adaptive_size))
        nn.init.xavier_uniform_(self.adaptive_emb)
        self.time_size = hidden_size * (1 + int(self.use_tod))
        self.dim = hidden_size + self.time_size + adaptive_size
        self.mask_token = nn.Parameter(torch.zeros(self.dim))
        nn.init.normal_(self.mask_token, std=0.02)
        self.temporal = nn.ModuleList(
            _AttentionBlock(self.dim, n_heads, feed_forward_size, dropout) for _ in range(n_temporal_layers)
        )
        self.spatial = nn.ModuleList(
            _AttentionBlock(self.dim, n_heads, feed_forward_size, dropout) for _ in range(n_spatial_layers)
        )
        self.head = nn.Linear(window * self.dim, horizon * self.output_size)

    def _time(self, tod: torch.Tensor | None, dow: torch.Tensor | None, B: int, device) -> torch.Tensor:
        """``[B, T, D_time]`` time-of-day / day-of-week embeddings of the input steps."""
        T = self.window
        if tod is None:
            tod = torch.zeros(B, T, dtype=torch.long, device=device)
        if dow is None:
            dow = torch.zeros(B, T, dtype=torch.long, device=device)
        parts = [self.tod_emb(tod[:, :T])] if self.use_tod else []
        parts.append(self.dow_emb(dow[:, :T]))
        return torch.cat(parts, dim=-1)

    def _run(self, x: torch.Tensor, idx: torch.Tensor, tod, dow) -> torch.Tensor:
        B, T, K, _ = x.shape
        N, D = self.n_nodes, self.dim
        time = self._time(tod, dow, B, x.device)  # [B, T, D_time]
        adp_all = self.adaptive_emb.unsqueeze(0).expand(B, -1, -1, -1)  # [B, T, N, D_a]
        adp = adp_all.index_select(2, idx)
        h = torch.cat(
            [self.input_proj(x), time.unsqueeze(2).expand(-1, -1, K, -1), adp], dim=-1
        )  # [B, T, K, D]
        h = h.transpose(1, 2).reshape(B * K, T, D)
        for layer in self.temporal:
            h = layer(h)
        h = h.view(B, K, T, D).transpose(1, 2).reshape(B * T, K, D)
        for layer in self.spatial:
            h = layer(h)
        h = h.view(B, T, K, D)
        # switched-off positions: mask token + their (time, adaptive) embeddings; kept ones overwrite
        fill = torch.cat(
            [x.new_zeros(B, T, N, D - self.time_size - adp.size(-1)), time.unsqueeze(2).expand(-1, -1, N, -1), adp_all],
            dim=-1,
        ) + self.mask_token
        h = fill.index_copy(2, idx, h)  # [B, T, N, D]
        out = self.head(h.permute(0, 2, 1, 3).reshape(B, N, T * D))  # [B, N, S*C]
        return out.view(B, N, self.horizon, self.output_size).transpose(1, 2)  # [B, S, N, C]

    def forward(self, x: torch.Tensor, tod: torch.Tensor | None = None, dow: torch.Tensor | None = None):
        idx = torch.arange(self.n_nodes, device=x.device)
        return self._run(x, idx, tod, dow)

    def forward_subset(
        self,
        x_kept: torch.Tensor,
        kept_idx: torch.Tensor,
        tod: torch.Tensor | None = None,
        dow: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Forecast all N sensors from the kept sensors' inputs only.

        Attention runs over the K kept nodes; switched-off nodes are forecast from the mask
        token and their time / adaptive embeddings. Returns ``[B, S, N, C_out]``.
        """
        return self._run(x_kept, kept_idx.to(x_kept.device, torch.long), tod, dow)


@register_backbone(
    "staeformer",
    kind="graph",
    summary="STAEformer (Liu et al., CIKM 2023): temporal + spatial transformers on adaptive embeddings",
)
def staeformer(spec: DataSpec, **kwargs) -> STAEformer:
    return STAEformer(**spec.graph_args("steps_per_day"), **kwargs)
