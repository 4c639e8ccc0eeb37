"""STID: Spatial-Temporal Identity (Shao et al., CIKM 2022, arXiv:2208.05233)."""

from __future__ import annotations

import torch
from torch import nn

from ...errors import ConfigError
from ..registry import DataSpec, register_backbone


class _MLPBlock(nn.Module):
    """Residual two-layer MLP (STID's ``MultiLayerPerceptron``, 1x1 convs as Linear)."""

    def __init__(self, dim: int, dropout: float):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(dim, dim), nn.ReLU(), nn.Dropout(dropout), nn.Linear(dim, dim))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return h + self.net(h)


class STID(nn.Module):
    """STID forecaster: identity embeddings + MLP encoder, no cross-node mixing.

    Each node's window (all T steps and C channels) is embedded by one linear layer and
    concatenated with a learned node (spatial identity) embedding and time-of-day /
    day-of-week embeddings of the last input step; a stack of residual MLPs and a linear
    regression head give the S-step forecast (Shao et al., CIKM 2022, Eq. 1-5).

    Args:
        n_nodes: N.
        window: T.
        horizon: S.
        input_size: C input channels.
        output_size: C output channels (default ``input_size``).
        hidden_size: width of the series embedding (and of each identity embedding).
        n_layers: residual MLP blocks.
        steps_per_day: time-of-day vocabulary size (1 disables the embedding).
        dropout: dropout inside the MLP blocks.
        last_value_skip: add the last input step to every forecast step (the network
            forecasts the change from persistence; ours, not in the paper; needs
            ``output_size == input_size``). The head then starts at zero, so the untrained
            model is persistence exactly and training moves it only where that pays. Worth it where persistence is hard to beat, e.g.
            bike-share counts at 5 minutes (README, ST-Prune on divvy-chicago).

    Shapes:
        x: ``[B, T, N, C]``; tod, dow: ``[B, T + S]`` (only step T-1 is used);
        returns ``[B, S, N, C_out]``.
    """

    def __init__(
        self,
        n_nodes: int,
        window: int,
        horizon: int,
        input_size: int = 1,
        output_size: int | None = None,
        hidden_size: int = 32,
        n_layers: int = 3,
        steps_per_day: int = 288,
        dropout: float = 0.15,
        last_value_skip: bool = False,
    ):
        super().__init__()
        self.window, self.horizon = window, horizon
        self.output_size = output_size or input_size
        if last_value_skip and self.output_size != input_size:
            raise ConfigError(f"stid: last_value_skip needs output_size == input_size (got {self.output_size} and {input_size})")
        self.last_value_skip = last_value_skip
        self.series_emb = nn.Linear(window * input_size, hidden_size)
        self.node_emb = nn.Parameter(torch.empty(n_nodes, hidden_size))
        nn.init.xavier_uniform_(self.node_emb)
        self.use_tod = steps_per_day > 1
        self.tod_emb = nn.Embedding(steps_per_day, hidden_size) if self.use_tod else None
        self.dow_emb = nn.Embedding(7, hidden_size)
        dim = hidden_size * (3 + int(self.use_tod))
        self.encoder = nn.Sequential(*[_MLPBlock(dim, dropout) for _ in range(n_layers)])
        self.head = nn.Linear(dim, horizon * self.output_size)
        if last_value_skip:  # start from persistence exactly: the network learns the change
            nn.init.zeros_(self.head.weight)
            nn.init.zeros_(self.head.bias)
        self.mask_token = nn.Parameter(torch.zeros(dim))

    supports_subset = True

    def _encode(self, x: torch.Tensor, node_emb: torch.Tensor, tod, dow) -> torch.Tensor:
        B, T, N, C = x.shape
        h = self.series_emb(x.permute(0, 2, 1, 3).reshape(B, N, T * C))  # [B, N, D]
        parts = [h, node_emb.unsqueeze(0).expand(B, -1, -1)]
        if tod is None:
            tod = torch.zeros(B, T, dtype=torch.long, device=x.device)
        if dow is None:
            dow = torch.zeros(B, T, dtype=torch.long, device=x.device)
        if self.use_tod:
            parts.append(self.tod_emb(tod[:, T - 1]).unsqueeze(1).expand(-1, N, -1))
        parts.append(self.dow_emb(dow[:, T - 1]).unsqueeze(1).expand(-1, N, -1))
        return self.encoder(torch.cat(parts, dim=-1))  # [B, N, D_total]

    def _head(self, h: torch.Tensor) -> torch.Tensor:
        B, N, _ = h.shape
        out = self.head(h).view(B, N, self.horizon, self.output_size)  # [B, N, S, C]
        return out.permute(0, 2, 1, 3)  # [B, S, N, C]

    def forward(self, x: torch.Tensor, tod: torch.Tensor | None = None, dow: torch.Tensor | None = None):
        y = self._head(self._encode(x, self.node_emb, tod, dow))
        if self.last_value_skip:
            y = y + x[:, -1:]
        # keep mask_token in the graph (zero contribution) so DDP sees every parameter used
        return y + 0.0 * self.mask_token.sum()

    def forward_subset(self, x_kept: torch.Tensor, kept_idx: torch.Tensor, tod=None, dow=None) -> torch.Tensor:
        """Forecast all N nodes from the K kept ones; encoder cost scales with K.

        Only kept nodes are embedded and encoded; a switched-off node's head input is the
        learned ``mask_token`` (so its forecast is one learned vector, refined by the
        wrapper's kept-to-all propagation). Since STID has no cross-node mixing, kept-node
        outputs equal those of :meth:`forward` on the masked input.

        Shapes: ``x_kept`` ``[B, T, K, C]``, ``kept_idx`` ``[K]`` -> ``[B, S, N, C]``.
        """
        B = x_kept.shape[0]
        y_kept = self._head(self._encode(x_kept, self.node_emb[kept_idx], tod, dow))  # [B, S, K, C]
        if self.last_value_skip:
            y_kept = y_kept + x_kept[:, -1:]
        y_off = self.head(self.mask_token).view(1, self.horizon, 1, self.output_size)
        y = y_off.expand(B, -1, self.node_emb.shape[0], -1).clone()  # [B, S, N, C]
        y[:, :, kept_idx] = y_kept
        return y


@register_backbone("stid", kind="graph", summary="STID (Shao et al., CIKM 2022): identity embeddings + MLP, graph-free")
def stid(spec: DataSpec, **kwargs) -> STID:
    return STID(**spec.graph_args("steps_per_day"), **kwargs)
