"""Where a plan's keep-set costs accuracy: per hour of the day, on the validation and the test split.

For a ``sparsest plan`` run directory, every window's absolute-error sum (observed targets,
physical units, over horizon and sensors) of the returned keep-set's model and of the plan's
reference (``checkpoints/dense-ft.ckpt`` when ``metrics.json`` ``reference.kind`` is
``finetuned``, else the dense model as trained) is grouped by the hour of the window's last
forecast step, in 3-hour bins. Printed per split and bin: the number of windows, the
reference's mean error sum per window and the ratio keep-set / reference (1.03 = 3% worse).
A validation split that misses the hours where switching sensors off costs most cannot bound
the test cost (README, "Model selection on short validation splits").

Usage:
    python benchmarks/plan_hours.py RUN_DIR [RUN_DIR ...]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))


def hour_table(run_dir: Path, bin_hours: int = 3) -> str:
    from deploy_latency import rebuild

    from sparsest.engine.module import ForecastModule
    from sparsest.methods.dynst.budget import window_error_sums

    _, prep, reference, pruned = rebuild(run_dir)
    m = json.loads((run_dir / "metrics.json").read_text())
    kind = (m.get("reference") or {}).get("kind", "dense")
    if kind == "finetuned":
        ForecastModule(reference, prep.scaler, 1e-3, 0.0).load_state_dict(
            torch.load(run_dir / "checkpoints" / "dense-ft.ckpt", map_location="cpu", weights_only=True)["state_dict"])
        reference.keep.fill_(True)
    lines = [f"{run_dir.name}: keep-set of sparsity {pruned.sparsity:.3f} against the {kind} reference", "",
             "| split | hours (last forecast step) | windows | reference error per window | keep-set / reference |",
             "|---|---|---|---|---|"]
    for split in ("val", "test"):
        loader = prep.loaders[split]  # not shuffled: the windows in time order, as window_error_sums returns them
        r, k = (window_error_sums(model, loader, prep.scaler, "mae") for model in (reference, pruned))
        h = prep.window_hours(split)
        lines.append(f"| {split} | all | {len(h)} | {r.mean():.1f} | {k.sum() / r.sum():.4f} |")
        for lo in range(0, 24, bin_hours):
            s = (h >= lo) & (h < lo + bin_hours)
            if s.any():
                lines.append(f"| {split} | {lo:02d}-{lo + bin_hours:02d} | {int(s.sum())} | {r[s].mean():.1f} | "
                             f"{k[s].sum() / r[s].sum():.4f} |")
    return "\n".join(lines)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run_dirs", nargs="+", type=Path, help="sparsest plan run directories")
    ap.add_argument("--bin-hours", type=int, default=3, choices=[1, 2, 3, 4, 6, 8, 12])
    args = ap.parse_args(argv)
    for d in args.run_dirs:
        if not (d / "metrics.json").is_file() or not (d / "checkpoints").is_dir():
            ap.error(f"{d}: not a finished sparsest plan run directory (no metrics.json / checkpoints)")
    torch.set_num_threads(1)
    for d in args.run_dirs:
        print(hour_table(d, args.bin_hours), flush=True)
        print()


if __name__ == "__main__":
    main()
