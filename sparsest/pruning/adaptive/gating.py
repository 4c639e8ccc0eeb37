"""Per-sample filter gating of a backbone's Conv2d layers, found by walking the model.

Dyna-Pruner (Zhang et al., "Dyna-Pruner: Input-Adaptive Data-Model Co-Pruning ...",
arXiv:2606.15346, Sec. III-B/III-D2) switches off structural units per input sample and, at
inference, computes only the active ones. METHODS.md allows "conv filter / channel of the
chosen layers" as the unit; ours is the channel (see :class:`GatedConv2d`). This module
does it without editing the backbone's code: :func:`attach_gates` replaces chosen
``nn.Conv2d`` children of a (copied) backbone by :class:`GatedConv2d`, which has three
execution modes:

- *masked* (``gate.mask`` set, ``[B, K]`` of 0/1): the full convolution on the masked
  channels (training; batched evaluation). This computes everything: no saving.
- *gated* (``gate.active`` set, an index tensor): batch-1 inference. Only the active units
  are computed, with sliced weights; downstream layers see the same tensor widths.
  Numerically equal to masked execution (tested). FLOPs scale with the active fraction.
- *static* (``gate.keep`` set): a compact model: units outside ``keep`` are removed for
  good (never computed); per-sample masks may still multiply the kept ones.

Orthogonal to the channel modes, the spatial reading (:mod:`.tiles`) restricts *where* the
layer computes: with ``gate.spatial`` (``[B, rows, cols]`` tile mask, soft or hard) the
output is multiplied by the tile mask (masked dense; training); with ``gate.tile_index``
(the active tiles' ``(b, row, col)``) only the active tiles are computed (gather, compute,
scatter; inference at any batch size), with the same values. Both combine with each
channel mode.

Which layers are gated (:func:`find_prunable_convs`): every ``nn.Conv2d`` with at least
``min_channels`` input and output channels, zero padding, and either ``groups == 1`` or
depthwise (``groups == in == out``). The final output projection of the grid backbones
(``C`` = 1 or a few output channels) and the first layer (C input channels) fall below
``min_channels`` and are never gated.

Batch layout: a gated layer may see ``k * B`` rows (SimVP / TAU run the encoder on
``[B * T]`` frames and the decoder on ``[B * S]`` frames, made by reshaping
``[B, T, ...]``); the per-sample mask is then repeated sample-major
(``repeat_interleave(k)``), which is the layout every grid backbone here uses.
"""

from __future__ import annotations

import torch
from torch import nn

from ...backbones.layers import Conv2d, conv2d
from .tiles import expand_tiles, tiled_conv2d

CONV_TYPES = (nn.Conv2d, Conv2d)
"""Module types that can be gated (exact types: other Conv2d subclasses may compute differently)."""


