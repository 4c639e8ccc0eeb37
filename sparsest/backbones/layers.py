"""Layers shared by several backbones."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def conv2d(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, stride=1, padding=0, dilation=1,
           groups: int = 1) -> torch.Tensor:
    """:func:`torch.nn.functional.conv2d` with zero padding, padded explicitly when the
    padding is at least the kernel size (the same values).

    Why: PyTorch's CPU convolution falls to a slow kernel for such paddings. Measured on
    this project's 2-core CPU, 1 thread, torch 2.13: SimVP's 7 x 7 depthwise convolution with
    dilation 3 and padding 9 on a ``[1, 64, 32, 32]`` input took 5.3 ms, against 0.5 ms
    for ``F.pad`` followed by the same convolution without padding (and 0.2-0.3 ms for 5 x 5
    or 3 x 3 kernels with their usual padding, which are left as they are).

    Shapes: as :func:`torch.nn.functional.conv2d` (``[N, C_in, H, W]`` ->
    ``[N, C_out, H', W']``).
    """
    ph, pw = (padding, padding) if isinstance(padding, int) else padding
    kh, kw = weight.shape[-2:]
    if ph >= kh or pw >= kw:
        return F.conv2d(F.pad(x, (pw, pw, ph, ph)), weight, bias, stride, 0, dilation, groups)
    return F.conv2d(x, weight, bias, stride, padding, dilation, groups)


class Conv2d(nn.Conv2d):
    """``nn.Conv2d`` (zero padding only) that computes through :func:`conv2d`, so a padding
    at least as large as the kernel (a dilated "same" convolution) does not hit PyTorch's
    slow CPU kernel. Parameters and ``state_dict`` are those of ``nn.Conv2d``.

    Raises:
        ValueError: a ``padding_mode`` other than ``"zeros"``.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.padding_mode != "zeros":
            raise ValueError(f"Conv2d supports padding_mode='zeros' only, got {self.padding_mode!r}")

    def _conv_forward(self, input: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        return conv2d(input, weight, bias, self.stride, self.padding, self.dilation, self.groups)


class SelfAttention(nn.Module):
    """Multi-head self-attention over the second-to-last axis, on PyTorch's fused kernel.

    ``torch.nn.functional.scaled_dot_product_attention`` with one qkv projection and an
    output projection (Vaswani et al., NeurIPS 2017). No dropout on the attention weights.

    Args:
        dim: model width D. heads: attention heads (must divide D).

    Raises:
        ValueError: ``dim`` not divisible by ``heads``.

    Shapes:
        ``[M, L, D]`` -> ``[M, L, D]`` (attention across the L tokens of each of M rows).
    """

    def __init__(self, dim: int, heads: int):
        super().__init__()
        if dim % heads:
            raise ValueError(f"model width {dim} is not divisible by heads={heads}")
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        M, L, D = x.shape
        q, k, v = self.qkv(x).view(M, L, 3, self.heads, D // self.heads).permute(2, 0, 3, 1, 4)
        o = F.scaled_dot_product_attention(q, k, v)  # [M, heads, L, D / heads]
        return self.proj(o.transpose(1, 2).reshape(M, L, D))


class KeptSubgraphForecaster(nn.Module):
    """Base of graph backbones that run on the subgraph induced by the kept sensors.

    Subclasses implement ``_graph(kept_idx)`` (the graph operators of all nodes for
    ``None``, of the induced subgraph otherwise) and ``_run(x, graph) -> [B, S, K, C]``, and
    set ``n_nodes``. :meth:`forward_subset` scatters the K forecasts into an ``[B, S, N, C]``
    tensor whose switched-off rows are zeros (the sensor-mask wrapper's kept-to-all
    propagation fills them).
    """

    supports_subset = True

    def forward(self, x: torch.Tensor, tod: torch.Tensor | None = None, dow: torch.Tensor | None = None):
        return self._run(x, self._graph(None))

    def forward_subset(self, x_kept: torch.Tensor, kept_idx: torch.Tensor, tod=None, dow=None) -> torch.Tensor:
        """Forecast from the kept sensors only, on their induced subgraph.

        Shapes: ``x_kept`` ``[B, T, K, C]``, ``kept_idx`` ``[K]`` sorted -> ``[B, S, N, C]``
        with zero rows for switched-off sensors.
        """
        kept_idx = kept_idx.to(x_kept.device, torch.long)
        y = self._run(x_kept, self._graph(kept_idx))  # [B, S, K, C]
        B, S, _, C = y.shape
        return y.new_zeros(B, S, self.n_nodes, C).index_copy(2, kept_idx, y)
