"""Dyna-Pruner's measurements: the test windows it times, GFLOPs and latency of every row
interleaved in one measurement, and its mask statistics.

Source: Dyna-Pruner, Zhang et al., arXiv:2606.15346 (Tables I and III report GFLOPs and
latency); measured with :mod:`sparsest.efficiency`.
"""

from __future__ import annotations

import numpy as np
import torch

from ...efficiency import count_flops, measure_latency_ms
from ...pruning.adaptive import DynaPruner


def samples(dataset, n: int) -> list[dict]:
    """``n`` single-window batches spread evenly over ``dataset``."""
    idx = np.linspace(0, len(dataset) - 1, n).round().astype(int)
    return [{k: torch.as_tensor(dataset[i][k])[None] for k in ("x", "y", "tod", "dow", "t0")} for i in idx]


def _per_sample(model, samples) -> callable:
    def fn():
        for s in samples:
            model(s["x"], s["tod"], s["dow"])
    return fn


def measure(models: dict, samples: list[dict], batch64: dict, repeats: int) -> dict:
    """GFLOPs per sample and latency (ms per sample at batch 1; ms per batch at 64).

    Args:
        models: name -> ``(model_b1, model_b64)`` (either may be None to skip), in eval
            mode; ``model_b1`` runs each window of ``samples`` alone.
        samples: single-window batches (:func:`samples`).
        batch64: a batch of 64 windows (``x``, ``tod``, ``dow``).
        repeats: timed repeats (median reported); models are interleaved within a round.
    """
    out: dict = {name: {} for name in models}
    for name, (m1, _) in models.items():
        if m1 is not None:
            out[name]["gflops"] = float(np.mean([count_flops(lambda s=s: m1(s["x"], s["tod"], s["dow"])) for s in samples])) / 1e9
    lat1 = measure_latency_ms({n: _per_sample(m1, samples) for n, (m1, _) in models.items() if m1 is not None}, warmup=2, repeats=repeats)
    for n, v in lat1.items():
        out[n]["latency_ms_b1"] = v["median_ms"] / len(samples)
    b = batch64
    fns = {n: (lambda m=m64: m(b["x"], b["tod"], b["dow"])) for n, (_, m64) in models.items() if m64 is not None}
    lat64 = measure_latency_ms(fns, warmup=1, repeats=max(3, repeats // 2))
    for n, v in lat64.items():
        out[n]["latency_ms_b64"] = v["median_ms"]
        out[n]["gflops_b64_per_sample"] = count_flops(fns[n]) / 1e9 / b["x"].shape[0]
    return out


class ModeCall:
    """Call a :class:`~sparsest.pruning.adaptive.DynaPruner` in one execution ``mode``
    (``"gated"``: batch-1 path; ``"tiled"``: a batch on its active tiles), back to
    ``"masked"`` afterwards, so one model can be timed on two paths in one measurement."""

    def __init__(self, model: DynaPruner, mode: str):
        self.model, self.mode = model, mode

    def __call__(self, x, tod=None, dow=None):
        self.model.mode = self.mode
        try:
            return self.model(x, tod, dow)
        finally:
            self.model.mode = "masked"


def measure_rows(models: dict, compact: DynaPruner, samples: list[dict], batch64: dict, repeats: int, seed: int = 0) -> dict:
    """:func:`measure` for the rows of a compress run: dense (b1, b64), Dyna-Pruner gated
    (b1), its compact model (b64: on its active tiles for a tile reading), MP (b1, b64),
    random gated (b1) and each comparison reading ``dyna:<reading>`` (b1 gated; b64 tiled for
    a tile reading), when present."""
    torch.manual_seed(seed)
    cost_models = {"dense": (models["dense"], models["dense"]), "dyna": (ModeCall(models["dyna"], "gated"), None),
                   "compact": (None, ModeCall(compact, "tiled" if compact.spatial else "masked"))}
    if "mp" in models:
        cost_models["mp"] = (models["mp"], models["mp"])
        cost_models["random"] = (ModeCall(models["random"], "gated"), None)
    for name, m in models.items():
        if name.startswith("dyna:"):
            cost_models[name] = (ModeCall(m, "gated"), ModeCall(m, "tiled") if m.spatial else None)
    return measure(cost_models, samples, batch64, repeats)


def cost_entries(costs: dict) -> dict:
    """metrics.json cost entries from :func:`measure_rows` output."""
    d, p, c = costs["dense"], costs["dyna"], costs["compact"]
    out = {
        "gflops": {"dense": d["gflops"], "pruned": p["gflops"], "compact_b64": c["gflops_b64_per_sample"],
                   "reduction": 1 - p["gflops"] / d["gflops"]},
        "latency_ms_b1": {"dense": d["latency_ms_b1"], "pruned": p["latency_ms_b1"], "speedup": d["latency_ms_b1"] / p["latency_ms_b1"]},
        "latency_ms_b64": {"dense": d["latency_ms_b64"], "pruned": c["latency_ms_b64"], "speedup": d["latency_ms_b64"] / c["latency_ms_b64"]},
    }
    for name in costs:
        if name in ("mp", "random") or name.startswith("dyna:"):
            out[name] = {k: v for k, v in costs[name].items() if k in ("gflops", "latency_ms_b1", "latency_ms_b64")}
    return out


def converged(val: list[float], epochs: int = 3, tol: float = 0.01) -> dict:
    """Has a validation curve converged: did its best value improve by less than ``tol``
    (relative) over its last ``epochs`` epochs? (The project's criterion for a converged
    dense model.) Returns ``{"converged", "improvement", "epochs"}``; ``converged`` is None
    when the curve is too short to tell."""
    val = [v for v in val if v == v]
    if len(val) <= epochs:
        return {"converged": None, "improvement": None, "epochs": len(val)}
    before, last = min(val[:-epochs]), min(val[-epochs:])
    imp = (before - last) / before if before else 0.0
    return {"converged": bool(imp < tol), "improvement": float(imp), "epochs": len(val)}


def metrics_of(ev: dict) -> dict:
    return {"mse": ev["mse"], "mae": ev["mae"], "rmse": ev["rmse"]}


@torch.no_grad()
def mask_stats(model, loader) -> dict:
    """Mean share of gated units computed and of pixels kept per test window (masked mode)."""
    if not isinstance(model, DynaPruner):
        return {"units_active": 1.0, "pixels_kept": 1.0}
    kept = torch.tensor([g.n_units if g.keep is None else g.keep.numel() for g in model.gates], dtype=torch.float)
    static = float(kept.sum()) / sum(model.sizes)
    units, pixels = [], []
    model.eval()
    for batch in loader:
        model(batch["x"], batch["tod"], batch["dow"])
        units.append(model.last["filter_mask"].detach().mean(1))
        pixels.append(model.last["data_mask"].detach().flatten(1).mean(1))
    return {"units_active": float(torch.cat(units).mean()) * static, "pixels_kept": float(torch.cat(pixels).mean())}
