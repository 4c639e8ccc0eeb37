"""Compact-row execution of SimVP on a sample's active tiles (DynConv-style).

The generic tiled path (:func:`~.tiles.tiled_conv2d`) makes each gated convolution compute
its active tiles only, but every layer between the convolutions (GroupNorm, SiLU, GELU,
BatchNorm, the gates' products and the residual sums) still runs on whole frames, and every
convolution scatters its outputs into a zero frame that the next one gathers from again. At
batch 1 that bookkeeping, not the arithmetic, is the cost. Following DynConv (Verelst &
Tuytelaars, CVPR 2020, Sec. 3.2: the active positions are gathered once, processed by the
whole block, and scattered back), this module carries the active pixels as one compact
``[n, C]`` matrix of channels-last rows through the whole network and runs every layer on
those rows:

- rows are *tile-major*: frame, then active tile (raster order), then pixel in the tile
  (raster order), so a tile's outputs are a contiguous block and the tile list is the same
  at every resolution of the network;
- a 1 x 1 convolution is one matrix product on the rows;
- a k x k convolution gathers the stack of every active tile with the halo its kernel reads
  in one ``index_select`` from ``cat([rows, one background row per frame, one zero row])``:
  the halo pixels outside the active tiles read what the masked dense network holds there
  (the *background*, below), the padding reads 0; then the dense kernel runs on that stack
  (SBNet's gather / compute; the outputs are already rows, no scatter). Where the halos
  would copy more pixels than the whole padded frame (SimVP's 7 x 7 dilation-3 kernel on
  4 x 4-pixel tiles: 30x the tile), the kernel runs on the zero-padded whole frame and the
  active rows are kept: cheaper here, and its FLOPs are counted as the whole frame's;
- GroupNorm takes its statistics from the rows, counting every other pixel of the frame
  with its value 0 (a gated convolution's output there); its value at those pixels, and
  the activation's, is one constant per frame and channel (the background), which is what
  the next convolution's halo reads;
- nearest up-sampling repeats the rows inside their tiles; BatchNorm (eval), the
  activations, the gate products and the residual sums are row-wise.

The forecast is written at the active pixels; elsewhere it is the last input frame, which is
what :class:`~.wrapper.DynaPruner` forecasts there for a tile reading anyway. The values
equal the masked dense computation (tested); FLOPs are those of the active outputs (the
matrix products and the convolutions on the tile stacks are what ``FlopCounterMode``
counts). Only the first encoder layer (ungated: it reads the C raw channels) runs on whole
frames.

Used by :class:`~.wrapper.DynaPruner` for the ``"tiles"`` reading of a
:class:`~sparsest.backbones.grid.simvp.SimVP` in its ``"gated"`` and ``"tiled"`` modes
(inference) when :func:`supports` says so; otherwise the generic tiled path runs.
:data:`ENABLED` switches it off (equal values either way).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ...backbones.grid.simvp import ConvSC, GASubBlock, SimVP
from .gating import GatedConv2d
from .tiles import TilePlan, stack_geometry, stack_sources, tile_size

ENABLED = True
"""Run a supported SimVP's tile reading on compact rows (module doc); False: the generic
tiled path (equal values, slower at small batch)."""


def _plain(conv: nn.Module) -> nn.Conv2d:
    return conv.conv if isinstance(conv, GatedConv2d) else conv


def supports(model: nn.Module, hw: tuple[int, int], grid: tuple[int, int]) -> bool:
    """Can :func:`simvp_forward` run ``model`` on ``hw`` = (H, W) frames with a ``grid`` of
    tiles: a SimVP whose first encoder layer keeps the frame size, whose other encoder,
    translator and decoder convolutions are all gated with no channel state on any gate
    (mask, sliced units, removed units: the ``"tiles"`` reading), and whose every
    resolution is a whole number of tiles (frame sides divisible by ``grid`` times the
    down-sampling)."""
    if type(model) is not SimVP or len(model.encoder) < 1:  # exact types: TAU subclasses both
        return False
    strides = [_plain(layer.conv).stride for layer in model.encoder]
    scale = 2 ** sum(1 for s in strides if s != (1, 1))
    if strides[0] != (1, 1) or hw[0] % (grid[0] * scale) or hw[1] % (grid[1] * scale):
        return False
    tr = list(model.translator)
    if not (len(tr) >= 2 and all(type(b) is GASubBlock for b in tr[1:-1])):
        return False
    convs = [layer.conv for layer in list(model.encoder)[1:] + list(model.decoder)] + [tr[0], tr[-1]]
    for b in tr[1:-1]:
        convs += [b.proj1, b.dw, b.dw_dil, b.gate, b.proj2, b.mlp[0], b.mlp[1], b.mlp[3]]
    if isinstance(model.encoder[0].conv, GatedConv2d) or not all(isinstance(c, GatedConv2d) for c in convs):
        return False
    return all(c.mask is None and c.active is None and c.keep is None and c.spatial is None for c in convs)


class _Rows:
    """The active pixels of a ``[B * repeat, C, H, W]`` frame stack as tile-major ``[n, C]``
    rows (module doc), with ``background`` ``[B * repeat, C]``: the value at every other
    pixel of each frame (None: 0)."""

    def __init__(self, rows: torch.Tensor, hw: tuple[int, int], repeat: int, background: torch.Tensor | None = None):
        self.rows, self.hw, self.repeat, self.background = rows, tuple(hw), repeat, background


def simvp_forward(model: SimVP, x: torch.Tensor, plan: TilePlan, grid: tuple[int, int]) -> torch.Tensor:
    """SimVP's forecast computed on the active tiles of ``plan`` only (module doc).

    Args:
        model: a SimVP for which :func:`supports` is True, in eval mode.
        x: ``[B, T, C, H, W]`` the (data-masked) input.
        plan: the active tiles of the B samples on a ``grid`` of (rows, cols) tiles.

    Returns:
        ``[B, S, C, H, W]``: the forecast at the active pixels, the last input frame
        elsewhere.
    """
    return _forward(model, x, _Index(plan, grid))


def _forward(model: SimVP, x: torch.Tensor, ix: "_Index") -> torch.Tensor:
    """:func:`simvp_forward` given the row indices ``ix`` (an :class:`_Index`, or the
    frozen indices of :class:`.compiled_rows.CompiledRows`)."""
    B, T, C, H, W = x.shape
    S, Ch = model.horizon, model.hidden_size
    h0 = model.encoder[0](x.reshape(B * T, C, H, W))  # ungated first layer: the whole frame
    state: torch.Tensor | _Rows = h0
    for layer in list(model.encoder)[1:]:
        state = _conv_sc(layer, state, ix, T)
    if not isinstance(state, _Rows):  # a one-layer encoder: the translator reads the first layer
        state = _Rows(ix.frame_rows(state, T), (H, W), T)
    hw = state.hw
    tr = list(model.translator)
    z = _conv1x1(ix.regroup(state.rows, hw, T, to_frames=False), tr[0])  # [n, hid_t]
    for block in tr[1:-1]:
        z = _gsta(block, z, ix, hw)
    z = _conv1x1(z, tr[-1])  # [n, S * Ch]
    state = _Rows(ix.regroup(z, hw, S, to_frames=True), hw, S)  # 0 outside the tiles
    for layer in model.decoder:
        state = _conv_sc(layer, state, ix, S)
    per_sample = ix.per_sample((H, W), S)  # decoder row -> the same pixel's row in its sample
    skip = ix.frame_rows(h0.view(B, T, Ch, H, W)[:, -1], 1).index_select(0, per_sample)
    y = _conv1x1(state.rows + skip, model.readout)  # [n, C]
    last = x[:, -1].permute(0, 2, 3, 1)  # [B, H, W, C]
    if model.residual:
        y = y + ix.frame_rows(x[:, -1], 1).index_select(0, per_sample)
    out = last[:, None].expand(B, S, H, W, C).contiguous()
    out.view(-1, C).index_copy_(0, ix.positions((H, W), S), y)
    return out.permute(0, 1, 4, 2, 3)


# ---- layers on rows


def _conv_sc(layer: ConvSC, state, ix: "_Index", repeat: int) -> _Rows:
    """ConvSC (up-sampling, gated 3 x 3 convolution, GroupNorm, SiLU) on rows; ``state`` is a
    whole ``[F, C, H, W]`` frame stack or :class:`_Rows`."""
    if layer.up:
        state = ix.upsample(state)
    y, out_hw = _conv(state, layer.conv.conv, ix, repeat)
    y, background = _group_norm(y, layer.norm, ix, out_hw, repeat)
    return _Rows(layer.act(y), out_hw, repeat, layer.act(background))


def _gsta(block: GASubBlock, x: torch.Tensor, ix: "_Index", hw) -> torch.Tensor:
    """One gSTA block (:class:`GASubBlock`) on the translator's rows ``[n, dim]``: every
    convolution's output is 0 outside the tiles, so the rows are the whole state (BatchNorm
    is nonzero there, but only 1 x 1 convolutions read it)."""
    h = F.gelu(_conv1x1(_batch_norm(x, block.norm1), block.proj1))
    a, _ = _conv(_Rows(h, hw, 1), block.dw.conv, ix, 1)
    a, _ = _conv(_Rows(a, hw, 1), block.dw_dil.conv, ix, 1)
    f, g = _conv1x1(a, block.gate).chunk(2, dim=1)
    x = x + block.ls1.view(1, -1) * _conv1x1(torch.sigmoid(g) * f, block.proj2)
    m = _conv1x1(_batch_norm(x, block.norm2), block.mlp[0])
    m, _ = _conv(_Rows(m, hw, 1), block.mlp[1].conv, ix, 1)
    return x + block.ls2.view(1, -1) * _conv1x1(block.mlp[2](m), block.mlp[3])


def _conv1x1(x: torch.Tensor, conv: nn.Module) -> torch.Tensor:
    """A 1 x 1 convolution (a :class:`GatedConv2d` without channel state, or a Conv2d) on
    rows ``[n, C_in]`` -> ``[n, C_out]``."""
    c = _plain(conv)
    w = c.weight.view(c.out_channels, c.in_channels).t()
    return torch.addmm(c.bias, x, w) if c.bias is not None else x @ w


def _conv(state, conv: nn.Conv2d, ix: "_Index", repeat: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """A k x k convolution at the active tiles: ``(rows [n, C_out], output (H', W'))``. The
    tile stack (every active tile with the halo its kernel reads, :func:`~.tiles.stack_sources`)
    is gathered by one ``index_select`` from the rows, one background row per frame and one
    zero row (the padding), through an index map of the padded frame
    (:meth:`_Index.stack_rows`: one integer per pixel instead of C floats); a whole frame
    stack input (the first encoder layer's output) is gathered the same way from its
    channels-last pixels and a zero row. A kernel whose halos would copy more than the
    padded frame runs on the whole zero-padded frames, gathered from the same table. The
    kernel runs without padding."""
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = conv.kernel_size, conv.stride, conv.padding, conv.dilation
    H, W = state.hw if isinstance(state, _Rows) else tuple(state.shape[-2:])
    out_hw = ((H + 2 * ph - dh * (kh - 1) - 1) // sh + 1, (W + 2 * pw - dw * (kw - 1) - 1) // sw + 1)
    t, P, (Hp, Wp) = stack_geometry((H, W), out_hw, conv.kernel_size, conv.stride, conv.padding, conv.dilation, ix.grid)
    frames = ix.batch * repeat
    whole_frame = not isinstance(state, _Rows)
    if whole_frame:  # the first encoder layer's output: its channels-last pixels and a zero row
        C = state.shape[1]
        table = torch.cat([state.permute(0, 2, 3, 1).reshape(-1, C), state.new_zeros(1, C)])
    else:  # the rows, one background row per frame and a zero row
        C = state.rows.shape[1]
        background = state.background if state.background is not None else state.rows.new_zeros(frames, C)
        table = torch.cat([state.rows, background, state.rows.new_zeros(1, C)])
    size = ix.stack_size(t, P, (sh, sw), (Hp, Wp), repeat)
    if size <= frames * Hp * Wp:  # the tile stack
        stack = table.index_select(0, ix.stack_rows((H, W), (ph, pw), t, P, (sh, sw), (Hp, Wp), repeat, whole_frame))
        stack = stack.view(size // (P[0] * P[1]), P[0], P[1], C).permute(0, 3, 1, 2)
        y = F.conv2d(stack, conv.weight, conv.bias, conv.stride, 0, conv.dilation, conv.groups)  # [n, C_out, th, tw]
        return y.permute(0, 2, 3, 1).reshape(-1, conv.out_channels), out_hw
    # the halos would copy more than the whole padded frame: convolve the padded frames, keep the tiles
    fr = table.index_select(0, ix.padded_rows((H, W), (ph, pw), (Hp, Wp), repeat, whole_frame))
    fr = fr.view(frames, Hp, Wp, C).permute(0, 3, 1, 2)
    y = F.conv2d(fr, conv.weight, conv.bias, conv.stride, 0, conv.dilation, conv.groups)  # [F, C_out, >= H', >= W']
    y = y[..., : out_hw[0], : out_hw[1]].permute(0, 2, 3, 1).reshape(-1, conv.out_channels)
    return y.index_select(0, ix.positions(out_hw, repeat)), out_hw


def _group_norm(y: torch.Tensor, norm: nn.GroupNorm, ix: "_Index", hw, repeat: int) -> tuple[torch.Tensor, torch.Tensor]:
    """GroupNorm of a frame stack held as rows ``[n, C]`` whose other pixels are 0: the
    statistics count every pixel of the frame (two passes). Returns the normalised rows and
    the normalised value of a 0 pixel per frame and channel, ``[F, C]``."""
    C = y.shape[1]
    G, Cg = norm.num_groups, C // norm.num_groups
    frames = ix.batch * repeat
    count = float(hw[0] * hw[1] * Cg)
    P = ix.uniform(hw, repeat)
    if P is not None:  # every frame has P active pixels (the wrapper keeps as many tiles per sample)
        per = y.view(frames, P, C)
        mean = per.sum(1).view(frames, G, Cg).sum(2) / count  # [F, G]
        mean_c = mean.repeat_interleave(Cg, dim=1)  # [F, C]
        d = per - mean_c[:, None]
        s2 = (d * d).sum(1).view(frames, G, Cg).sum(2)
    else:
        frame = ix.frame_of_rows(hw, repeat)
        mean = y.new_zeros(frames, C).index_add_(0, frame, y).view(frames, G, Cg).sum(2) / count
        mean_c = mean.repeat_interleave(Cg, dim=1)
        d = y - mean_c.index_select(0, frame)
        s2 = y.new_zeros(frames, C).index_add_(0, frame, d * d).view(frames, G, Cg).sum(2)
    s2 = s2 + (hw[0] * hw[1] - ix.active_per_frame(hw, repeat))[:, None] * Cg * mean * mean  # the 0 pixels
    scale = torch.rsqrt(s2 / count + norm.eps).repeat_interleave(Cg, dim=1)  # [F, C]
    if norm.affine:
        scale = scale * norm.weight
    shift = norm.bias if norm.affine else y.new_zeros(C)
    per_row = scale[:, None] if P is not None else scale.index_select(0, frame)
    return (d * per_row).view(-1, C) + shift, shift - mean_c * scale


def _batch_norm(x: torch.Tensor, bn: nn.BatchNorm2d) -> torch.Tensor:
    """Eval-mode BatchNorm2d on rows ``[n, C]``."""
    scale = bn.weight * torch.rsqrt(bn.running_var + bn.eps)
    return x * scale + (bn.bias - bn.running_mean * scale)


# ---- index bookkeeping


class _Index:
    """Row indices of one forward's active tiles (module doc: tile-major rows), built on
    first use per geometry and cached on the :class:`~.tiles.TilePlan`. They are built with
    NumPy on the host (tens of small integer operations per geometry, each ~10x cheaper
    than a PyTorch call at these sizes: at batch 1 this bookkeeping was ~15% of a forward)
    and moved to the mask's device once."""

    def __init__(self, plan: TilePlan, grid: tuple[int, int]):
        self.plan, self.grid, self.batch = plan, tuple(grid), plan.mask.shape[0]

    def _cached(self, key, build):
        """A torch index built by ``build()`` (a NumPy int64 array), once per key."""
        dev = self.plan.mask.device
        return self.plan.cached(("rows",) + key, lambda: torch.from_numpy(np.ascontiguousarray(build())).to(dev))

    def _np(self, key, build):
        """A NumPy array built once per key (the host side of the indices)."""
        return self.plan.cached(("rows-np",) + key, build)

    def tiles(self, repeat: int) -> np.ndarray:
        """``[n_t, 3]`` int64 (frame, tile row, tile column) of the active tiles, frame-major
        (the same at every resolution: whole tiles)."""

        return self._np(("tiles", repeat), lambda: self.plan.tiles_in(self.grid, (1, 1), repeat).cpu().numpy())

    def tiles_per_frame(self, repeat: int) -> np.ndarray:
        """``[F]`` int64: active tiles of each frame."""
        return self._np(("per-frame", repeat), lambda: np.bincount(self.tiles(repeat)[:, 0], minlength=self.batch * repeat))

    def _positions(self, hw, repeat: int, pad=(0, 0), frame=None) -> np.ndarray:
        Hf, Wf = frame if frame is not None else hw

        def build():
            t = self.tiles(repeat)
            th, tw = tile_size(hw, self.grid)
            iy, jx = np.repeat(np.arange(th), tw), np.tile(np.arange(tw), th)
            y = t[:, 1:2] * th + iy[None] + pad[0]
            x = t[:, 2:3] * tw + jx[None] + pad[1]
            return (t[:, 0:1] * (Hf * Wf) + y * Wf + x).reshape(-1)

        return self._np(("pos", tuple(hw), repeat, tuple(pad), (Hf, Wf)), build)

    def positions(self, hw, repeat: int, pad=(0, 0), frame=None) -> torch.Tensor:
        """``[n]`` each row's pixel as a row of the channels-last ``[F, H_f, W_f, C]`` stack
        whose frames hold the ``hw`` frame at offset ``pad`` (default: the frame itself)."""
        Hf, Wf = frame if frame is not None else hw
        return self._cached(("pos", tuple(hw), repeat, tuple(pad), (Hf, Wf)), lambda: self._positions(hw, repeat, pad, frame))

    def frame_of_rows(self, hw, repeat: int) -> torch.Tensor:
        th, tw = tile_size(hw, self.grid)
        return self._cached(("frame", tuple(hw), repeat), lambda: np.repeat(self.tiles(repeat)[:, 0], th * tw))

    def uniform(self, hw, repeat: int) -> int | None:
        """Active pixels per frame when every frame has the same number, else None."""
        per = self.tiles_per_frame(repeat)
        th, tw = tile_size(hw, self.grid)
        return int(per[0]) * th * tw if per.size and bool((per == per[0]).all()) else None

    def active_per_frame(self, hw, repeat: int) -> torch.Tensor:
        """``[F]`` float: active pixels per frame."""
        th, tw = tile_size(hw, self.grid)
        return torch.from_numpy(self.tiles_per_frame(repeat) * (th * tw)).to(self.plan.mask.device, self.plan.mask.dtype)

    def _stack_sources(self, t, P, stride, padded, repeat: int) -> np.ndarray:
        """:func:`~.tiles.stack_sources` of the active tiles, in NumPy."""
        return self._np(("stack", tuple(t), tuple(P), tuple(stride), tuple(padded), repeat),
                        lambda: stack_sources(self.tiles(repeat), t, P, stride, padded))

    def stack_size(self, t, P, stride, padded, repeat: int) -> int:
        """The length of :meth:`_stack_sources` (no index built)."""
        return int(self.tiles(repeat).shape[0]) * P[0] * P[1]

    def _frame_map(self, hw, pad, padded, repeat: int, whole_frame: bool) -> np.ndarray:
        """``[F * Hp * Wp]``: for each pixel of the ``padded`` frames that hold an ``hw`` frame
        at offset ``pad``, its row in ``cat([rows [n], background [F], zero [1]])``: an active
        pixel's row, the frame's background row for its other pixels, the zero row for the
        padding. With ``whole_frame``: its row in ``cat([the channels-last frame stack
        [F * H * W], zero [1]])``."""

        def build():
            frames, (H, W), (Hp, Wp) = self.batch * repeat, hw, padded
            inside = (slice(None), slice(pad[0], pad[0] + H), slice(pad[1], pad[1] + W))
            if whole_frame:
                m = np.full((frames, Hp, Wp), frames * H * W, dtype=np.int64)
                m[inside] = np.arange(frames * H * W).reshape(frames, H, W)
                return m.reshape(-1)
            pos = self._positions(hw, repeat, pad, padded)
            m = np.full((frames, Hp, Wp), pos.size + frames, dtype=np.int64)
            m[inside] = pos.size + np.arange(frames)[:, None, None]
            m = m.reshape(-1)
            m[pos] = np.arange(pos.size)
            return m

        return self._np(("frame-map", tuple(hw), tuple(pad), tuple(padded), repeat, whole_frame), build)

    def padded_rows(self, hw, pad, padded, repeat: int, whole_frame: bool = False) -> torch.Tensor:
        """:meth:`_frame_map` as a torch index: the whole zero-padded frames gathered from the
        table."""
        return self._cached(("frame-map", tuple(hw), tuple(pad), tuple(padded), repeat, whole_frame),
                            lambda: self._frame_map(hw, pad, padded, repeat, whole_frame))

    def stack_rows(self, hw, pad, t, P, stride, padded, repeat: int, whole_frame: bool = False) -> torch.Tensor:
        """``[n_t * P_h * P_w]``: for each pixel of the tile stack (:meth:`_stack_sources`), its
        row in the table of :meth:`_frame_map`."""
        key = ("stack-rows", tuple(hw), tuple(pad), tuple(t), tuple(P), tuple(stride), tuple(padded), repeat, whole_frame)
        return self._cached(key, lambda: self._frame_map(hw, pad, padded, repeat, whole_frame)[
            self._stack_sources(t, P, stride, padded, repeat)])

    def frame_rows(self, frames: torch.Tensor, repeat: int) -> torch.Tensor:
        """``[n, C]`` the active pixels of a whole ``[F, C, H, W]`` frame stack."""
        C = frames.shape[1]
        return frames.permute(0, 2, 3, 1).reshape(-1, C).index_select(0, self.positions(tuple(frames.shape[-2:]), repeat))

    def upsample(self, state: _Rows) -> _Rows:
        """Nearest 2x up-sampling of rows: repeated inside their tiles, the background stays."""
        th, tw = tile_size(state.hw, self.grid)
        C = state.rows.shape[1]
        up = state.rows.view(-1, th, tw, C).repeat_interleave(2, dim=1).repeat_interleave(2, dim=2)
        return _Rows(up.reshape(-1, C), (2 * state.hw[0], 2 * state.hw[1]), state.repeat, state.background)

    def _regroup_np(self, hw, k: int) -> np.ndarray:
        """``[n_s, k]``: the row, in the stack of ``k`` frames per sample, of row ``r`` of the
        one-frame-per-sample stack in the sample's frame ``t``: ``start_b * k + t * P_b + j``
        for the ``j``-th row of sample ``b``, which has ``P_b`` rows (whole tiles)."""

        def build():
            th, tw = tile_size(hw, self.grid)
            counts = self.tiles_per_frame(1) * (th * tw)  # P_b
            start = np.cumsum(counts) - counts
            sample = np.repeat(np.arange(self.batch), counts)
            j = np.arange(int(counts.sum())) - start[sample]
            return (start[sample] * k + j)[:, None] + np.arange(k)[None] * counts[sample][:, None]

        return self._np(("regroup", tuple(hw), k), build)

    def _regroup_index(self, hw, k: int) -> torch.Tensor:
        """:meth:`_regroup_np` flattened, as a torch index."""
        return self._cached(("regroup", tuple(hw), k), lambda: self._regroup_np(hw, k).reshape(-1))

    def regroup(self, rows: torch.Tensor, hw, k: int, to_frames: bool) -> torch.Tensor:
        """SimVP's reshape between ``[B * k, C]`` frames and ``[B, k * C]`` stacked channels,
        on rows: ``[n_s * k, C]`` frame rows -> ``[n_s, k * C]`` sample rows
        (``to_frames=False``, the translator's input), or back (``to_frames=True``)."""
        idx = self._regroup_index(hw, k)
        if not to_frames:
            return rows.index_select(0, idx).view(-1, k * rows.shape[1])
        per_frame = rows.view(idx.numel(), -1)  # (row, frame) order
        return per_frame.new_empty(per_frame.shape).index_copy_(0, idx, per_frame)

    def per_sample(self, hw, k: int) -> torch.Tensor:
        """``[n_s * k]``: for each row of the ``k``-frames-per-sample stack, the row of the
        same pixel in the one-frame-per-sample stack."""

        def build():
            idx = self._regroup_np(hw, k)
            out = np.empty(idx.size, dtype=np.int64)
            out[idx.reshape(-1)] = np.repeat(np.arange(idx.shape[0]), k)
            return out

        return self._cached(("per-sample", tuple(hw), k), build)


__all__ = ["ENABLED", "supports", "simvp_forward"]
