"""Graph WaveNet (Wu et al., IJCAI 2019, arXiv:1906.00121)."""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ...errors import ConfigError
from ..layers import KeptSubgraphForecaster
from ..registry import DataSpec, preset_options, register_backbone

#: option values of each ``preset`` (explicit options override them)
PRESETS = {
    # the authors' code (github.com/nnzhan/Graph-WaveNet, train.py defaults): nhid 32
    # residual / dilation channels, skip 8 * 32, end 16 * 32, 4 blocks x 2 layers, kernel 2
    "reference": {"hidden_size": 32, "skip_size": 256, "end_size": 512, "n_blocks": 4, "n_layers": 2, "kernel_size": 2},
    # quick CPU runs: 2 blocks x 2 layers with kernel 3 (the same receptive field, 13 steps,
    # with 3 graph convolutions instead of 7), 16 channels
    "small": {"hidden_size": 16, "skip_size": 64, "end_size": 128, "n_blocks": 2, "n_layers": 2, "kernel_size": 3},
}


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
    on CPU).

    Time of day: as in the reference code (``in_dim=2``), the input of every node gets a
    second channel, the time-of-day fraction ``tod / steps_per_day`` in [0, 1) of each input
    step (none when ``steps_per_day`` is 1; zeros when ``tod`` is not given). Day of week is
    not used.

    Presets (``preset``; any size option given explicitly overrides its value):

    - ``"reference"`` (default): the authors' code (github.com/nnzhan/Graph-WaveNet,
      ``train.py`` defaults): 32 residual / dilation channels, 256 skip, 512 end channels,
      4 blocks x 2 layers with kernel 2 (dilations 1, 2; receptive field 13), diffusion
      order 2, adaptive adjacency from 10-dim node embeddings, dropout 0.3.
    - ``"small"``: for quick CPU runs: 16 / 64 / 128 channels, 2 blocks x 2 layers with
      kernel 3 (dilations 1, 2; the same receptive field, 13, with 3 graph convolutions
      instead of 7); order, embeddings and dropout as the reference.

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
        preset: ``"reference"`` or ``"small"``: the defaults of the size options below.
        hidden_size: residual and dilation channels (reference: 32, small: 16).
        skip_size: skip channels (reference: 256, small: 64).
        end_size: channels of the first output 1x1 convolution (reference: 512, small: 128).
        n_blocks: blocks of dilated layers (reference: 4, small: 2).
        n_layers: layers per block, dilation doubling within a block (both: 2).
        kernel_size: temporal kernel size (reference: 2, small: 3).
        order: diffusion steps per support (paper: 2).
        adjacency: ``[N, N]`` non-negative edge weights or ``None``.
        adaptive: use the self-adaptive adjacency.
        embedding_size: width of the node embeddings ``E_1``, ``E_2`` (paper: 10).
        dropout: dropout after each graph convolution (paper: 0.3).
        steps_per_day: time-of-day slots per day (1: no time-of-day input channel).

    Shapes:
        x: ``[B, T, N, C]``; tod: ``[B, T + S]`` slots in [0, steps_per_day) (input steps
        0..T-1 are used); dow: ignored; returns ``[B, S, N, C_out]``.
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
        preset: Literal["reference", "small"] = "reference",
        hidden_size: int | None = None,
        skip_size: int | None = None,
        end_size: int | None = None,
        n_blocks: int | None = None,
        n_layers: int | None = None,
        kernel_size: int | None = None,
        order: int = 2,
        adjacency: np.ndarray | torch.Tensor | None = None,
        adaptive: bool = True,
        embedding_size: int = 10,
        dropout: float = 0.3,
        steps_per_day: int = 1,
    ):
        super().__init__()
        sizes = preset_options("gwn", PRESETS, preset, hidden_size=hidden_size, skip_size=skip_size, end_size=end_size,
                               n_blocks=n_blocks, n_layers=n_layers, kernel_size=kernel_size)
        hidden_size, skip_size, end_size = sizes["hidden_size"], sizes["skip_size"], sizes["end_size"]
        n_blocks, n_layers, kernel_size = sizes["n_blocks"], sizes["n_layers"], sizes["kernel_size"]
        if adjacency is None and not adaptive:
            raise ConfigError("gwn: no adjacency given and adaptive=False leaves no graph to convolve on")
        self.n_nodes, self.window, self.horizon = n_nodes, window, horizon
        self.output_size = output_size or input_size
        self.preset = preset
        self.steps_per_day = steps_per_day
        self.use_tod = steps_per_day > 1
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

        self.start = nn.Linear(input_size + int(self.use_tod), hidden_size)
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

    def _with_tod(self, x: torch.Tensor, tod: torch.Tensor | None) -> torch.Tensor:
        """``[B, T, K, C]`` -> ``[B, T, K, C + 1]``: the time-of-day fraction of each input
        step as an extra channel of every node (unchanged when time of day is not used)."""
        if not self.use_tod:
            return x
        B, T, K, _ = x.shape
        if tod is None:
            frac = x.new_zeros(B, T)
        else:
            frac = tod[:, :T].to(x.dtype) / self.steps_per_day
        return torch.cat([x, frac[:, :, None, None].expand(B, T, K, 1)], dim=-1)

    def forward(self, x: torch.Tensor, tod: torch.Tensor | None = None, dow: torch.Tensor | None = None):
        return super().forward(self._with_tod(x, tod), tod, dow)

    def forward_subset(self, x_kept: torch.Tensor, kept_idx: torch.Tensor, tod=None, dow=None) -> torch.Tensor:
        """Forecast from the kept sensors only, on their induced subgraph (class doc).

        Shapes: ``x_kept`` ``[B, T, K, C]``, ``kept_idx`` ``[K]`` sorted, ``tod`` ``[B, T + S]``
        -> ``[B, S, N, C]`` with zero rows for switched-off sensors.
        """
        return super().forward_subset(self._with_tod(x_kept, tod), kept_idx, tod, dow)

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
    return GraphWaveNet(**spec.graph_args("adjacency", "steps_per_day"), **kwargs)
