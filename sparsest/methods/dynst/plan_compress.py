"""``sparsest plan --compress``: Dyna-Pruner on the plan's kept-sensor model, in the same run.

The plan decides which sensors (patches) are switched off for good; Dyna-Pruner then skips,
per sample, the regions (and the computation tied to them) that the kept sensors show to
be uninformative. Composed:

1. The inputs: every window of the compress run is the plan's masked input,
   ``x * expand(k * m)`` (:attr:`~sparsest.data.windows.WindowDataset.input_scale`), so a
   switched-off sensor is never read, exactly as the kept-sensor model saw it; the targets
   stay the whole field.
2. The weights: the dense pre-training of ``sparsest compress`` starts from the backbone of
   the plan's returned model (without its kept-to-all read-out: a grid backbone already
   forecasts every pixel from its masked input) and trains ``pretrain_epochs`` more on
   those inputs; every row (dense, Dyna-Pruner, MP, random) then gets ``epochs``, as in
   ``sparsest compress`` (:func:`sparsest.methods.dynapruner.run._compress`).
3. The run is a sub-directory ``compress/`` of the plan's run directory, with its own
   ``metrics.json`` and ``report.html``; resumed with the plan (``sparsest plan --resume``),
   never on its own (``state/part_of_plan.json`` marks it).
4. The savings, each against its baseline measured in this run (:func:`compress_savings`):
   sensors switched off (against all), GFLOPs and latency of the Dyna-Pruner model against
   the dense backbone measured beside it (a dense CNN costs the same whichever sensors feed
   it), and the accuracy cost of all together against the plan's dense model (every
   sensor, no Dyna-Pruner) on the same test windows.

Source: the composition is ours (issue "the three composed"); DynST (Wu et al., KDD 2025)
and Dyna-Pruner (Zhang et al., arXiv:2606.15346) as in :mod:`.plan` and
:mod:`sparsest.methods.dynapruner.run`.
"""

from __future__ import annotations

import json
import math
import os

from ...engine.run import PARTIAL, RUN_DIR_ENV, RunDirectory
from .plan_config import PlanConfig, compress_config

SUBDIR = "compress"


def compress_kept(config: PlanConfig, rd: RunDirectory, layout, pruned, say) -> dict:
    """Run (or resume, or read back) the compress run of ``plan --compress`` in
    ``rd.path / "compress"`` (module doc); returns its ``metrics.json`` plus ``run_dir``
    (relative to the plan's directory).

    Args:
        rd: the plan's (unfinished) run directory.
        layout: the plan's :class:`~sparsest.pruning.sensors.layout.SensorLayout` (grid).
        pruned: the plan's returned :class:`~sparsest.pruning.sensors.wrapper.SensorMaskedForecaster`
            (keep-set ``k``, scores ``m``, backbone weights).

    Raises:
        ConfigError: any compress option error (the plan refuses graph data before it trains).
    """
    from ..dynapruner.run import PART_OF_PLAN, _compress, start_grid

    done = rd.path / SUBDIR
    if (done / "metrics.json").is_file():
        say(f"[bold]compress[/] finished earlier in this run: {done}")
        return {**json.loads((done / "metrics.json").read_text()), "run_dir": SUBDIR}
    cconfig = compress_config(config)
    partial = rd.path / (SUBDIR + PARTIAL)
    env = os.environ.get(RUN_DIR_ENV)
    sub = RunDirectory.reopen(partial) if partial.is_dir() else RunDirectory.create(rd.path, SUBDIR, cconfig.to_dict())
    if env is not None:
        os.environ[RUN_DIR_ENV] = env  # the plan's directory stays the run's
    sub.write_json(PART_OF_PLAN, {"plan": str(rd.path.name), "n_kept": int(pruned.keep.sum()),
                                  "n_sensors": int(pruned.n_sensors)})
    _, prep = start_grid(cconfig)
    scale = layout.expand(pruned.effective_mask().detach().float())  # [1, H, W]: k * m on every pixel
    for loader in prep.loaders.values():
        loader.dataset.input_scale = scale
    say(f"[bold]compress[/] Dyna-Pruner ({cconfig.reading}, s_d={cconfig.data_sparsity:g}) on the kept-sensor model: "
        f"{int(pruned.keep.sum())} of {pruned.n_sensors} sensors read, {cconfig.pretrain_epochs or cconfig.epochs} "
        f"pre-training + {cconfig.epochs} epochs per row -> {partial.name}")
    with sub.guard():
        _, metrics = _compress(cconfig, prep, sub, say, start_from=pruned.backbone)
    return {**metrics, "run_dir": SUBDIR}


def _test(metrics: dict, row: str, metric: str) -> float:
    if metric == "rmse":
        return math.sqrt(metrics["mse"][row])
    return float(metrics[metric][row])


def compress_savings(plan_metrics: dict, compressed: dict, metric: str) -> dict:
    """``metrics.json`` ``composed`` entries of ``plan --compress`` (module doc, step 4).

    Returns:
        ``{"compress": {run_dir, reading, data_sparsity, model_sparsity, epochs,
        pretrain_epochs, test_dense_kept, test_compressed}, "inference": [{batch, path,
        gflops_dense, gflops_pruned, flops_ratio, latency_ms_dense, latency_ms_pruned,
        speedup}, ...] (latency: ms per forward of the whole batch), "all_together_test": the
        Dyna-Pruner model's test error, "accuracy_cost": that test error
        / the plan's dense model's - 1}``; ``test_dense_kept``: the dense backbone
        trained on the kept sensors in the compress run, ``test_compressed``: the Dyna-Pruner
        model (``--metric``, physical units).
    """
    c = compressed
    g, b1, b64 = c["gflops"], c["latency_ms_b1"], c["latency_ms_b64"]
    test = _test(c, "pruned", metric)
    return {
        "compress": {"run_dir": c["run_dir"], "reading": c.get("reading"), "data_sparsity": c["data_sparsity"],
                     "model_sparsity": c["model_sparsity"], "epochs": c["epochs"], "pretrain_epochs": c["pretrain_epochs"],
                     "test_dense_kept": _test(c, "dense", metric), "test_compressed": test},
        "inference": [
            {"batch": 1, "path": b1.get("path", ""), "gflops_dense": g["dense"], "gflops_pruned": g["pruned"],
             "flops_ratio": g["dense"] / g["pruned"], "latency_ms_dense": b1["dense"], "latency_ms_pruned": b1["pruned"],
             "speedup": b1["speedup"]},
            {"batch": 64, "path": b64.get("path", ""), "gflops_dense": g["dense"], "gflops_pruned": g["compact_b64"],
             "flops_ratio": g["dense"] / g["compact_b64"], "latency_ms_dense": b64["dense"],
             "latency_ms_pruned": b64["pruned"], "speedup": b64["speedup"]}],
        "all_together_test": test,
        "accuracy_cost": test / float(plan_metrics["dense"][metric]) - 1.0,
    }


__all__ = ["compress_kept", "compress_savings", "SUBDIR"]
