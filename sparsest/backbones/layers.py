"""Layers shared by several backbones."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


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


def scatter_kept(y_kept: torch.Tensor, kept_idx: torch.Tensor, n_nodes: int) -> torch.Tensor:
    """Place kept-node forecasts ``[B, S, K, C]`` into zeros ``[B, S, N, C]`` (rows ``kept_idx``)."""
    B, S, _, C = y_kept.shape
    return y_kept.new_zeros(B, S, n_nodes, C).index_copy(2, kept_idx, y_kept)
