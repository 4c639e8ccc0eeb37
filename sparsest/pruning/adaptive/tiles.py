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
"""A layer whose active tiles with their halos would copy more than this fraction of its
padded input (a large dilated kernel on small tiles) runs dense and is masked: the same
values, dense FLOPs for that layer (counted as such)."""


class TilePlan:
    """The active tiles of a batch, grouped by tile position, built once per forward and
    shared by every gated convolution of it (only the tile sizes differ by resolution).

    Args:
        tile_mask: ``[B, rows, cols]`` hard tile mask (> 0.5 = active).

    Attributes:
        mask: ``[B, rows, cols]`` the hard mask (0/1 float).
        batch: B.
        positions: ``[(row, col, samples)]`` for every tile position active in at least one
            sample; ``samples`` is an int64 tensor of the samples active there, or None when
            all B are.
    """

    def __init__(self, tile_mask: torch.Tensor):
        self.mask = (tile_mask.detach() > 0.5).to(tile_mask.dtype)
        on = self.mask.bool().cpu()
        self.batch = on.shape[0]
        self.n_active = int(on.sum())
        self.positions = []
        count = on.sum(0)  # [rows, cols]: samples active at each position
        self.shared = bool(((count == 0) | (count == self.batch)).all())  # every sample has the same tiles
        counts = count.tolist()
        for r, c in torch.nonzero(count).tolist():
            if counts[r][c] == self.batch:
                self.positions.append((r, c, None))
            else:
                self.positions.append((r, c, torch.nonzero(on[:, r, c]).squeeze(1).to(tile_mask.device)))
        self._rows: dict = {}

    def pixels(self, hw: tuple[int, int], grid: tuple[int, int]) -> list:
        """``[(b, pixel_index)]``: the active pixels of the flattened ``hw`` frame of each
        sample (``b`` None when every sample has the same tiles)."""
        key = ("pixels", hw)
        if key not in self._rows:
            m = expand_tiles(self.mask, hw).flatten(1) > 0.5  # [B, H * W]
            if self.batch == 1 or bool((m == m[:1]).all()):
                self._rows[key] = [(None, torch.nonzero(m[0]).squeeze(1))]
            else:
                self._rows[key] = [(b, torch.nonzero(m[b]).squeeze(1)) for b in range(self.batch)]
        return self._rows[key]

    def spatial_index(self, xp_hw, out_hw, t, s, P, o) -> tuple[torch.Tensor, torch.Tensor, int]:
        """For a plan whose samples share their tiles (:attr:`shared`): flat spatial indices of
        the gather (into the padded ``xp_hw`` frame, ``[n, P_h, P_w]`` order) and of the scatter
        (into the ``out_hw`` frame, ``[n, t_h, t_w]`` order), and n, the tiles inside this frame."""
        key = ("spatial", tuple(xp_hw), tuple(out_hw), t, s, P, o)
        if key not in self._rows:
            (th, tw), (sh, sw), (P_h, P_w), (Ho, Wo) = t, s, P, o
            Wp, Wq = xp_hw[1], out_hw[1]
            dev = self.mask.device
            inside = [(r, c) for r, c, _ in self.positions if r * th < Ho and c * tw < Wo]
            pr = torch.tensor([r for r, _ in inside], dtype=torch.long, device=dev)
            pc = torch.tensor([c for _, c in inside], dtype=torch.long, device=dev)
            iy, ix = torch.arange(P_h, device=dev), torch.arange(P_w, device=dev)
            sp = (pr * th * sh * Wp + pc * tw * sw)[:, None, None] + iy[None, :, None] * Wp + ix[None, None, :]
            oy, ox = torch.arange(th, device=dev), torch.arange(tw, device=dev)
            so = (pr * th * Wq + pc * tw)[:, None, None] + oy[None, :, None] * Wq + ox[None, None, :]
            self._rows[key] = (sp.reshape(-1), so.reshape(-1), len(inside))
        return self._rows[key]

    def linear_index(self, x_shape, xp_shape, out_shape, t, s, P, o, repeat: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Flat indices of the gather (into the padded input, ``[n, C_in, P_h, P_w]`` order) and
        of the scatter (into the output, ``[n, C_out, t_h, t_w]`` order) of one convolution
        geometry, built once per forward and layer shape (vectorised; one ``index_select`` and
        one ``index_copy_`` per convolution instead of a loop over tiles)."""
        key = ("linear", tuple(x_shape), tuple(xp_shape), tuple(out_shape), t, s, P, o, repeat)
        if key in self._rows:
            return self._rows[key]
        (th, tw), (sh, sw), (P_h, P_w), (Ho, Wo) = t, s, P, o
        rows_in, C = x_shape[0], x_shape[1]
        Hp, Wp = xp_shape[2], xp_shape[3]
        C_out, Hq, Wq = out_shape[1], out_shape[2], out_shape[3]
        dev = self.mask.device
        inside = [(k, r, c) for k, (r, c, _) in enumerate(self.positions) if r * th < Ho and c * tw < Wo]  # tiles in this frame
        if not inside:
            empty = torch.zeros(0, dtype=torch.long, device=dev)
            self._rows[key] = (empty, empty)
            return self._rows[key]
        if self.shared:  # every row computes every position: no per-position loop
            pr = torch.tensor([r for _, r, _ in inside], device=dev)
            pc = torch.tensor([c for _, _, c in inside], device=dev)
            rr = torch.arange(rows_in, device=dev).repeat(len(inside))
            tr, tc = pr.repeat_interleave(rows_in), pc.repeat_interleave(rows_in)
        else:
            rr, tr, tc = [], [], []
            for k, r, c in inside:
                rows = self.rows(k, repeat)
                rows = torch.arange(rows_in, device=dev) if rows is None else rows
                rr.append(rows)
                tr.append(torch.full_like(rows, r))
                tc.append(torch.full_like(rows, c))
            rr, tr, tc = torch.cat(rr), torch.cat(tr), torch.cat(tc)
        iy, ix = torch.arange(P_h, device=dev), torch.arange(P_w, device=dev)
        sp = (tr * th * sh * Wp + tc * tw * sw)[:, None, None] + iy[None, :, None] * Wp + ix[None, None, :]  # [n, P_h, P_w]
        lin_in = ((rr[:, None] * C + torch.arange(C, device=dev)[None]) * (Hp * Wp))[:, :, None, None] + sp[:, None]
        oy, ox = torch.arange(th, device=dev), torch.arange(tw, device=dev)
        so = (tr * th * Wq + tc * tw)[:, None, None] + oy[None, :, None] * Wq + ox[None, None, :]  # [n, t_h, t_w]
        lin_out = ((rr[:, None] * C_out + torch.arange(C_out, device=dev)[None]) * (Hq * Wq))[:, :, None, None] + so[:, None]
        self._rows[key] = (lin_in.reshape(-1), lin_out.reshape(-1))
        return self._rows[key]

    def rows(self, k: int, repeat: int) -> torch.Tensor | None:
        """Rows of a ``[B * repeat, ...]`` tensor (sample-major frames) that position ``k``
        computes (None = all)."""
        bs = self.positions[k][2]
        if bs is None or repeat == 1:
            return bs
        key = (k, repeat)
        if key not in self._rows:
            self._rows[key] = (bs[:, None] * repeat + torch.arange(repeat, device=bs.device)).reshape(-1)
        return self._rows[key]


def active_tiles(tile_mask: torch.Tensor) -> TilePlan:
    """The :class:`TilePlan` of a hard tile mask ``[B, rows, cols]``."""
    return TilePlan(tile_mask)


def tiled_conv2d(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, stride, padding, dilation, groups: int,
                 plan: TilePlan, grid: tuple[int, int], repeat: int = 1) -> torch.Tensor:
    """A convolution computed on the active tiles only (gather, compute, scatter).

    Args:
        x: ``[B * repeat, C_in, H, W]`` input (``repeat`` frames per sample, sample-major,
            as SimVP's ``[B * T]`` encoder batch).
        weight, bias, stride, padding, dilation, groups: as :func:`torch.nn.functional.conv2d`.
        plan: the active tiles (:func:`active_tiles`) of the B samples.
        grid: (rows, cols) of the tile grid.
        repeat: frames per sample in ``x``.

    Returns:
        ``[B * repeat, C_out, H_out, W_out]``: the convolution's output at the active tiles,
        0 elsewhere (equal to ``conv2d(...) * expand_tiles(mask, ...)``).
    """
    sh, sw = _pair(stride)
    ph, pw = _pair(padding)
    dh, dw = _pair(dilation)
    kh, kw = weight.shape[-2:]
    rows_in, _, H, W = x.shape
    Ho = (H + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    Wo = (W + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    th, tw = tile_size((Ho, Wo), grid)
    out = x.new_zeros(rows_in, weight.shape[0], grid[0] * th, grid[1] * tw)
    if not plan.positions:
        return out[..., :Ho, :Wo]
    if (kh, kw, sh, sw, ph, pw) == (1, 1, 1, 1, 0, 0) and groups == 1:  # pointwise: gather pixels, one matmul
        return _pointwise(x, weight, bias, plan, grid, repeat)
    P_h, P_w = (th - 1) * sh + dh * (kh - 1) + 1, (tw - 1) * sw + dw * (kw - 1) + 1
    need_h, need_w = (grid[0] - 1) * th * sh + P_h, (grid[1] - 1) * tw * sw + P_w
    gathered = sum(rows_in if p[2] is None else p[2].numel() * repeat for p in plan.positions) * P_h * P_w
    if gathered > MAX_GATHER * rows_in * (H + 2 * ph) * (W + 2 * pw):  # the halos would copy more than the frame
        y = F.conv2d(x, weight, bias, (sh, sw), (ph, pw), (dh, dw), groups)
        return y * expand_tiles(plan.mask.to(y.dtype), (Ho, Wo)).repeat_interleave(repeat, dim=0)[:, None]
    xp = F.pad(x, (pw, max(need_w - W - pw, 0), ph, max(need_h - H - ph, 0)))
    if plan.shared:  # every row computes the same tiles: spatial indices only, shared by all channels and rows
        sp_in, sp_out, n = plan.spatial_index(xp.shape[-2:], out.shape[-2:], (th, tw), (sh, sw), (P_h, P_w), (Ho, Wo))
        if n == 0:
            return out[..., :Ho, :Wo]
        C = x.shape[1]
        stack = xp.reshape(rows_in, C, -1).index_select(2, sp_in).view(rows_in, C, n, P_h, P_w)
        stack = stack.transpose(1, 2).reshape(rows_in * n, C, P_h, P_w)  # gather: [rows * n, C_in, P_h, P_w]
        y = F.conv2d(stack, weight, bias, (sh, sw), 0, (dh, dw), groups)  # compute: [rows * n, C_out, th, tw]
        y = y.view(rows_in, n, -1, th * tw).transpose(1, 2).reshape(rows_in, y.shape[1], n * th * tw)
        out.view(rows_in, out.shape[1], -1).index_copy_(2, sp_out, y)  # scatter
        return out[..., :Ho, :Wo]
    lin_in, lin_out = plan.linear_index(x.shape, xp.shape, out.shape, (th, tw), (sh, sw), (P_h, P_w), (Ho, Wo), repeat)
    if lin_in.numel() == 0:
        return out[..., :Ho, :Wo]
    stack = xp.reshape(-1).index_select(0, lin_in).view(-1, x.shape[1], P_h, P_w)  # gather: [n, C_in, P_h, P_w]
    y = F.conv2d(stack, weight, bias, (sh, sw), 0, (dh, dw), groups)  # compute: [n, C_out, th, tw]
    out.view(-1).index_copy_(0, lin_out, y.reshape(-1))  # scatter
    return out[..., :Ho, :Wo]


def _pointwise(x, weight, bias, plan: TilePlan, grid, repeat: int) -> torch.Tensor:
    """A 1 x 1 convolution on the active pixels: per sample, gather its active pixels of the
    flattened frame, one matrix product, scatter (no halo, no per-tile loop)."""
    rows_in, C, H, W = x.shape
    w = weight.view(weight.shape[0], C)
    out = x.new_zeros(rows_in, weight.shape[0], H * W)
    flat = x.reshape(rows_in, C, H * W)
    for b, pix in plan.pixels((H, W), grid):
        rows = slice(b * repeat, (b + 1) * repeat) if b is not None else slice(None)
        y = torch.matmul(w, flat[rows].index_select(2, pix))  # [rows, C_out, n]
        if bias is not None:
            y = y + bias[:, None]
        out[rows].index_copy_(2, pix, y)
    return out.view(rows_in, -1, H, W)


def _pair(v) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[1]))


__all__ = ["tile_size", "expand_tiles", "tile_scores", "TilePlan", "active_tiles", "tiled_conv2d"]
