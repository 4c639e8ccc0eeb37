"""Spatial tiles: where a sample's data mask really saves compute in a dense CNN.

Dyna-Pruner (Zhang et al., arXiv:2606.15346) skips uninformative regions; in a fully
convolutional network the computation a region owns is the convolution outputs at its
positions (``../shared/design/METHODS.md`` section 2, "spatial reading"). Following SBNet
(Ren et al., CVPR 2018) and DynConv (Verelst & Tuytelaars, CVPR 2020), a gated convolution
computes only its *active tiles*: the frame is split into a fixed grid of ``rows x cols``
tiles (the same regions at every resolution of the network, so a stride-2 layer's tiles
are half as large), a sample's tile mask says which tiles are active, and

1. **gather**: each active tile is cut out of the input with the halo its kernel reads
   (``(t - 1) * stride + dilation * (k - 1) + 1`` pixels per side, zero outside the frame,
   as the convolution's own zero padding),
2. **compute**: the dense kernel runs on the stack of tiles with no padding,
3. **scatter**: the outputs are written into a zero map.

A 1 x 1 convolution is one matrix product on the gathered active pixels; a kernel whose
halos would copy more than the taps of its active pixels gathers the taps instead (see
:data:`KXK`). Features are held channels-last (``torch.channels_last``), so every gather and
scatter moves whole pixel rows, one call for the whole batch, and the layers between
convolutions keep that layout (measured: this, and one plan shared by all layers, is what
made the tiled path faster than dense on CPU; gathers along the last axis of an NCHW tensor
were several times slower).

Outputs outside the active tiles are 0; inside they equal the dense convolution exactly,
so tiled execution equals the *masked dense* computation ``conv(x) * mask`` (tested), which
is what training uses (with soft masks until they anneal to hard, see
:mod:`.schedule`). FLOPs scale with the active output positions (the halo is read, never
computed); the gather copies the halo.

All functions take the tile grid explicitly; tile sizes at a resolution ``H x W`` are
``ceil(H / rows) x ceil(W / cols)`` and the last row / column of tiles is cropped.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F


def tile_size(hw: tuple[int, int], grid: tuple[int, int]) -> tuple[int, int]:
    """Tile height and width at resolution ``hw`` for a ``grid`` of (rows, cols) tiles."""
    return math.ceil(hw[0] / grid[0]), math.ceil(hw[1] / grid[1])


def expand_tiles(tile_mask: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
    """Per-pixel mask at resolution ``hw`` from a tile mask.

    Shapes: ``[B, rows, cols]`` -> ``[B, H, W]`` (nearest: every pixel takes its tile's
    value; soft values pass through unchanged, so gradients reach the tile scores).
    """
    th, tw = tile_size(hw, tile_mask.shape[-2:])
    m = tile_mask.repeat_interleave(th, dim=-2).repeat_interleave(tw, dim=-1)
    return m[..., : hw[0], : hw[1]]


def tile_scores(scores: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """Mean of the importance map over each tile.

    Shapes: S ``[B, H, W]`` -> ``[B, rows, cols]``. The frame is zero-padded to whole tiles
    and each tile averaged over its pixels inside the frame (the same tiles as
    :func:`expand_tiles`).
    """
    H, W = scores.shape[-2:]
    th, tw = tile_size((H, W), grid)
    ph, pw = grid[0] * th - H, grid[1] * tw - W
    s = F.pad(scores[:, None], (0, pw, 0, ph))
    ones = F.pad(torch.ones_like(scores[:1, None]), (0, pw, 0, ph))
    return (F.avg_pool2d(s, (th, tw)) / F.avg_pool2d(ones, (th, tw)).clamp_min(1e-12))[:, 0]


MAX_GATHER = 0.6
"""A grouped convolution (neither dense nor depthwise) whose active tiles with their halos
would copy more than this fraction of its padded input runs dense and is masked (the same
values, dense FLOPs for that layer, counted as such). Dense and depthwise convolutions
always compute their active tiles (:data:`KXK`)."""


KXK = "auto"
"""How a k x k dense or depthwise convolution computes its active tiles: ``"stack"`` (gather
the tiles with their halo, the dense kernel on the stack, scatter), ``"pixels"`` (im2col
restricted to the active output pixels: the k * k taps of each, one matrix product, or for
a depthwise kernel the same kernel on the stack of k x k tap patches), or ``"auto"``
(default): the stack unless its halos would copy more values than the pixels' taps (on
this CPU the channels-last stack was faster even for SimVP's 7 x 7 dilation-3 kernel on
4 x 4-pixel tiles, whose halos copy 30x the tile). The same values either way (tested)."""


class TilePlan:
    """The active tiles of a batch, built once per forward and shared by every gated
    convolution of it (only the tile sizes differ by resolution); the row indices each
    resolution and geometry needs are built on first use and cached here.

    Args:
        tile_mask: ``[B, rows, cols]`` hard tile mask (> 0.5 = active).

    Attributes:
        mask: ``[B, rows, cols]`` the hard mask (0/1 float).
        n_active: active tiles over all samples.
    """

    def __init__(self, tile_mask: torch.Tensor):
        self.mask = (tile_mask.detach() > 0.5).to(tile_mask.dtype)
        self.n_active = int(self.mask.sum())
        self._cache: dict = {}

    def active_rows(self, hw: tuple[int, int], repeat: int) -> torch.Tensor:
        """``[n]`` int64: the active pixels of a ``[B * repeat, H, W]`` frame stack as rows of
        its channels-last ``[B * repeat * H * W, C]`` matrix (frames sample-major)."""

        def build():
            m = expand_tiles(self.mask, hw) > 0.5  # [B, H, W]
            return torch.nonzero(m.repeat_interleave(repeat, dim=0).reshape(-1)).squeeze(1)

        return self.cached(("rows", tuple(hw), repeat), build)

    def tiles_in(self, out_hw: tuple[int, int], t: tuple[int, int], repeat: int) -> torch.Tensor:
        """``[n, 3]`` int64 (frame, tile row, tile column) of every active tile that lies in
        an ``out_hw`` frame with ``t`` = (t_h, t_w) pixel tiles."""

        def build():
            rows, cols = -(-out_hw[0] // t[0]), -(-out_hw[1] // t[1])  # tiles that start inside the frame
            return torch.nonzero((self.mask[:, :rows, :cols] > 0.5).repeat_interleave(repeat, dim=0))

        return self.cached(("tiles", tuple(out_hw), tuple(t), repeat), build)

    def cached(self, key, build):
        """``build()`` once per plan and ``key`` (index tensors of one layer geometry)."""
        if key not in self._cache:
            self._cache[key] = build()
        return self._cache[key]


def active_tiles(tile_mask: torch.Tensor) -> TilePlan:
    """The :class:`TilePlan` of a hard tile mask ``[B, rows, cols]``."""
    return TilePlan(tile_mask)


def tiled_conv2d(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, stride, padding, dilation, groups: int,
                 plan: TilePlan, grid: tuple[int, int], repeat: int = 1) -> torch.Tensor:
    """A convolution computed on the active tiles only (gather, compute, scatter).

    Features are held channels-last (``torch.channels_last``: an ``[N, C, H, W]`` tensor whose
    memory is ``[N, H, W, C]``), so a pixel's channels are one contiguous row: every gather and
    scatter moves whole rows, for all samples at once. The output is channels-last too, and
    elementwise layers between convolutions keep that layout, so a chain of tiled layers
    converts only its first input.

    Args:
        x: ``[B * repeat, C_in, H, W]`` input (``repeat`` frames per sample, sample-major,
            as SimVP's ``[B * T]`` encoder batch), any memory format.
        weight, bias, stride, padding, dilation, groups: as :func:`torch.nn.functional.conv2d`.
        plan: the active tiles (:func:`active_tiles`) of the B samples.
        grid: (rows, cols) of the tile grid.
        repeat: frames per sample in ``x``.

    Returns:
        ``[B * repeat, C_out, H_out, W_out]`` (channels-last memory): the convolution's output
        at the active tiles, 0 elsewhere (equal to ``conv2d(...) * expand_tiles(mask, ...)``).
    """
    sh, sw = _pair(stride)
    ph, pw = _pair(padding)
    dh, dw = _pair(dilation)
    kh, kw = weight.shape[-2:]
    rows_in, C, H, W = x.shape
    C_out = weight.shape[0]
    Ho = (H + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    Wo = (W + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    (th, tw), (P_h, P_w), padded = stack_geometry((H, W), (Ho, Wo), (kh, kw), (sh, sw), (ph, pw), (dh, dw), grid)
    if plan.n_active == 0:
        return x.new_zeros(rows_in, C_out, Ho, Wo)
    if (kh, kw, sh, sw, ph, pw) == (1, 1, 1, 1, 0, 0) and groups == 1:  # pointwise: gather pixels, one matmul
        return _pointwise(x.contiguous(memory_format=torch.channels_last), weight, bias, plan, repeat)  # no-op when it is
    # k x k: the zero-padded channels-last copy is made from any layout (_padded_rows)
    tiles = plan.tiles_in((Ho, Wo), (th, tw), repeat)
    gathered = tiles.shape[0] * P_h * P_w  # pixel rows the tile stack would copy
    if groups == 1 or groups == C == C_out:  # dense or depthwise
        if KXK == "pixels" or KXK == "auto" and gathered > plan.active_rows((Ho, Wo), repeat).numel() * kh * kw:
            return _pixel_conv(x, weight, bias, (sh, sw), (ph, pw), (dh, dw), groups, plan, repeat, (Ho, Wo))
    elif gathered > MAX_GATHER * rows_in * (H + 2 * ph) * (W + 2 * pw):  # grouped: the halos would copy more than the frame
        y = F.conv2d(x.contiguous(memory_format=torch.channels_last), weight, bias, (sh, sw), (ph, pw), (dh, dw), groups)
        return y * expand_tiles(plan.mask.to(y.dtype), (Ho, Wo)).repeat_interleave(repeat, dim=0)[:, None]
    return _stack_conv(x, weight, bias, (sh, sw), (ph, pw), (dh, dw), groups, plan, tiles, (th, tw), (P_h, P_w), padded, (Ho, Wo),
                       grid)


def stack_geometry(hw, out_hw, kernel, stride, padding, dilation, grid) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int]]:
    """``(t, P, padded)`` of a convolution computed on a tile stack: the tile size ``t`` at
    the output resolution ``out_hw``, the input window ``P`` = ``(t - 1) * stride +
    dilation * (k - 1) + 1`` each output tile reads, and the zero-padded input frame
    ``padded`` that holds every tile's window (the convolution's padding, and more where
    the last tiles' windows reach past it). All (height, width)."""
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = _pair(kernel), _pair(stride), _pair(padding), _pair(dilation)
    th, tw = tile_size(out_hw, grid)
    P = ((th - 1) * sh + dh * (kh - 1) + 1, (tw - 1) * sw + dw * (kw - 1) + 1)
    padded = (max(hw[0] + 2 * ph, (grid[0] - 1) * th * sh + P[0]), max(hw[1] + 2 * pw, (grid[1] - 1) * tw * sw + P[1]))
    return (th, tw), P, padded


def stack_sources(tiles: torch.Tensor, t, P, stride, padded) -> torch.Tensor:
    """``[n * P_h * P_w]`` int64: the rows of the zero-padded channels-last
    ``[F * Hp * Wp, C]`` input (:func:`stack_geometry`) that form the input window of each
    tile ``tiles`` ``[n, 3]`` (frame, tile row, tile column), tile-major, raster order; a
    NumPy ``tiles`` gives a NumPy array."""
    (th, tw), (P_h, P_w), (sh, sw), (Hp, Wp) = t, P, _pair(stride), padded
    f, r, c = tiles[:, 0], tiles[:, 1], tiles[:, 2]
    if isinstance(tiles, np.ndarray):  # the compact rows build their indices on the host (rows._Index)
        iy, ix = np.arange(P_h), np.arange(P_w)
    else:
        iy, ix = torch.arange(P_h, device=tiles.device), torch.arange(P_w, device=tiles.device)
    src = (f * (Hp * Wp) + r * th * sh * Wp + c * tw * sw)[:, None, None] + iy[None, :, None] * Wp + ix[None, None, :]
    return src.reshape(-1)


def _padded_rows(x: torch.Tensor, pad: tuple[int, int], hw: tuple[int, int]) -> torch.Tensor:
    """``[N * Hp * Wp, C]``: the channels-last rows of ``x`` zero-padded by ``pad`` = (top, left)
    into an ``hw`` = (Hp, Wp) frame (the convolution's zero padding, and zeros past the frame
    where the last tiles' halos reach)."""
    N, C, H, W = x.shape
    xp = x.new_zeros(N, hw[0], hw[1], C)
    xp[:, pad[0] : pad[0] + H, pad[1] : pad[1] + W] = x.permute(0, 2, 3, 1)
    return xp.view(-1, C)


def _scatter_rows(rows: torch.Tensor, values: torch.Tensor, shape: tuple[int, int, int, int]) -> torch.Tensor:
    """A zero ``[N, C, H, W]`` map (channels-last memory) with ``values`` ``[n, C]`` written at
    the channels-last rows ``rows`` ``[n]``."""
    N, C, H, W = shape
    out = values.new_zeros(N, H, W, C)
    out.view(-1, C).index_copy_(0, rows, values)
    return out.permute(0, 3, 1, 2)


def _pointwise(x, weight, bias, plan: TilePlan, repeat: int) -> torch.Tensor:
    """A 1 x 1 convolution on the active pixels of every frame: one row gather, one matrix
    product, one row scatter."""
    N, C, H, W = x.shape
    C_out = weight.shape[0]
    rows = plan.active_rows((H, W), repeat)
    xs = x.permute(0, 2, 3, 1).reshape(-1, C).index_select(0, rows)  # [n, C] (a view before the gather)
    w = weight.view(C_out, C).t()
    y = torch.addmm(bias, xs, w) if bias is not None else torch.mm(xs, w)  # [n, C_out]
    return _scatter_rows(rows, y, (N, C_out, H, W))


def _pixel_conv(x, weight, bias, stride, padding, dilation, groups: int, plan: TilePlan, repeat: int,
                out_hw: tuple[int, int]) -> torch.Tensor:
    """A k x k convolution (dense or depthwise) at the active output pixels only: gather the
    ``k * k`` input taps of every active pixel from the zero-padded input (im2col restricted
    to the active pixels), then one matrix product (dense) or the depthwise kernel on the
    stack of ``k x k`` tap patches (the dilation is in the gather), scatter. Unlike the tile
    stack it copies no halo, so it also serves large dilated kernels on small tiles."""
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    N, C, H, W = x.shape
    C_out, kh, kw = weight.shape[0], weight.shape[-2], weight.shape[-1]
    Ho, Wo = out_hw
    Hp, Wp = H + 2 * ph, W + 2 * pw
    rows = plan.active_rows((Ho, Wo), repeat)

    def build():
        f, p = rows // (Ho * Wo), rows % (Ho * Wo)
        base = f * (Hp * Wp) + (p // Wo) * sh * Wp + (p % Wo) * sw
        ty = (torch.arange(kh, device=rows.device) * dh).repeat_interleave(kw)
        tx = (torch.arange(kw, device=rows.device) * dw).repeat(kh)
        return (base[:, None] + (ty * Wp + tx)[None]).reshape(-1)  # [n * kh * kw], tap-major per pixel

    taps = plan.cached(("taps", (H, W), (Ho, Wo), (kh, kw), stride, padding, dilation, repeat), build)
    cols = _padded_rows(x, (ph, pw), (Hp, Wp)).index_select(0, taps)  # [n * kh * kw, C]
    n = rows.numel()
    if groups == 1:
        w = weight.permute(0, 2, 3, 1).reshape(C_out, kh * kw * C).t()  # taps-then-channels, as the gather
        y = torch.addmm(bias, cols.view(n, -1), w) if bias is not None else torch.mm(cols.view(n, -1), w)
    else:  # depthwise: the kernel on n patches of k x k taps (channels-last, no copy)
        y = F.conv2d(cols.view(n, kh, kw, C).permute(0, 3, 1, 2), weight, bias, 1, 0, 1, groups).reshape(n, C_out)
    return _scatter_rows(rows, y, (N, C_out, Ho, Wo))


def _stack_conv(x, weight, bias, stride, padding, dilation, groups: int, plan: TilePlan, tiles: torch.Tensor, t, P, padded,
                out_hw, grid) -> torch.Tensor:
    """The tile stack: every active tile with its halo is gathered (channels-last rows,
    :func:`stack_sources`) into ``[n, C, P_h, P_w]``, the convolution runs on the stack
    without padding, and its ``[n, C_out, t_h, t_w]`` outputs are scattered into a zero map
    of whole tiles, cropped to the frame."""
    (th, tw), (P_h, P_w), (Ho, Wo) = t, P, out_hw
    N, C, H, W = x.shape
    C_out = weight.shape[0]
    Hq, Wq = grid[0] * th, grid[1] * tw
    n = tiles.shape[0]

    def build():
        f, r, c = tiles[:, 0], tiles[:, 1], tiles[:, 2]
        oy, ox = torch.arange(th, device=tiles.device), torch.arange(tw, device=tiles.device)
        dst = (f * (Hq * Wq) + r * th * Wq + c * tw)[:, None, None] + oy[None, :, None] * Wq + ox[None, None, :]
        return stack_sources(tiles, t, P, stride, padded), dst.reshape(-1)

    src, dst = plan.cached(("stack", (H, W), tuple(padded), (Hq, Wq), t, P, stride, N), build)
    stack = _padded_rows(x, padding, padded).index_select(0, src).view(n, P_h, P_w, C).permute(0, 3, 1, 2)
    y = F.conv2d(stack, weight, bias, stride, 0, dilation, groups)  # [n, C_out, th, tw]
    out = _scatter_rows(dst, y.permute(0, 2, 3, 1).reshape(-1, C_out), (N, C_out, Hq, Wq))
    return out[..., :Ho, :Wo]


def _pair(v) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[1]))


__all__ = ["tile_size", "expand_tiles", "tile_scores", "TilePlan", "active_tiles", "tiled_conv2d", "stack_geometry", "stack_sources"]
