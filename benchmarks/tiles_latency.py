"""Batch-1 latency of Dyna-Pruner's ``tiles`` reading against dense SimVP, eager and compiled.

The question it answers: how much of the eager batch-1 ratio is the tiled path's own saving,
and how much is the dense model's per-operator overhead that a deployment would compile
away anyway. Four rows, timed interleaved (one forward of each per round, the same test
window for all), medians over ``--repeats`` rounds after a warm-up:

- ``dense``: the dense SimVP, eager;
- ``dense, compiled``: ``torch.compile`` of the same model (Inductor);
- ``tiles``: the Dyna-Pruner wrapper (importance map, tile mask, compact rows), eager;
- ``tiles, compiled``: the same wrapper with :meth:`~sparsest.pruning.adaptive.DynaPruner.compile_rows`
  (the row network through ``torch.compile``; the mask and index building stay eager).

GFLOPs per window (``FlopCounterMode``) give the FLOPs-implied ideal ratio beside the
measured ones.

    python benchmarks/tiles_latency.py --runs bench_out/radar/runs5          # finished compress runs
    python benchmarks/tiles_latency.py --data radar-bom-2km --random-weights  # no training: latency only
    python benchmarks/tiles_latency.py --data radar-bom-2km --random-weights --data-sparsity 0.7 0.8 0.9 --tiles 8 8

With ``--random-weights`` the SimVP and the mask generator are untrained (the tile mask is
the top tiles of a random importance map, as many as the trained model keeps): latency does
not depend on the weights, only on the number of active tiles, so this measures a frame
size without training a model for it; its forecasts mean nothing.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def _models_from_run(run: Path):
    """(dense, dyna, test windows) rebuilt from a finished compress run."""
    from sparsest.engine.options import build_options
    from sparsest.methods.dynapruner import run as R

    cfg = build_options(R.CompressConfig, (str(run / "config.yaml"), R.RunDirectory(run).read_config()))
    prep = R.prepare(cfg)

    def state(name):
        sd = torch.load(run / "checkpoints" / f"{name}.ckpt", map_location="cpu", weights_only=True)["state_dict"]
        return {k[len("model."):]: v for k, v in sd.items() if k.startswith("model.")}

    dense = R.create_backbone(cfg.backbone, prep.spec, **cfg.backbone_options)
    dense.load_state_dict(state("dense"))
    dyna = R.make_wrapper(R.create_backbone(cfg.backbone, prep.spec, **cfg.backbone_options), prep.spec, cfg, "dyna",
                          cfg.reading, 0)
    dyna.load_state_dict(state("dynapruner"))
    if dyna.soft:
        dyna.calibrate_budget(prep.loaders["train"])
    return cfg, dense, dyna, prep.loaders["test"].dataset


def _random_models(data: str, seed: int, data_sparsity: float = 0.7, tiles: list[int] | None = None):
    from sparsest.methods.dynapruner import run as R

    cfg = R.CompressConfig(data=data, backbone="simvp", seed=seed, data_sparsity=data_sparsity, tiles=list(tiles or []))
    prep = R.prepare(cfg)
    torch.manual_seed(seed)
    dense = R.create_backbone("simvp", prep.spec)
    dyna = R.make_wrapper(R.create_backbone("simvp", prep.spec), prep.spec, cfg, "random", "tiles", 0)
    return cfg, dense, dyna, prep.loaders["test"].dataset


def measure(dense, dyna, windows, repeats: int, compile_mode: str | None) -> dict:
    """Interleaved batch-1 medians (ms) of the four rows over ``windows`` (cycled)."""
    from sparsest.efficiency import count_flops

    dense.eval()
    dyna.eval()
    dyna.mode = "tiled"
    opts = {"mode": compile_mode} if compile_mode else {}
    dense_c = torch.compile(dense, **opts)
    tiles_c = __import__("copy").deepcopy(dyna)
    tiles_c.compile_rows(**opts)
    rows = {"dense": dense, "dense, compiled": dense_c, "tiles": dyna, "tiles, compiled": tiles_c}
    t0 = time.perf_counter()
    with torch.inference_mode():
        for x in windows[:2]:  # compile (and check the compiled forecasts)
            for name, fa, fb in (("dense", dense_c, dense), ("tiles", tiles_c, dyna)):
                torch.manual_seed(0)  # the random policy's importance map: the same draw for both
                a = fa(x)
                torch.manual_seed(0)
                b = fb(x)
                err = float((a - b).abs().max() / b.abs().max().clamp_min(1e-12))
                if err > 1e-4:
                    raise RuntimeError(f"compiled {name} differs from eager by {err:.2e} of the forecast's largest value")
    compile_s = time.perf_counter() - t0
    times = {k: [] for k in rows}
    with torch.inference_mode():
        for r in range(3 + repeats):
            x = windows[r % len(windows)]
            for name, m in rows.items():
                t = time.perf_counter()
                m(x)
                if r >= 3:
                    times[name].append(1000 * (time.perf_counter() - t))
    gflops = {"dense": count_flops(lambda: dense(windows[0])) / 1e9}
    gflops["tiles"] = statistics.mean(count_flops(lambda x=x: dyna(x)) for x in windows[:4]) / 1e9
    return {"ms": {k: statistics.median(v) for k, v in times.items()}, "gflops": gflops, "compile_s": compile_s,
            "keep_tiles": int(dyna.keep_tiles), "grid": list(dyna.tiles)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--runs", type=Path, help="a directory of finished `sparsest compress` runs (SimVP, tiles reading)")
    src.add_argument("--data", help="with --random-weights: the data set whose frame size is measured")
    p.add_argument("--random-weights", action="store_true", help="untrained models (latency only; see above)")
    p.add_argument("--data-sparsity", type=float, nargs="+", default=[0.7],
                   help="with --random-weights: s_d values to time (fraction of tiles skipped; default 0.7)")
    p.add_argument("--tiles", type=int, nargs=2, metavar=("ROWS", "COLS"),
                   help="with --random-weights: tile grid (default: tiles of 8 x 8 pixels)")
    p.add_argument("--repeats", type=int, default=100, help="timed rounds (default 100)")
    p.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    p.add_argument("--windows", type=int, default=8, help="test windows cycled through (default 8)")
    p.add_argument("--compile-mode", default=None, help="torch.compile mode (default: its default)")
    p.add_argument("--json", type=Path, help="also write the numbers here")
    a = p.parse_args(argv)
    if a.data and not a.random_weights:
        p.error("--data measures untrained models: add --random-weights (or use --runs)")
    if a.runs and a.random_weights:
        p.error("--random-weights goes with --data, not --runs")
    if a.runs and (a.tiles or a.data_sparsity != [0.7]):
        p.error("--data-sparsity / --tiles go with --random-weights (a run has its own)")
    if any(not 0 < s < 1 for s in a.data_sparsity):
        p.error(f"--data-sparsity: values in (0, 1), got {a.data_sparsity}")
    if a.tiles and min(a.tiles) < 1:
        p.error(f"--tiles: two integers >= 1, got {a.tiles}")
    if a.repeats < 1 or a.threads < 1 or a.windows < 1:
        p.error("--repeats, --threads and --windows must be >= 1")
    torch.set_num_threads(a.threads)
    if a.runs:
        runs = sorted(d for d in a.runs.glob("*_simvp_dynapruner_*") if (d / "metrics.json").exists())
        if not runs:
            p.error(f"--runs {a.runs}: no finished SimVP compress run there")
        sources = [(d.name, lambda d=d: _models_from_run(d)) for d in runs]
    else:
        sources = [(f"{a.data} (random weights, s_d {s})", lambda s=s: _random_models(a.data, 0, s, a.tiles))
                   for s in a.data_sparsity]
    print(f"machine: {platform.machine()}, {platform.python_version()}, torch {torch.__version__}, "
          f"{a.threads} threads, {time.strftime('%Y-%m-%d %H:%M')}")
    print("| run | tiles kept | GFLOPs dense / tiles (ideal x) | dense ms | dense compiled ms | tiles ms | tiles compiled ms "
          "| eager x | compiled x | compiled tiles vs eager dense x | compile s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    out = {}
    for name, build in sources:
        cfg, dense, dyna, ds = build()
        if dyna.reading != "tiles":
            print(f"| {name} | reading {dyna.reading}: skipped (only the tiles reading has the compact-row path) |")
            continue
        idx = range(0, len(ds), max(1, len(ds) // a.windows))
        windows = [ds[i]["x"][None] for i in idx][: a.windows]
        r = measure(dense, dyna, windows, a.repeats, a.compile_mode)
        ms, g = r["ms"], r["gflops"]
        out[name] = r
        print(f"| {name} | {r['keep_tiles']} of {r['grid'][0] * r['grid'][1]} | {g['dense']:.3f} / {g['tiles']:.3f} "
              f"(x{g['dense'] / g['tiles']:.2f}) | {ms['dense']:.2f} | {ms['dense, compiled']:.2f} | {ms['tiles']:.2f} | "
              f"{ms['tiles, compiled']:.2f} | x{ms['dense'] / ms['tiles']:.2f} | "
              f"x{ms['dense, compiled'] / ms['tiles, compiled']:.2f} | x{ms['dense'] / ms['tiles, compiled']:.2f} | "
              f"{r['compile_s']:.0f} |", flush=True)
    if a.json:
        a.json.write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
