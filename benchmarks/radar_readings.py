"""Dyna-Pruner's readings on radar rain, side by side: one table from ``sparsest compress`` runs.

Each run (one seed) trains, from one shared dense pre-training, dense / the default reading /
MP (L1 channels at the default reading's FLOPs) / random, and with ``--compare-readings``
every other reading with the same budget; all are measured in the same run. This script
runs the missing seeds (resumable: a finished seed is read back, an unfinished one resumed)
and prints the table (mean over seeds; per-seed values beside), the reference forecasts,
whether the dense pre-training converged, and the share of computed tiles that hold rain.

    python benchmarks/radar_readings.py                         # radar-bom, simvp, seeds 0 1
    python benchmarks/radar_readings.py --table-only            # only read what is there
    python benchmarks/radar_readings.py --data era5-t2m-uk --seeds 0

Latency: a run's own measurement, or ``metrics_remeasured.json`` when it exists:
``--remeasure`` re-times every finished run (:func:`sparsest.methods.dynapruner.run.remeasure`:
the models rebuilt from their checkpoints, all rows interleaved), e.g. on a quiet machine
after runs that trained side by side.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def runs_of(out: Path, data: str, backbone: str) -> dict[int, Path]:
    """Finished compress runs under ``out`` for this data / backbone, by seed (newest wins)."""
    found = {}
    for d in sorted(out.glob(f"*_{data}_{backbone}_dynapruner_*")):
        if d.name.endswith(".partial") or not (d / "metrics.json").exists():
            continue
        m = json.loads((d / "metrics.json").read_text())
        found[int(m["seed"])] = d
    return found


def load(run: Path) -> dict:
    m = json.loads((run / "metrics.json").read_text())
    re = run / "metrics_remeasured.json"
    if re.exists():
        new = json.loads(re.read_text())
        for k, v in new.items():
            if isinstance(v, dict):
                m.setdefault(k, {}).update(v)
        m["remeasured_at"] = new.get("measured_at")
    return m


def rows_of(m: dict) -> dict[str, dict]:
    """name -> {mse, gflops, b1, b64} for every trained row of one run."""
    rows = {"dense": {"mse": m["mse"]["dense"], "gflops": m["gflops"]["dense"], "b1": m["latency_ms_b1"]["dense"],
                      "b64": m["latency_ms_b64"]["dense"]},
            f"dyna: {m.get('reading', 'channels-hard')} (default)": {
                "mse": m["mse"]["pruned"], "gflops": m["gflops"]["pruned"], "b1": m["latency_ms_b1"]["pruned"],
                "b64": m["latency_ms_b64"]["pruned"]}}
    for k in sorted(m):
        if k.startswith("dyna:"):
            r = m[k]
            rows[f"dyna: {k[5:]}"] = {"mse": r["mse"], "gflops": r["gflops"], "b1": r["latency_ms_b1"], "b64": r.get("latency_ms_b64")}
    for k in ("mp", "random"):
        if k in m:
            r = m[k]
            rows["MP (L1 at matched FLOPs)" if k == "mp" else "random"] = {"mse": r["mse"], "gflops": r["gflops"], "b1": r["latency_ms_b1"],
                                                                          "b64": r.get("latency_ms_b64")}
    return rows


def _seeds(values) -> str:
    return " / ".join(f"{x:.5f}" for x in values)


def table(metrics: list[dict]) -> str:
    per = [rows_of(m) for m in metrics]
    names = [n for n in per[0] if all(n in p for p in per)]
    dense = np.mean([p["dense"]["mse"] for p in per])
    mp = np.mean([p["MP (L1 at matched FLOPs)"]["mse"] for p in per]) if "MP (L1 at matched FLOPs)" in per[0] else None
    units = metrics[0]["units"]
    lines = [f"| row | test MSE ({units})² | per seed | vs dense | vs MP | GFLOPs / window | cut | ms batch 1 | x dense | "
             f"ms batch 64 | x dense |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for n in names:
        v = [p[n] for p in per]
        mse = np.mean([r["mse"] for r in v])
        g = np.mean([r["gflops"] for r in v])
        b1 = np.mean([r["b1"] for r in v])
        b64 = [r["b64"] for r in v if r["b64"] is not None]
        d1 = np.mean([p["dense"]["b1"] for p in per])
        d64 = np.mean([p["dense"]["b64"] for p in per])
        gd = np.mean([p["dense"]["gflops"] for p in per])
        lines.append(
            f"| {n} | {mse:.5f} | {_seeds([r['mse'] for r in v])} | {100 * (mse / dense - 1):+.1f}% | "
            + (f"{100 * (mse / mp - 1):+.1f}%" if mp and not n.startswith("MP") else "") + f" | {g:.3f} | {100 * (1 - g / gd):.0f}% | "
            f"{b1:.1f} | {d1 / b1:.2f} | " + (f"{np.mean(b64):.0f} | {d64 / np.mean(b64):.2f}" if b64 else "- | -") + " |")
    refs = metrics[0].get("baselines", {})
    for k in refs:
        v = [m["baselines"][k]["mse"] for m in metrics if k in m["baselines"]]  # runs before lower_bound lack it
        lines.append(f"| {k.replace('_', ' ')} | {np.mean(v):.5f} | {_seeds(v)} | "
                     f"{100 * (np.mean(v) / dense - 1):+.1f}% | | | | | | | |")
    return "\n".join(lines)


def seed_from_pretrain(src_dir: Path, out: Path, a, seed: int) -> Path:
    """A new unfinished run directory whose finished ``pretrain`` phase (checkpoint, state with
    its random-number generators, log) is copied from the finished run of ``seed`` under
    ``src_dir``; its config is that run's with this benchmark's row options. Resuming it replays
    the rest exactly as a fresh run with that pre-training would (the engine loads a finished
    phase instead of training it)."""
    import shutil
    import time

    import yaml

    src = runs_of(src_dir, a.data, a.backbone).get(seed)
    if src is None:
        raise SystemExit(f"--from-pretrain {src_dir}: no finished run of seed {seed}")
    cfg = yaml.safe_load((src / "config.yaml").read_text())
    want = {"data": a.data, "backbone": a.backbone, "seed": seed, "batch_size": a.batch_size, "pretrain_epochs": a.pretrain_epochs,
            "loss": a.loss, "backbone_options": yaml.safe_load(a.backbone_options) or {}}
    cfg.setdefault("clip_forecast", "off")  # runs from before the option trained on the raw forecast
    want["clip_forecast"] = a.clip_forecast
    bad = [k for k, v in want.items() if cfg.get(k) != v]
    if bad:
        raise SystemExit(f"--from-pretrain {src}: its {', '.join(bad)} differ from this benchmark's")
    cfg.update(epochs=a.epochs, generator_warmup=a.generator_warmup, data_sparsity=a.data_sparsity, compare_readings=seed in a.compare_seeds, out=str(out))
    if a.tiles:
        cfg["tiles"] = list(a.tiles)
    out.mkdir(parents=True, exist_ok=True)
    dst = out / f"{time.strftime('%Y%m%d-%H%M%S')}_{a.data}_{a.backbone}_dynapruner_sd{cfg['data_sparsity']:g}_sw{cfg['model_sparsity']:g}_seed{seed}.partial"
    for sub in ("checkpoints", "state", "logs"):
        (dst / sub).mkdir(parents=True)
    shutil.copy2(src / "checkpoints" / "pretrain.ckpt", dst / "checkpoints" / "pretrain.ckpt")
    shutil.copy2(src / "state" / "pretrain.pt", dst / "state" / "pretrain.pt")
    shutil.copytree(src / "logs" / "pretrain", dst / "logs" / "pretrain")
    (dst / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    (dst / "pretrain_from.txt").write_text(f"{src}\n")
    return dst


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="radar-bom")
    p.add_argument("--backbone", default="simvp")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--out", default=str(ROOT / "bench_out" / "radar" / "runs"))
    p.add_argument("--pretrain-epochs", type=int, default=30)
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--data-sparsity", type=float, default=0.7, help="compress --data-sparsity (s_d; default 0.7, the paper's)")
    p.add_argument("--tiles", type=int, nargs=2, metavar=("ROWS", "COLS"), help="compress --tiles (tile grid; default: tiles "
                   "of about 8 x 8 pixels)")
    p.add_argument("--compare-seeds", type=int, nargs="*", default=[0], help="seeds that also train every other reading")
    p.add_argument("--generator-warmup", type=int, default=100, help="compress --generator-warmup")
    p.add_argument("--loss", default="mae", choices=["mae", "mse"], help="compress --loss (MAE training is what makes the dense "
                   "forecaster beat persistence on radar rain)")
    p.add_argument("--clip-forecast", default="auto", choices=["auto", "on", "off"], help="compress --clip-forecast (train on "
                   "the forecast clipped at the lower bound, gradient straight through; auto: where the data set has one)")
    p.add_argument("--backbone-options", default="{start_at_persistence: true}", help="compress --backbone-options (YAML)")
    p.add_argument("--from-pretrain", metavar="RUNS_DIR", help="start each seed from the finished dense pre-training of the "
                   "run of the same seed under RUNS_DIR (same data, backbone and every option the pre-training uses, checked): "
                   "its pretrain phase is copied into a new run directory, which is then resumed")
    p.add_argument("--table-only", action="store_true", help="train nothing; print the table of the runs there")
    p.add_argument("--remeasure", action="store_true", help="train nothing; re-time the finished runs (one at a time), then print")
    p.add_argument("--repeats", type=int, default=10, help="timed repeats per model with --remeasure")
    a = p.parse_args(argv)
    if not 0 < a.data_sparsity < 1:
        p.error(f"--data-sparsity: in (0, 1), got {a.data_sparsity}")
    out = Path(a.out)
    if a.remeasure:
        from sparsest.methods.dynapruner.run import remeasure

        for s, run in sorted(runs_of(out, a.data, a.backbone).items()):
            if s in a.seeds:
                print(f"re-measuring seed {s}: {run.name}", flush=True)
                remeasure(run, repeats=a.repeats)
    elif not a.table_only:
        for s in a.seeds:
            if s in runs_of(out, a.data, a.backbone):
                continue
            partial = sorted(out.glob(f"*_{a.data}_{a.backbone}_dynapruner_*_seed{s}.partial"))
            if not partial and a.from_pretrain:
                partial = [seed_from_pretrain(Path(a.from_pretrain), out, a, s)]
            cmd = [sys.executable, "-m", "sparsest", "compress"]
            cmd += (["--resume", str(partial[-1])] if partial else
                    ["--data", a.data, "--backbone", a.backbone, "--seed", str(s), "--batch-size", str(a.batch_size),
                     "--pretrain-epochs", str(a.pretrain_epochs), "--epochs", str(a.epochs), "--out", str(out),
                     "--generator-warmup", str(a.generator_warmup), "--data-sparsity", str(a.data_sparsity), "--loss", a.loss,
                     "--clip-forecast", a.clip_forecast, "--backbone-options", a.backbone_options]
                    + (["--compare-readings"] if s in a.compare_seeds else [])
                    + (["--tiles", *map(str, a.tiles)] if a.tiles else []))
            print("$", " ".join(cmd), flush=True)
            subprocess.run(cmd, check=True)
    runs = runs_of(out, a.data, a.backbone)
    metrics = [load(runs[s]) for s in a.seeds if s in runs]
    if not metrics:
        print(f"no finished run of {a.data} / {a.backbone} under {out}")
        return 1
    print(f"## {a.data} · {a.backbone} · seeds {', '.join(str(m['seed']) for m in metrics)} · "
          f"s_d={metrics[0]['data_sparsity']:g}, s_w={metrics[0]['model_sparsity']:g}, "
          f"{metrics[0]['pretrain_epochs']} pre-training + {metrics[0]['epochs']} epochs per row")
    print(f"machine: {platform.machine()}, {platform.python_version()}; latency "
          + ("re-measured " + ", ".join(str(m.get("remeasured_at")) for m in metrics) if any(m.get("remeasured_at") for m in metrics)
             else "as measured in the runs"))
    print()
    print(table(metrics))
    print()
    print("Robustness (test MSE; Table II: Gaussian noise on the scaled input, mask failure = kept tiles / pixels switched off):")
    print()
    print("| row | clean | noise 0.01 | noise 0.05 | mask failure 5% | mask failure 10% |")
    print("|---|---|---|---|---|---|")
    for name in ("dense", "dyna", "random"):
        vals = [m["robustness"][name] for m in metrics if name in m.get("robustness", {})]
        if vals:
            cells = []
            for k in ("clean", "noise_0.01", "noise_0.05", "mask_failure_0.05", "mask_failure_0.1"):
                v = [r[k] for r in vals if r.get(k) is not None]
                cells.append(f"{np.mean(v):.5f}" if v else "-")
            print(f"| {name} | " + " | ".join(cells) + " |")
    print()
    for m in metrics:
        dp = m.get("dense_pretrain", {})
        sig = m.get("compute_on_signal")
        imp = dp.get("improvement") or 0.0
        print(f"seed {m['seed']}: dense pre-training converged = {dp.get('converged')} (criterion: best val MSE improves < 1% over "
              f"the last 3 epochs; here " + (f"improved {100 * imp:.2f}%" if imp > 0 else
                                            f"the last 3 epochs' best is {100 * -imp:.2f}% above the earlier best") +
              f", {dp.get('epochs')} epochs)"
              + (f"; computed tiles holding rain {100 * sig['computed_tiles_with_signal']:.0f}% vs all tiles "
                 f"{100 * sig['tiles_with_signal']:.0f}%" if sig else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
