"""A DDP-aware sampler over the kept windows, and a dataset view that adds index and weight.

Every rank holds the same kept set (derived from the same synchronised scores, seed and
epoch); :class:`PrunedSampler` shuffles it with the epoch's generator and gives rank k the
items ``k, k + W, k + 2W, ...`` (W = world size): shards are disjoint and together cover the
kept set. When the kept count is not a multiple of W, the last W - (K mod W) slots are
filled with *padding* items (a repeat of a kept window, flagged ``pad`` and weighted 0), so
every rank runs the same number of steps (DDP needs it) without counting a window twice.
"""

from __future__ import annotations

import time

import torch
from torch.utils.data import Dataset, Sampler

from .policy import epoch_generator


def dist_info() -> tuple[int, int]:
    """``(rank, world_size)`` of the default process group, ``(0, 1)`` without one."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


class IndexedDataset(Dataset):
    """``base`` items plus ``index`` (int), ``weight`` (float32 loss weight) and ``pad`` (bool).

    Index ``i`` in ``[0, n)`` is window i with ``weights[i]``; ``n + i`` is a padding copy of
    window i with weight 0 (see :class:`PrunedSampler`). ``weights`` ``[n]`` is read live, so
    a callback can change it between epochs.
    """

    def __init__(self, base: Dataset, weights: torch.Tensor | None = None):
        self.base = base
        self.n = len(base)
        self.weights = torch.ones(self.n) if weights is None else weights

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, j: int) -> dict:
        pad = j >= self.n
        i = j - self.n if pad else j
        item = dict(self.base[i])
        item["index"] = i
        item["weight"] = torch.tensor(0.0 if pad else float(self.weights[i]))
        item["pad"] = pad
        return item

    def __getitems__(self, js):
        """A batch of ``js`` in one call: the base's ``__getitems__`` (when it has one) plus
        ``index`` ``[B]`` long, ``weight`` ``[B]`` float32 and ``pad`` ``[B]`` bool."""
        from ...data.windows import WindowBatch

        j = torch.as_tensor(js, dtype=torch.int64)
        pad = j >= self.n
        i = torch.where(pad, j - self.n, j)
        if hasattr(self.base, "__getitems__"):
            out = WindowBatch(self.base.__getitems__(i.tolist()))
        else:
            from torch.utils.data import default_collate

            out = WindowBatch(default_collate([self.base[k] for k in i.tolist()]))
        out["index"] = i
        out["weight"] = torch.where(pad, torch.zeros(()), self.weights[i].float())
        out["pad"] = pad
        return out


class PrunedSampler(Sampler[int]):
    """Shuffled, rank-sharded iteration over the current kept set.

    Args:
        n: training windows.
        seed: shuffle seed (the order of epoch e is drawn from ``(seed, e)``).
        shuffle: shuffle the kept set each epoch.
        rank, world_size: override the process group (tests); default: read at iteration.

    ``len()`` is the per-rank count ``ceil(K / W)``. Time spent building each epoch's order is
    added to ``time_s`` (part of the measured selection overhead).
    """

    def __init__(self, n: int, seed: int = 0, shuffle: bool = True, rank: int | None = None, world_size: int | None = None):
        self.n, self.seed, self.shuffle = n, seed, shuffle
        self._rank, self._world = rank, world_size
        self.kept = torch.arange(n)
        self.epoch = 0
        self.time_s = 0.0

    def _dist(self) -> tuple[int, int]:
        r, w = dist_info()
        return (self._rank if self._rank is not None else r, self._world if self._world is not None else w)

    def set_selection(self, indices: torch.Tensor) -> None:
        """Visit ``indices`` (``[K]`` long, distinct) from the next iteration on."""
        self.kept = indices.long().clone()

    def set_epoch(self, epoch: int) -> None:
        """Seed of the shuffle (Lightning calls this at every epoch start)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        _, w = self._dist()
        return -(-self.kept.numel() // w)

    def order(self) -> list[int]:
        """This rank's indices for the current epoch (padding items are ``n + i``)."""
        t0 = time.perf_counter()
        rank, world = self._dist()
        k = self.kept.numel()
        perm = self.kept[torch.randperm(k, generator=epoch_generator(self.seed + 1, self.epoch))] if self.shuffle else self.kept
        total = -(-k // world) * world
        if total > k > 0:
            reps = -(-(total - k) // k)
            perm = torch.cat([perm, perm.repeat(reps)[: total - k] + self.n])  # padding, weight 0
        out = perm[rank::world].tolist()
        self.time_s += time.perf_counter() - t0
        return out

    def __iter__(self):
        yield from self.order()  # a generator: the order is drawn when iteration starts
