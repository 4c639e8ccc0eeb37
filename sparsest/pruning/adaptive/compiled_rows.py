"""The compact-row SimVP forward (:mod:`.rows`) through ``torch.compile``.

:func:`.rows.simvp_forward` builds its row indices with NumPy on the host while it runs,
which ``torch.compile`` cannot trace. :class:`CompiledRows` splits a forward in two: the
host computes the forward's indices first (the *recipe*: which :class:`.rows._Index`
methods the network calls, with which arguments, recorded once per input shape and tile
count), then one compiled graph runs the whole network on tensors only.
"""

from __future__ import annotations

import torch

from ...backbones.grid.simvp import SimVP
from .rows import _forward, _Index
from .tiles import TilePlan

_LEAVES = ("positions", "_regroup_index", "per_sample", "stack_rows", "padded_rows", "frame_of_rows", "active_per_frame",
           "uniform", "stack_size")
"""The :class:`_Index` methods that :func:`_forward` reads (directly or through ``frame_rows`` /
``regroup``): the indices of a forward are their results."""


class _Recording(_Index):
    """An :class:`_Index` that records which of the :data:`_LEAVES` a forward calls, with
    which arguments (the *recipe* of the forward's indices; the same for every plan of one
    input shape and per-frame tile layout)."""

    def __init__(self, plan: TilePlan, grid):
        super().__init__(plan, grid)
        self.calls: list = []


class _Frozen(_Index):
    """The indices of one forward, computed beforehand (:meth:`CompiledRows.__call__`):
    every leaf call returns its stored result, so :func:`_forward` runs on tensors only and
    can be traced by ``torch.compile``."""

    def __init__(self, grid, batch: int, values: dict):
        self.grid, self.batch, self.values = tuple(grid), batch, values


def _leaf(name):
    base = getattr(_Index, name)

    def record(self, *args, **kwargs):
        key = (name, args, tuple(sorted(kwargs.items())))
        if key not in self.calls:
            self.calls.append(key)
        return base(self, *args, **kwargs)

    def stored(self, *args, **kwargs):
        return self.values[(name, args, tuple(sorted(kwargs.items())))]

    return record, stored


for _name in _LEAVES:
    _r, _s = _leaf(_name)
    setattr(_Recording, _name, _r)
    setattr(_Frozen, _name, _s)


class CompiledRows:
    """:func:`simvp_forward` of one model through ``torch.compile``: the host builds a
    forward's row indices (NumPy, as the eager path), then one compiled graph runs the
    whole network on them, its row-wise operators (GroupNorm on rows, activations, gate
    products, residual sums, BatchNorm) fused by Inductor instead of ~10 dispatcher calls
    each.

    The shapes of a forward depend on the batch size and the number of active tiles per
    frame only (the wrapper keeps as many tiles per sample), not on which tiles are active,
    so one compiled graph serves every sample of a stream; a new batch size or tile count
    compiles again (``torch.compile``'s own cache; automatic dynamic shapes after the first
    change). The first call per input shape and tile count per sample also runs the eager
    forward once, to learn which indices the network reads (the recipe: which path each
    convolution takes depends on the tile count). The values equal :func:`simvp_forward`
    (tested, to float rounding).

    Args:
        model: a SimVP for which :func:`supports` is True, in eval mode.
        grid: (rows, cols) of the tile grid.
        **compile_options: passed to ``torch.compile`` (e.g. ``mode``).
    """

    def __init__(self, model: SimVP, grid: tuple[int, int], **compile_options):
        self.model, self.grid = model, tuple(grid)
        self.recipes: dict = {}
        self._fn = torch.compile(lambda x, ix: _forward(self.model, x, ix), **compile_options)

    def __call__(self, x: torch.Tensor, plan: TilePlan) -> torch.Tensor:
        key = (tuple(x.shape), tuple(plan.mask.flatten(1).sum(1).to(torch.int64).tolist()))  # tiles per sample
        ix = _Index(plan, self.grid)
        if key not in self.recipes:
            rec = _Recording(plan, self.grid)
            _forward(self.model, x, rec)
            self.recipes[key] = rec.calls
        values = {k: getattr(ix, k[0])(*k[1], **dict(k[2])) for k in self.recipes[key]}
        return self._fn(x, _Frozen(self.grid, ix.batch, values))


__all__ = ["CompiledRows"]
