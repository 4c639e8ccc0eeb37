"""Measured inference speedup from switched-off sensors, per backbone (no training needed).

For each backbone at the shapes of its data set (metr-la-week: N=207, T=S=12; era5-t2m-uk:
33 x 49, T=S=12, 4 x 4 patches), a random keep-set at each sparsity is set on the
sensor-mask wrapper in subset mode; dense (the bare backbone) and pruned are timed side by
side, interleaved, median of repeats, at batch 1 and 64 (``sparsest.efficiency``).
Latency does not depend on the weights, so untrained models give the same timings as
trained ones. Prints a Markdown table with the ideal 1 / (1 - s) beside the measured ratio.

Usage: python benchmarks/speedup.py [--sparsities 0.3 0.5] [--batches 1 64] [--repeats 15]
"""

from __future__ import annotations

import argparse
import platform
import time

import torch

from sparsest.backbones import DataSpec, create_backbone, get_backbone_entry, list_backbones
from sparsest.efficiency import compare_dense_pruned, count_parameters
from sparsest.pruning.masks import random_keep
from sparsest.pruning.sensors.layout import SensorLayout
from sparsest.pruning.sensors.wrapper import SensorMaskedForecaster

SPECS = {
    "graph": DataSpec("graph", 12, 12, 1, 207, steps_per_day=288, adjacency=None),
    "grid": DataSpec("grid", 12, 12, 1, 33 * 49, height=33, width=49, steps_per_day=24, patch_size=4),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backbones", nargs="+", default=None)
    ap.add_argument("--sparsities", nargs="+", type=float, default=[0.3, 0.5])
    ap.add_argument("--batches", nargs="+", type=int, default=[1, 64])
    ap.add_argument("--repeats", type=int, default=15)
    args = ap.parse_args()
    import numpy as np

    rng = np.random.default_rng(0)
    a = (rng.random((207, 207)) < 0.04).astype(np.float32)
    SPECS["graph"] = DataSpec("graph", 12, 12, 1, 207, steps_per_day=288, adjacency=np.maximum(a, a.T))
    torch.manual_seed(0)
    print(f"Machine: {platform.machine()} CPU, {torch.get_num_threads()} threads, torch {torch.__version__}; {time.strftime('%Y-%m-%d')}")
    print()
    print("| backbone | data shape | runs on kept only | sparsity | batch | dense ms | pruned ms | speedup | ideal 1/(1-s) | speedup / ideal | FLOPs ratio |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for name in args.backbones or list_backbones(trainable=True):
        kind = get_backbone_entry(name).kind
        spec = SPECS[kind]
        backbone = create_backbone(name, spec).eval()
        layout = SensorLayout(kind, spec.n_nodes, (spec.height, spec.width) if kind == "grid" else None, spec.patch_size)
        for s in args.sparsities:
            pruned = SensorMaskedForecaster(backbone, layout).eval()
            pruned.keep.copy_(random_keep(layout.n_sensors, s, torch.Generator().manual_seed(1)))
            pruned.subset = True
            for b in args.batches:
                shape = (b, 12, 207, 1) if kind == "graph" else (b, 12, 1, 33, 49)
                x = torch.randn(shape)
                tod = torch.randint(0, spec.steps_per_day, (b, 24))
                dow = torch.randint(0, 7, (b, 24))
                c = compare_dense_pruned(lambda: backbone(x, tod, dow), lambda: pruned(x, tod, dow), batch=b,
                                         params=(count_parameters(backbone), count_parameters(pruned)), repeats=args.repeats)
                ideal = 1 / (1 - s)
                shape_txt = "207 nodes" if kind == "graph" else "33x49, 117 patches"
                print(f"| {name} | {shape_txt} | {'yes' if pruned.runs_subset else 'no (masked input)'} | {s:g} | {b} | "
                      f"{c.latency_ms_dense:.2f} | {c.latency_ms_pruned:.2f} | {c.speedup:.2f}x | {ideal:.2f}x | "
                      f"{100 * c.speedup / ideal:.0f}% | {c.flops_ratio:.2f} |", flush=True)


if __name__ == "__main__":
    main()
