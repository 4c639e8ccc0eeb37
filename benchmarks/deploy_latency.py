"""Deployment speed: a run's exported model (``deploy/model.ts``) against the exported dense model (issue: part 9, item 4).

For each run directory of ``sparsest run`` or ``sparsest plan`` (graph data): the dense model
of the run (``checkpoints/dense.ckpt``, every sensor kept) is exported the same way as the
pruned one (:func:`sparsest.deploy.export_pruned`: TorchScript by ``torch.jit.trace``, scaler
folded in, physical units in and out) into a temporary folder, and both TorchScript files are
loaded with ``torch.jit.load``, as a user would deploy them. Both are timed side by side on
test windows at batch 1 and 64 (:func:`sparsest.efficiency.compare_dense_pruned`: interleaved,
median of repeats): the dense model reads all N sensors, the pruned one the K kept ones. The
eager models (the sensor-mask wrapper of the run, the bare dense backbone) are timed in the
same call for comparison, and the two exported models' forecasts are checked against the
eager ones.

Usage:
    python benchmarks/deploy_latency.py RUN_DIR [RUN_DIR ...] [--batches 1 64] [--repeats 30]
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import torch


def rebuild(run_dir: Path):
    """The run's options, data (prepared as in the run), dense and pruned wrappers."""
    import yaml

    from sparsest.backbones import create_backbone
    from sparsest.engine.module import ForecastModule
    from sparsest.engine.options import build_options
    from sparsest.engine.prepare import prepare
    from sparsest.methods.dynst.config import RunConfig
    from sparsest.methods.dynst.pieces import sensor_layout
    from sparsest.methods.dynst.plan_config import PlanConfig
    from sparsest.pruning.sensors.wrapper import SensorMaskedForecaster

    raw = yaml.safe_load((run_dir / "config.yaml").read_text())
    opts = build_options(PlanConfig if "max_increase" in raw else RunConfig, ("--set", raw))
    prep = prepare(opts)
    layout = sensor_layout(prep.data, opts.patch_size)

    def wrapper(ckpt: Path):
        bb = create_backbone(raw["backbone"], prep.spec, **(raw.get("backbone_options") or {}))
        m = SensorMaskedForecaster(bb, layout)
        mod = ForecastModule(m, prep.scaler, 1e-3, 0.0)
        mod.load_state_dict(torch.load(ckpt, map_location="cpu", weights_only=True)["state_dict"])
        return m.eval()

    dense = wrapper(run_dir / "checkpoints" / "dense.ckpt")
    dense.keep.fill_(True)
    chosen = json.loads((run_dir / "metrics.json").read_text()).get("chosen", {})  # a plan: the returned model's weights
    pruned = wrapper(run_dir / chosen.get("weights", "checkpoints/pruned.ckpt"))
    kept = json.loads((run_dir / "deploy" / "sensors.json").read_text())["kept_index"]
    if torch.nonzero(pruned.keep).flatten().tolist() != kept:
        raise SystemExit(f"{run_dir}: checkpoints/pruned.ckpt and deploy/sensors.json disagree on the keep-set")
    pruned.subset = True
    return opts.to_dict(), prep, dense, pruned


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+", help="run directories of sparsest run / plan (graph data)")
    ap.add_argument("--batches", nargs="+", type=int, default=[1, 64])
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    from sparsest.data.windows import to_physical_range
    from sparsest.deploy import export_pruned
    from sparsest.efficiency import compare_dense_pruned
    from sparsest.engine.prepare import stack_batch
    from sparsest.report import sensor_ids

    rows = []
    for rd in map(Path, args.runs):
        raw, prep, dense, pruned = rebuild(rd)
        ids = sensor_ids(prep.data, pruned.layout)
        with tempfile.TemporaryDirectory() as tmp:
            export_pruned(dense, prep.scaler, stack_batch(prep.loaders["test"].dataset, 2), Path(tmp), ids, prep.data.units)
            ts_dense = torch.jit.load(str(Path(tmp) / "model.ts"))
        ts_pruned = torch.jit.load(str(rd / "deploy" / "model.ts"))
        mean, std = prep.scaler.tensors()
        kept = torch.nonzero(pruned.keep).flatten()
        for b in args.batches:
            batch = stack_batch(prep.loaders["test"].dataset, b)
            x_phys = batch["x"] * std + mean
            x_kept = x_phys[:, :, kept] if prep.spec.kind == "graph" else x_phys
            tod, dow = batch["tod"], batch["dow"]
            with torch.no_grad():  # the exported models give the eager forecasts
                ref_d = to_physical_range(dense(batch["x"], tod, dow) * std + mean, prep.scaler.floor, prep.scaler.resolution)
                ref_p = to_physical_range(pruned(batch["x"], tod, dow) * std + mean, prep.scaler.floor, prep.scaler.resolution)
                err_d = (ts_dense(x_phys, tod, dow) - ref_d).abs().max().item()
                err_p = (ts_pruned(x_kept, tod, dow) - ref_p).abs().max().item()
            ts = compare_dense_pruned(lambda: ts_dense(x_phys, tod, dow), lambda: ts_pruned(x_kept, tod, dow),
                                      batch=b, repeats=args.repeats).to_dict()
            eager = compare_dense_pruned(lambda: dense.backbone(batch["x"], tod, dow), lambda: pruned(batch["x"], tod, dow),
                                         batch=b, repeats=args.repeats).to_dict()
            rows.append((rd.name, raw["backbone"], int(pruned.keep.sum()), pruned.n_sensors, b, eager, ts, max(err_d, err_p)))
            print(f"{rd.name} batch {b}: exported dense {ts['latency_ms_dense']:.2f} ms, exported pruned "
                  f"{ts['latency_ms_pruned']:.2f} ms (x{ts['speedup']:.2f}); eager x{eager['speedup']:.2f}; "
                  f"max |exported - eager| dense {err_d:.2e} pruned {err_p:.2e}", flush=True)

    print()
    print(f"Machine: {platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}; "
          f"{time.strftime('%Y-%m-%d')}; median of {args.repeats} interleaved repeats")
    print()
    print("| run | backbone | kept | batch | eager dense (backbone) ms | eager pruned ms | eager speedup | exported dense ms "
          "| exported pruned ms | exported speedup | exported dense vs eager dense |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for name, bb, k, n, b, e, t, _ in rows:
        print(f"| {name} | {bb} | {k}/{n} | {b} | {e['latency_ms_dense']:.2f} | {e['latency_ms_pruned']:.2f} | "
              f"x{e['speedup']:.2f} | {t['latency_ms_dense']:.2f} | {t['latency_ms_pruned']:.2f} | x{t['speedup']:.2f} | "
              f"x{e['latency_ms_dense'] / t['latency_ms_dense']:.2f} |")


if __name__ == "__main__":
    main()
