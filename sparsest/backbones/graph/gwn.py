"""Graph WaveNet (Wu et al., IJCAI 2019, arXiv:1906.00121)."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ...errors import ConfigError
from ..layers import KeptSubgraphForecaster
from ..registry import DataSpec, register_backbone


def _row_normalise(a: torch.Tensor) -> torch.Tensor:
    """``D^-1 A`` (random-walk transition matrix); all-zero rows stay zero."""
    deg = a.sum(dim=1, keepdim=True)
    return a / torch.where(deg > 0, deg, torch.ones_like(deg))


class _DiffusionConv(nn.Module):
    """Diffusion graph convolution (GWN Eq. 6-7): ``sum_k P^k X W_k`` over all supports.

    ``[X, P_1 X, ..., P_1^K X, P_2 X, ...]`` are concatenated on the channel axis and mixed
    by one linear layer (the reference code's 1x1 convolution).
    """

    def __init__(self, c_in: int, c_out: int, n_supports: int, order: int, dropout: float):
        super().__init__()
        self.order = order
        self.mlp = nn.Linear(c_in * (1 + n_supports * order), c_out)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, supports: list[torch.Tensor]) -> torch.Tensor:
        # x: [K, B, L, C] (node-first, so P @ X is one matrix product); each support
        # [K, K], row i aggregates from columns j.
        K = x.size(0)
        out = [x]
        for p in supports:
            h = x
            for _ in range(self.order):
                h = (p @ h.reshape(K, -1)).view_as(x)
                out.append(h)
        return self.dropout(self.mlp(torch.cat(out, dim=-1)))


class _GatedTemporalConv(nn.Module):
    """``tanh(Theta_1 * X) . sigmoid(Theta_2 * X)``, dilated causal convolution along L.

    A ``(1, kernel_size)`` convolution with dilation ``d`` written as one linear layer on
    the ``kernel_size`` shifted copies of the channel-last input (same maths, faster on CPU
    than a 2-D convolution); the output is ``(kernel_size - 1) * d`` steps shorter.
    """

    def __init__(self, channels: int, kernel_size: int, dilation: int):
        super().__init__()
        self.kernel_size, self.dilation = kernel_size, dilation
        self.lin = nn.Linear(kernel_size * channels, 2 * channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: [K, B, L, C] -> [K, B, L - (kernel_size - 1) * dilation, C]
        L_out = x.size(2) - (self.kernel_size - 1) * self.dilation
        taps = [x[:, :, j * self.dilation : j * self.dilation + L_out] for j in range(self.kernel_size)]
        f, g = self.lin(torch.cat(taps, dim=-1)).chunk(2, dim=-1)
        return torch.tanh(f) * torch.sigmoid(g)


class GraphWaveNet(KeptSubgraphForecaster):
    """Graph WaveNet: gated dilated causal TCN + diffusion graph convolution.

    Wu, Pan, Long, Jiang, Zhang, "Graph WaveNet for Deep Spatial-Temporal Graph Modeling",
    IJCAI 2019, arXiv:1906.00121. Each of ``n_blocks * n_layers`` layers applies a gated
    dilated temporal convolution ``tanh(Theta_1 * X) . sigmoid(Theta_2 * X)`` (dilations
    1, 2, 4, ... restarting in each block), adds a 1x1 skip connection, then a diffusion
    graph convolution of order ``order`` over the forward and backward random-walk
    matrices of ``spec.adjacency`` and the self-adaptive adjacency
    ``softmax(relu(E_1 E_2^T))`` (Eq. 5), a residual connection and batch norm. The summed
    skips go through two 1x1 convolutions that emit all S steps at once. The input is
    left-padded with zeros to the receptive field as in the reference code (only the last
    step of the skip sum is used, as there; the last layer has no graph convolution, whose
    output the reference code computes and discards). Convolutions along time and 1x1 convolutions
    are written as linear layers on a node-first, channel-last layout (same maths, faster
    on CPU). The defaults are small for CPU training: 2 blocks x 2 layers with kernel 3
    (dilations 1, 2; receptive field 13, like the paper's 4 x 2 layers with kernel 2, at
    half the diffusion cost) and 16 channels.

    When ``adjacency`` is ``None`` only the adaptive adjacency is used (together with the
    identity term ``X W_0`` that every diffusion convolution has).

    :meth:`forward_subset` runs the same network on the subgraph induced by the kept
    sensors: the given adjacency is restricted to ``A[kept][:, kept]`` and re-normalised,
    the adaptive adjacency is built from ``E_1[kept]``, ``E_2[kept]`` (softmax over kept
    columns), so the cost scales with the number K of kept sensors. The rows of switched-off
    sensors in its output are **zeros**; the sensor wrapper's ``KeptToAllPropagation``
    fills them.

    Args:
        n_nodes: N.
        window: T.
        horizon: S.
        input_size: C input channels.
        output_size: C output channels (default ``input_size``).
        hidden_size: residual and dilation channels (paper: 32).
        skip_size: skip channels (paper: 256).
        end_size: channels of the first output 1x1 convolution (paper: 512).
        n_blocks: blocks of dilated layers (paper: 4).
        n_layers: layers per block, dilation doubling within a block (paper: 2).
        kernel_size: temporal kernel size (paper: 2).
        order: diffusion steps per support (paper: 2).
        adjacency: ``[N, N]`` non-negative edge weights or ``None``.
        adaptive: use the self-adaptive adjacency.
        embedding_size: width of the node embeddings ``E_1``, ``E_2`` (paper: 10).
        dropout: dropout after each graph convolution (paper: 0.3).

    Shapes:
        x: ``[B, T, N, C]``; tod, dow: ignored; returns ``[B, S, N, C_out]``.
        forward_subset: ``x_kept`` ``[B, T, K, C]``, ``kept_idx`` ``[K]`` sorted ->
        ``[B, S, N, C_out]`` with zero rows for switched-off sensors.
    """

    def __init__(
        self,
        n_nodes: int,
        window: int,
        horizon: int,
        input_size: int = 1,
        output_size: int | None = None,
        hidden_size: int = 16,
        skip_size: int = 64,
        end_size: int = 128,
        n_blocks: int = 2,
        n_layers: int = 2,
        kernel_size: int = 3,
        order: int = 2,
        adjacency: np.ndarray | torch.Tensor | None = None,
        adaptive: bool = True,
        embedding_size: int = 10,
        dropout: float = 0.3,
    ):
        super().__init__()
        if adjacency is None and not adaptive:
            raise ConfigError("gwn: no adjacency given and adaptive=False leaves no graph to convolve on")
        self.n_nodes, self.window, self.horizon = n_nodes, window, horizon
        self.output_size = output_size or input_size
        if adjacency is not None:
            a = torch.as_tensor(np.asarray(adjacency), dtype=torch.float32)
            if a.shape != (n_nodes, n_nodes):
                raise ConfigError(f"gwn: adjacency has shape {tuple(a.shape)}, expected ({n_nodes}, {n_nodes})")
            self.register_buffer("adjacency", a.clamp(min=0), persistent=False)
        else:
            self.adjacency = None
        self.adaptive = adaptive
        if adaptive:
            self.node_emb1 = nn.Parameter(torch.randn(n_nodes, embedding_size))
            self.node_emb2 = nn.Parameter(torch.randn(n_nodes, embedding_size))
        n_supports = 2 * int(adjacency is not None) + int(adaptive)

        self.start = nn.Linear(input_size, hidden_size)
        self.tconvs, self.skip_convs = nn.ModuleList(), nn.ModuleList()
        self.gconvs, self.norms = nn.ModuleList(), nn.ModuleList()
        self.dilations: list[int] = []
        receptive = 1
        for _ in range(n_blocks):
            d = 1
            for _ in range(n_layers):
                self.dilations.append(d)
                self.tconvs.append(_GatedTemporalConv(hidden_size, kernel_size, d))
                self.skip_convs.append(nn.Linear(hidden_size, skip_size))
                if len(self.dilations) < n_blocks * n_layers:  # the last layer's output reaches only its skip
                    self.gconvs.append(_DiffusionConv(hidden_size, hidden_size, n_supports, order, dropout))
                    self.norms.append(nn.BatchNorm1d(hidden_size))
                receptive += (kernel_size - 1) * d
                d *= 2
        self.receptive_field = receptive
        self.end1 = nn.Linear(skip_size, end_size)
        self.end2 = nn.Linear(end_size, horizon * self.output_size)

    def _graph(self, idx: torch.Tensor | None) -> list[torch.Tensor]:
        supports = []
        if self.adjacency is not None:
            a = self.adjacency if idx is None else self.adjacency[idx][:, idx]
            supports += [_row_normalise(a), _row_normalise(a.t())]
        if self.adaptive:
            e1 = self.node_emb1 if idx is None else self.node_emb1[idx]
            e2 = self.node_emb2 if idx is None else self.node_emb2[idx]
            supports.append(F.softmax(F.relu(e1 @ e2.t()), dim=1))
        return supports

    def _run(self, x: torch.Tensor, supports: list[torch.Tensor]) -> torch.Tensor:
        B, T, K, _ = x.shape
        h = x.permute(2, 0, 1, 3)  # [K, B, T, C]: node-first, channel-last
        if T < self.receptive_field:
            h = F.pad(h, (0, 0, self.receptive_field - T, 0))
        h = self.start(h)
        skip = None
        for i, (tconv, skip_conv) in enumerate(zip(self.tconvs, self.skip_convs)):
            res = h
            h = tconv(res)
            s = skip_conv(h[:, :, -1:])  # only the last step of the skip sum reaches the output
            skip = s if skip is None else s + skip
            if i == len(self.gconvs):
                break  # last layer: its graph convolution would feed nothing
            h = self.gconvs[i](h, supports) + res[:, :, -h.size(2) :]
            h = self.norms[i](h.reshape(-1, h.size(-1))).view_as(h)
        out = self.end2(F.relu(self.end1(F.relu(skip[:, :, 0]))))  # [K, B, S*C]
        return out.view(K, B, self.horizon, self.output_size).permute(1, 2, 0, 3)  # [B, S, K, C]


@register_backbone(
    "gwn", kind="graph", summary="Graph WaveNet (Wu et al., IJCAI 2019): dilated gated TCN + diffusion GCN, adaptive adjacency"
)
def gwn(spec: DataSpec, **kwargs) -> GraphWaveNet:
    return GraphWaveNet(**spec.graph_args("adjacency"), **kwargs)
