"""STGCN, first-order variant (Yu, Yin & Zhu, IJCAI 2018, arXiv:1709.04875)."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from torch_geometric.nn import DenseGCNConv

from ...errors import ConfigError
from ..layers import KeptSubgraphForecaster
from ..registry import DataSpec, register_backbone


class _TemporalConv(nn.Module):
    """Temporal convolution along T with a residual (STGCN Sec. 3.3).

    ``glu=True``: ``(P + X_res) . sigmoid(Q)`` (gated linear unit); else
    ``relu(P + X_res)``. ``pad > 0`` left-pads the input with zeros (causal "same" length);
    with ``pad == 0`` the output is ``kernel_size - 1`` steps shorter, as in the paper.
    """

    def __init__(self, c_in: int, c_out: int, kernel_size: int, glu: bool, pad: int):
        super().__init__()
        self.glu, self.pad, self.c_out = glu, pad, c_out
        self.conv = nn.Conv2d(c_in, 2 * c_out if glu else c_out, (kernel_size, 1))
        self.align = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: [B, C, L, K]
        if self.pad:
            x = F.pad(x, (0, 0, self.pad, 0))
        res = self.align(x)[:, :, self.conv.kernel_size[0] - 1 :]  # the last steps, aligned with the output
        h = self.conv(x)
        if self.glu:
            return (h[:, : self.c_out] + res) * torch.sigmoid(h[:, self.c_out :])
        return F.relu(h + res)


class _STConvBlock(nn.Module):
    """ST-Conv block: GLU temporal conv -> first-order graph conv (ReLU) -> temporal conv -> LN."""

    def __init__(self, c_in: int, c_t: int, c_s: int, kernel_size: int, pad: int, dropout: float, graph_residual: bool = True):
        super().__init__()
        self.t1 = _TemporalConv(c_in, c_t, kernel_size, glu=True, pad=pad)
        self.gcn = DenseGCNConv(c_t, c_s)
        # the node's own features around the graph conv (not in the paper, see STGCN docstring)
        self.skip = nn.Linear(c_t, c_s, bias=False) if graph_residual else None
        self.t2 = _TemporalConv(c_s, c_t, kernel_size, glu=False, pad=pad)
        self.norm = nn.LayerNorm(c_t)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, adj: torch.Tensor) -> torch.Tensor:
        h = self.t1(x)  # [B, C_t, L, K]
        B, C, L, K = h.shape
        hn = h.permute(0, 2, 3, 1).reshape(B * L, K, C)  # [B*L, K, C_t]: B*L folded into the batch
        g = self.gcn(hn, adj)
        if self.skip is not None:
            g = g + self.skip(hn)
        h = F.relu(g).view(B, L, K, -1).permute(0, 3, 1, 2)
        h = self.t2(h)
        h = self.norm(h.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
        return self.dropout(h)


class STGCN(KeptSubgraphForecaster):
    """STGCN(1st): spatio-temporal graph convolutional network, first-order graph conv.

    Yu, Yin, Zhu, "Spatio-Temporal Graph Convolutional Networks: A Deep Learning Framework
    for Traffic Forecasting", IJCAI 2018, arXiv:1709.04875. ``n_blocks`` ST-Conv blocks
    (gated temporal convolution (GLU) -> spatial graph convolution with the first-order
    approximation ``D~^-1/2 (A + I) D~^-1/2 X Theta`` (``torch_geometric``'s
    ``DenseGCNConv``) and ReLU -> temporal convolution -> layer norm -> dropout) and an
    output block (GLU temporal convolution over all remaining steps, layer norm, and two
    fully connected layers emitting the S-step forecast at once, the usual multi-step
    version of the paper's single-step output layer).

    Temporal convolutions are "valid" (shrink T by ``kernel_size - 1``) as in the paper
    when the window is long enough for all blocks (T=12, 2 blocks, kernel 3 -> 4 steps left);
    for shorter windows they are causally zero-padded to keep the length. Layer norm is
    over channels per node and step (the paper normalises over nodes and channels); this
    keeps nodes coupled only through the graph convolution.

    ``adjacency`` is used as given (row i aggregates from column j; self loops are set to
    1 by the GCN normalisation). When it is ``None`` a learned adjacency
    ``softmax(relu(E_1 E_2^T))`` (as in Graph WaveNet) replaces it.

    :meth:`forward_subset` runs the network on the subgraph induced by the kept sensors
    (``A[kept][:, kept]``, re-normalised by the GCN; learned adjacency from ``E_1[kept]``,
    ``E_2[kept]``), so the cost scales with the number K of kept sensors. The rows of
    switched-off sensors in its output are **zeros**; the sensor wrapper's
    ``KeptToAllPropagation`` fills them.

    Args:
        n_nodes: N.
        window: T.
        horizon: S.
        input_size: C input channels.
        output_size: C output channels (default ``input_size``).
        hidden_size: temporal convolution channels (paper: 64).
        spatial_size: graph convolution channels, the block's bottleneck (paper: 16).
        n_blocks: ST-Conv blocks (paper: 2).
        kernel_size: temporal kernel size Kt (paper: 3).
        adjacency: ``[N, N]`` non-negative edge weights or ``None``.
        embedding_size: width of ``E_1``, ``E_2`` when ``adjacency`` is ``None``.
        dropout: dropout after each block.
        graph_residual: add a linear map of each node's own features to the graph
            convolution's output (``relu(GCN(H) + H W_s)``). Not in the paper: with the
            symmetric normalisation a node's own reading is weighted ``1 / deg`` and, trained on
            one week of METR-LA, the paper's block did not even match persistence
            (test MAE 5.89 vs 4.43 mph after 20 epochs); ``False`` gives the paper's block.

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
        hidden_size: int = 32,
        spatial_size: int = 16,
        n_blocks: int = 2,
        kernel_size: int = 3,
        adjacency: np.ndarray | torch.Tensor | None = None,
        embedding_size: int = 10,
        dropout: float = 0.0,
        graph_residual: bool = True,
    ):
        super().__init__()
        self.n_nodes, self.window, self.horizon = n_nodes, window, horizon
        self.output_size = output_size or input_size
        if adjacency is not None:
            a = torch.as_tensor(np.asarray(adjacency), dtype=torch.float32)
            if a.shape != (n_nodes, n_nodes):
                raise ConfigError(f"stgcn: adjacency has shape {tuple(a.shape)}, expected ({n_nodes}, {n_nodes})")
            self.register_buffer("adjacency", a.clamp(min=0), persistent=False)
            self.node_emb1 = self.node_emb2 = None
        else:
            self.adjacency = None
            self.node_emb1 = nn.Parameter(torch.randn(n_nodes, embedding_size))
            self.node_emb2 = nn.Parameter(torch.randn(n_nodes, embedding_size))
        valid = window - 2 * n_blocks * (kernel_size - 1) >= 1
        pad = 0 if valid else kernel_size - 1
        self.blocks = nn.ModuleList(
            _STConvBlock(input_size if i == 0 else hidden_size, hidden_size, spatial_size, kernel_size, pad, dropout, graph_residual)
            for i in range(n_blocks)
        )
        remaining = window - 2 * n_blocks * (kernel_size - 1) if valid else window
        self.out_conv = _TemporalConv(hidden_size, hidden_size, remaining, glu=True, pad=0)
        self.out_norm = nn.LayerNorm(hidden_size)
        self.fc1 = nn.Linear(hidden_size, hidden_size)
        self.fc2 = nn.Linear(hidden_size, horizon * self.output_size)

    def _graph(self, idx: torch.Tensor | None) -> torch.Tensor:
        if self.adjacency is not None:
            return self.adjacency if idx is None else self.adjacency[idx][:, idx]
        e1 = self.node_emb1 if idx is None else self.node_emb1[idx]
        e2 = self.node_emb2 if idx is None else self.node_emb2[idx]
        return F.softmax(F.relu(e1 @ e2.t()), dim=1)

    def _run(self, x: torch.Tensor, adj: torch.Tensor) -> torch.Tensor:
        B, T, K, _ = x.shape
        h = x.permute(0, 3, 1, 2)  # [B, C, T, K]
        for block in self.blocks:
            h = block(h, adj)
        h = self.out_conv(h)[:, :, -1]  # [B, C_t, K]
        h = self.out_norm(h.transpose(1, 2))  # [B, K, C_t]
        out = self.fc2(F.relu(self.fc1(h)))  # [B, K, S*C]
        return out.view(B, K, self.horizon, self.output_size).transpose(1, 2)  # [B, S, K, C]


@register_backbone(
    "stgcn", kind="graph", summary="STGCN(1st) (Yu et al., IJCAI 2018): gated temporal conv + first-order GCN blocks"
)
def stgcn(spec: DataSpec, **kwargs) -> STGCN:
    return STGCN(**spec.graph_args("adjacency"), **kwargs)