class GatedConv2d(nn.Module):
    """A ``nn.Conv2d`` whose channels (the gated units) can be masked, sliced or removed.

    The unit of a dense convolution (``groups == 1``) is an *input channel* (a feature map
    the layer reads: the mask multiplies the input, ``conv(x * m)``, and the sliced form
    uses ``weight[:, active]`` on ``x[:, active]``); the unit of a depthwise convolution is
    its filter = output channel (``conv(x) * m``, sliced form ``weight[active]`` on
    ``x[:, active]``, zeros elsewhere). Slicing input channels is what makes a 3x3
    convolution with few channels cheaper on CPU (the im2col buffer shrinks with the input
    channels; with oneDNN, removing output channels of a 16-channel 3x3 convolution is not
    faster at all: measured 1.7 ms dense vs 2.4 ms at 30% of the outputs, 0.4 ms at 30% of
    the inputs).

    Args:
        conv: the wrapped convolution (its parameters are reused, not copied).

    Attributes:
        mask: ``[B, K]`` 0/1 float per-sample unit mask (masked / static mode), or None.
        active: ``[K']`` int64 indices of the units to compute for a batch-1 input (gated
            mode), or None.
        keep: ``[K'']`` int64 buffer, the units a static compact model keeps, or None.
        spatial: ``[B, rows, cols]`` tile mask multiplying the output (masked spatial
            reading), or None.
        tile_index: ``(b, row, col)`` int64 tensors of the active tiles of the B samples
            (tiled execution, :func:`~.tiles.tiled_conv2d`), or None; ``grid`` and
            ``tile_batch`` (B) go with it.

    Shapes:
        ``[B', C_in, H, W]`` -> ``[B', C_out, H', W']`` with ``B'`` a multiple of the mask's
        B; K = C_in (dense) or C_out (depthwise).
    """

    def __init__(self, conv: nn.Conv2d):
        super().__init__()
        self.conv = conv
        self.depthwise = conv.groups > 1 and conv.groups == conv.in_channels == conv.out_channels
        self.mask: torch.Tensor | None = None
        self.active: torch.Tensor | None = None
        self.spatial: torch.Tensor | None = None
        self.tile_index = None  # a tiles.TilePlan
        self.grid: tuple[int, int] = (1, 1)
        self.tile_batch = 1
        self.register_buffer("keep", None)

    @property
    def n_units(self) -> int:
        """K: input channels (dense) or filters (depthwise)."""
        return self.conv.out_channels if self.depthwise else self.conv.in_channels

    def unit_weights(self) -> torch.Tensor:
        """``[K, ...]`` the weights that belong to each unit (for L1 norms)."""
        w = self.conv.weight
        return w if self.depthwise else w.transpose(0, 1)

    def _weights(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Sliced weight and bias of the units ``idx``. At inference they are cached while
        the same index tensor is in use (a recurrent cell calls its conv T + S times per
        forward with one sample's units); the cache holds a reference to ``idx``, so a new
        index tensor can never be mistaken for it, and is dropped when the weight changes.
        Never cached while training (grad enabled) or while ``torch.jit.trace`` records the
        model (a cached slice would be baked into the trace as a constant)."""
        c = self.conv
        key = (idx, c.weight._version)
        use_cache = not torch.is_grad_enabled() and not torch.jit.is_tracing()
        cached = getattr(self, "_wcache", None)
        if use_cache and cached is not None and cached[0][0] is idx and cached[0][1] == key[1]:
            return cached[1]
        if self.depthwise:
            wb = (c.weight.index_select(0, idx), c.bias.index_select(0, idx) if c.bias is not None else None)
        else:
            wb = (c.weight.index_select(1, idx), c.bias)
        self._wcache = (key, wb) if use_cache else None
        return wb

    def _conv(self, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None, groups: int) -> torch.Tensor:
        """The convolution with the given (possibly sliced) weights, on the whole frame, on
        the active tiles only (``tile_index``), or masked by the tile mask (``spatial``)."""
        c = self.conv
        if self.tile_index is not None:
            return tiled_conv2d(x, w, b, c.stride, c.padding, c.dilation, groups, self.tile_index, self.grid,
                                x.shape[0] // self.tile_batch)
        y = conv2d(x, w, b, c.stride, c.padding, c.dilation, groups)
        if self.spatial is not None:
            m = expand_tiles(self.spatial.to(y.dtype), y.shape[-2:])  # [B, H', W']
            if m.shape[0] != y.shape[0]:
                m = m.repeat_interleave(y.shape[0] // m.shape[0], dim=0)  # sample-major frames
            y = y * m[:, None]
        return y

    def _sliced(self, x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        c = self.conv
        if self.depthwise:
            if idx.numel() == 0:
                y = c(x[:1])  # output shape only; every channel is zero
                return y.new_zeros(x.shape[0], c.out_channels, *y.shape[2:])
            w, b = self._weights(idx)
            y = self._conv(x.index_select(1, idx), w, b, idx.numel())
            out = y.new_zeros(y.shape[0], c.out_channels, *y.shape[2:])
            return out.index_copy(1, idx, y)
        if idx.numel() == 0:
            return self._conv(torch.zeros_like(x), c.weight, c.bias, 1)
        w, b = self._weights(idx)
        return self._conv(x.index_select(1, idx), w, b, 1)

    def _expand(self, m: torch.Tensor, rows: int) -> torch.Tensor:
        if m.shape[0] != rows:
            m = m.repeat_interleave(rows // m.shape[0], dim=0)  # sample-major frames
        return m[:, :, None, None]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.active is not None:  # gated: the mask is implicit (1 on active, 0 elsewhere)
            return self._sliced(x, self.active)
        if self.keep is not None:
            return self._compact(x)
        if self.mask is not None and not self.depthwise:
            x = x * self._expand(self.mask.to(x.dtype), x.shape[0])
        y = self._conv(x, self.conv.weight, self.conv.bias, self.conv.groups)
        if self.mask is not None and self.depthwise:
            y = y * self._expand(self.mask.to(y.dtype), y.shape[0])
        return y

    def _compact(self, x: torch.Tensor) -> torch.Tensor:
        """Static compact model: only the kept units, masked on the kept slice only (the
        same values as masking the full tensor, without touching removed channels)."""
        c, keep = self.conv, self.keep
        m = None if self.mask is None else self._expand(self.mask.index_select(1, keep).to(x.dtype), x.shape[0])
        xs = x.index_select(1, keep)
        w, b = self._weights(keep)
        if self.depthwise:
            y = self._conv(xs, w, b, keep.numel())
            if m is not None:
                y = y * m
            return y.new_zeros(y.shape[0], c.out_channels, *y.shape[2:]).index_copy(1, keep, y)
        if m is not None:
            xs = xs * m
        return self._conv(xs, w, b, 1)


def find_prunable_convs(model: nn.Module, min_channels: int = 8) -> list[str]:
    """Names of the ``nn.Conv2d`` modules of ``model`` that can be gated (see module doc),
    in ``named_modules`` order."""
    names = []
    for name, mod in model.named_modules():
        if type(mod) not in CONV_TYPES or mod.padding_mode != "zeros":
            continue
        if mod.out_channels < min_channels or mod.in_channels < min_channels:
            continue
        depthwise = mod.groups > 1 and mod.groups == mod.in_channels == mod.out_channels
        if mod.groups == 1 or depthwise:
            names.append(name)
    return names


def attach_gates(model: nn.Module, names: list[str]) -> list[GatedConv2d]:
    """Replace each named ``nn.Conv2d`` of ``model`` (in place) by a :class:`GatedConv2d`
    around it; return the gates in the order of ``names``.

    Raises:
        ValueError: a name that is not a Conv2d of ``model``.
    """
    gates = []
    for name in names:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        conv = getattr(parent, child)
        if type(conv) not in CONV_TYPES:
            raise ValueError(f"{name} is not an nn.Conv2d")
        gate = GatedConv2d(conv)
        setattr(parent, child, gate)
        gates.append(gate)
    return gates


def gates_of(model: nn.Module) -> list[GatedConv2d]:
    """The :class:`GatedConv2d` modules of ``model`` in ``modules()`` order."""
    return [m for m in model.modules() if isinstance(m, GatedConv2d)]


def clear_gates(gates: list[GatedConv2d]) -> None:
    """Drop per-forward state (masks, active indices, tile masks); static ``keep`` stays."""
    for g in gates:
        state = g.__dict__  # plain attributes (never parameters or buffers); nn.Module.__setattr__ costs ~3 us a call
        for name in _PER_FORWARD:
            if state.get(name) is not None:
                state[name] = None


_PER_FORWARD = ("mask", "active", "spatial", "tile_index")


def spans(sizes):
    """``(start, stop)`` of each layer's units in the flat ``[K]`` unit vector (``sizes``: units per layer)."""
    a = 0
    for n in sizes:
        yield a, a + n
        a += n


def l1_prior(weight: torch.Tensor) -> torch.Tensor:
    """0.1 * z-score of the units' L1 norms within one layer, ``[K]`` (``weight``: ``[K, ...]``):
    the static prior beta that Dyna-Pruner's learned importances start from."""
    l1 = weight.detach().abs().flatten(1).sum(1)
    return 0.1 * (l1 - l1.mean()) / l1.std().clamp_min(1e-8) if l1.numel() > 1 else torch.zeros_like(l1)


__all__ = ["GatedConv2d", "find_prunable_convs", "attach_gates", "gates_of", "clear_gates", "spans", "l1_prior"]
