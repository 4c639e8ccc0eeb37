"""Coarsening grids by block means (radar frames at full resolution are heavy for a CPU)."""

from __future__ import annotations

import numpy as np


def block_mean(values: np.ndarray, factor: int, min_valid: float = 0.5) -> np.ndarray:
    """Mean of each ``factor x factor`` block of the last two axes, over its valid pixels.

    One vectorised reshape (``[..., H/f, f, W/f, f]``), no loop over pixels. ``NaN`` pixels
    (missing) are left out of their block's mean; a block with fewer than
    ``min_valid * factor**2`` valid pixels is ``NaN`` (a block of only missing pixels is
    always ``NaN``, never 0).

    Shapes: ``values`` ``[..., H, W]`` float -> ``[..., H / f, W / f]`` float32.

    Raises:
        ValueError: ``factor`` < 1, or H or W not a multiple of ``factor`` (pad or trim first).
    """
    f = int(factor)
    *lead, H, W = values.shape
    if f < 1 or H % f or W % f:
        raise ValueError(f"block_mean: {H} x {W} is not a whole number of {factor} x {factor} blocks")
    if f == 1:
        return values.astype(np.float32, copy=True)
    blocks = values.reshape(*lead, H // f, f, W // f, f)
    valid = ~np.isnan(blocks)
    n = valid.sum(axis=(-3, -1))
    total = np.where(valid, blocks, 0).sum(axis=(-3, -1), dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = total / n
    out[n < min_valid * f * f] = np.nan
    return out.astype(np.float32)


def block_centres(coords: np.ndarray, factor: int) -> np.ndarray:
    """Centre coordinate of each block of ``factor`` consecutive pixels: ``[H]`` -> ``[H / f]``."""
    c = np.asarray(coords, dtype=np.float64)
    return c.reshape(-1, int(factor)).mean(axis=1)


def span_to_multiple(start: int, stop: int, size: int, factor: int) -> tuple[int, int]:
    """Grow ``[start, stop)`` to the nearest length that is a multiple of ``factor``, about
    evenly on both sides and kept inside ``[0, size)``; trimmed instead (evenly) when the
    grown span would not fit."""
    f = int(factor)
    n = stop - start
    want = -(-n // f) * f
    if want > size:
        want = (n // f) * f
        a = start + (n - want) // 2
        return a, a + want
    a = start - (want - n) // 2
    a = max(0, min(a, size - want))
    return a, a + want


__all__ = ["block_mean", "block_centres", "span_to_multiple"]
