"""Measuring cost the same way everywhere: parameters, FLOPs, latency, peak memory.

- FLOPs: ``torch.utils.flop_counter.FlopCounterMode`` (counts matmul / conv / attention
  FLOPs of one forward; element-wise ops are not counted), reported as GFLOPs.
- Latency: wall-clock milliseconds of one forward under ``torch.inference_mode``, after
  warm-up, the median of repeated runs. Dense and pruned are measured in the same process
  and interleaved (dense, pruned, dense, pruned, ...) so machine load hits both alike; the
  speedup is ``latency_dense / latency_pruned``.
- Peak memory: CUDA ``max_memory_allocated``; on CPU the peak of the running sum of the
  tensors allocated and freed during the forward (from the PyTorch profiler), in MiB.
"""

from __future__ import annotations

import contextlib
import os
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from typing import Callable

import torch
import torch.utils.flop_counter as flop_counter
from torch import nn


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters of ``model``."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def count_flops(fn: Callable[[], object]) -> int:
    """FLOPs of one call of ``fn`` (e.g. ``lambda: model(x)``), counted by
    ``torch.utils.flop_counter.FlopCounterMode``."""
    # no_grad, not inference_mode: the counter's module tracker needs grad_fn on parameters
    with torch.no_grad(), flop_counter.FlopCounterMode(display=False) as counter:
        fn()
    return int(counter.get_total_flops())


def _sync(device: torch.device | str | None) -> None:
    if device is not None and torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def measure_latency_ms(
    fns: dict[str, Callable[[], object]], warmup: int = 3, repeats: int = 20, device=None
) -> dict[str, dict[str, float]]:
    """Interleaved latency of several callables, in milliseconds.

    Each round calls every function once, in turn; after ``warmup`` rounds, ``repeats``
    rounds are timed. Returns ``{name: {"median_ms", "p10_ms", "p90_ms"}}``.
    """
    times: dict[str, list[float]] = {k: [] for k in fns}
    with torch.inference_mode():
        for r in range(warmup + repeats):
            for name, fn in fns.items():
                _sync(device)
                t0 = time.perf_counter()
                fn()
                _sync(device)
                if r >= warmup:
                    times[name].append(1000 * (time.perf_counter() - t0))
    out = {}
    for name, ts in times.items():
        q = statistics.quantiles(ts, n=10) if len(ts) > 1 else [ts[0]] * 9
        out[name] = {"median_ms": statistics.median(ts), "p10_ms": q[0], "p90_ms": q[-1]}
    return out


@contextlib.contextmanager
def _quiet_stdout():
    """Silence the C++ profiler's ``USDT ... profiler_start / profiler_stop`` lines, which it
    writes to the process's stderr descriptor (and, in some builds, stdout), whatever
    ``sys.stdout`` / ``sys.stderr`` are."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (AttributeError, OSError, ValueError):
            pass
    saved = {fd: os.dup(fd) for fd in (1, 2)}
    with open(os.devnull, "w") as null:
        for fd in saved:
            os.dup2(null.fileno(), fd)
        try:
            yield
        finally:
            _flush_c_stdio()  # the lines sit in C's stdio buffer until flushed
            for fd, keep in saved.items():
                os.dup2(keep, fd)
                os.close(keep)


def _flush_c_stdio() -> None:
    try:
        import ctypes

        ctypes.CDLL(None).fflush(None)
    except (OSError, AttributeError):
        pass


def peak_memory_mib(fn: Callable[[], object], device=None) -> float:
    """Peak memory (MiB) of tensors allocated during one call of ``fn``."""
    if device is not None and torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        with torch.inference_mode():
            fn()
        torch.cuda.synchronize(device)
        return (torch.cuda.max_memory_allocated(device) - base) / 2**20
    from torch.profiler import ProfilerActivity, profile

    with _quiet_stdout(), torch.inference_mode(), profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    events = sorted((e for e in prof.events() if e.self_cpu_memory_usage), key=lambda e: e.time_range.start)
    cur = peak = 0
    for e in events:
        cur += e.self_cpu_memory_usage
        peak = max(peak, cur)
    return peak / 2**20


@dataclass
class CostComparison:
    """Dense vs pruned cost of one forward at one batch size (ratios are dense / pruned)."""

    batch: int
    latency_ms_dense: float
    latency_ms_pruned: float
    speedup: float
    gflops_dense: float
    gflops_pruned: float
    flops_ratio: float
    peak_mem_mib_dense: float
    peak_mem_mib_pruned: float
    params_dense: int
    params_pruned: int

    def to_dict(self) -> dict:
        return asdict(self)


def compare_dense_pruned(
    dense: Callable[[], object],
    pruned: Callable[[], object],
    batch: int,
    params: tuple[int, int] = (0, 0),
    warmup: int = 3,
    repeats: int = 20,
    device=None,
) -> CostComparison:
    """Measure dense and pruned forwards side by side (interleaved) and report ratios.

    Args:
        dense, pruned: zero-argument callables running one forward on the same batch.
        batch: the batch size of that input (reported).
        params: parameter counts (dense, pruned).
    """
    lat = measure_latency_ms({"dense": dense, "pruned": pruned}, warmup, repeats, device)
    fd, fp = count_flops(dense), count_flops(pruned)
    ld, lp = lat["dense"]["median_ms"], lat["pruned"]["median_ms"]
    return CostComparison(
        batch=batch,
        latency_ms_dense=ld,
        latency_ms_pruned=lp,
        speedup=ld / lp,
        gflops_dense=fd / 1e9,
        gflops_pruned=fp / 1e9,
        flops_ratio=fd / max(fp, 1),
        peak_mem_mib_dense=peak_memory_mib(dense, device),
        peak_mem_mib_pruned=peak_memory_mib(pruned, device),
        params_dense=params[0],
        params_pruned=params[1],
    )


__all__ = ["count_parameters", "count_flops", "measure_latency_ms", "peak_memory_mib", "compare_dense_pruned", "CostComparison"]
