"""Sensor search against the one-second QR placement (issue: part 8).

For each (data, backbone, seed) the dense model is trained once, by a first run that
fine-tunes it with every sensor kept; every scheme and sparsity then loads that dense
checkpoint and gets the same fine-tuning, and so does the dense model with every sensor
kept ("dense + same fine-tuning": what the fine-tuning epochs alone give, the fair
reference for a pruning cost). The first run drew its fine-tuning from another random
stream (it trained the dense model first); the table compares it with the loaded one as a
measure of the fine-tuning's noise.

Prints, per setting and sparsity, the full-field test MAE of each scheme (mean +- sd over
seeds and each seed), the change against dense and against dense + same fine-tuning, the
search's wall-clock time, and in how many seeds the default scheme (dynst) beats QR.

Resumable: each finished run is appended to ``<out>/results.jsonl`` and skipped next time.

Usage:
    python benchmarks/sensor_search.py                          # metr-la-week STID, seeds 0-2, 0.3 and 0.5
    python benchmarks/sensor_search.py --suite others           # GWN metr-la-week, STID ghcnd-us, ViT era5, seed 0
    python benchmarks/sensor_search.py --table-only             # print the table from results.jsonl
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import torch

SUITES = {
    "metr": [("metr-la-week", "stid", {})],
    "others": [
        ("ghcnd-us", "stid", {}),
        ("era5-t2m-uk", "vit", {"epochs": 10, "patience": 5, "finetune_epochs": 5, "batch_size": 16}),
        ("metr-la-week", "gwn", {"backbone_options": {"preset": "small"}, "epochs": 15, "patience": 3, "finetune_epochs": 8}),
    ],
}
SEEDS = {"metr": [0, 1, 2], "others": [0]}
SCHEMES = ["qr", "dynst", "dynst-paper", "random"]
DENSE_FT = "dense-ft"
"""The dense model given the same fine-tuning with every sensor kept (sparsity 0): the
reference a pruned row's fine-tuning epochs must be judged against."""


def in_process(r: dict) -> bool:
    """Whether the row's run trained the dense model itself (the first run of a seed)
    rather than loading its checkpoint: its fine-tuning then draws a different random
    stream (batch order, dropout) than the rows that load it."""
    return r["dense_checkpoint"] == str(Path(r["run_dir"]) / "checkpoints" / "dense.ckpt")


def job_key(r: dict) -> tuple:
    return (r["data"], r["backbone"], r["seed"], r["scheme"], r["sparsity"])


def key(r: dict) -> tuple:
    """A result's key: its job, and whether its run trained the dense model."""
    return (*job_key(r), in_process(r))


def compared(rows: list[dict]) -> dict[tuple, dict]:
    """One row per job (by :func:`job_key`): the run that loaded the dense checkpoint (every
    compared row starts from the same loaded weights and random state), else the in-process one."""
    best = {}
    for r in rows:
        k = job_key(r)
        if k not in best or in_process(best[k]) and not in_process(r):
            best[k] = r
    return best


def load(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def run_all(args) -> None:
    from sparsest.bench.dynst import scheme_options
    from sparsest.engine.options import build_options
    from sparsest.methods.dynst.config import RunConfig
    from sparsest.methods.dynst.run import run

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    res_path = out / "results.jsonl"
    done = {key(r): r for r in load(res_path)}
    for data, backbone, opts in SUITES[args.suite]:
        if args.only and f"{data}/{backbone}" not in args.only:
            continue
        for seed in args.seeds or SEEDS[args.suite]:
            dense = next((r["dense_checkpoint"] for r in done.values() if (r["data"], r["backbone"], r["seed"]) == (data, backbone, seed)), None)
            jobs = [(s, sp) for sp in args.sparsities for s in args.schemes]
            if args.dense_finetune:
                jobs.append((DENSE_FT, 0.0))
            if dense is None:  # the first run trains the dense model; every compared row then loads it
                jobs.insert(0, jobs[-1] if args.dense_finetune else jobs[0])
            for scheme, sparsity in jobs:
                job = {"data": data, "backbone": backbone, "seed": seed, "scheme": scheme, "sparsity": sparsity}
                if (*job_key(job), dense is None) in done:
                    continue
                o = {**opts, "data": data, "backbone": backbone, "seed": seed,
                     "scheme": "random" if scheme == DENSE_FT else scheme,  # sparsity 0: every sensor kept
                     "sensor_sparsity": sparsity, "out": str(out / "runs")}
                if dense:
                    o["dense_checkpoint"] = dense
                cfg = build_options(RunConfig, ("--set", scheme_options(o)))
                print(f"== {data} {backbone} seed {seed} {scheme} s={sparsity}", flush=True)
                t0 = time.perf_counter()
                run_dir, m = run(cfg)
                dense = dense or str(run_dir / "checkpoints" / "dense.ckpt")
                r = {**job, "dense": m["dense"]["mae"], "pruned": m["pruned"]["mae"],
                     "kept_only": m["pruned_kept_only"]["mae"], "off_only": m["pruned_switched_off_only"]["mae"],
                     "persistence": m["baselines"]["persistence"]["mae"],
                     "historical_average": m["baselines"]["historical_average"]["mae"],
                     "search_s": m["time_s"]["search"], "finetune_s": m["time_s"]["finetune"],
                     "n_kept": m["n_kept"], "n_sensors": m["n_sensors"], "run_s": time.perf_counter() - t0,
                     "finetune_schedule": cfg.finetune_schedule,
                     "run_dir": str(run_dir), "dense_checkpoint": dense,
                     "machine": f"{platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}",
                     "date": time.strftime("%Y-%m-%d")}
                done[key(r)] = r
                with res_path.open("a") as f:
                    f.write(json.dumps(r) + "\n")
                print(f"   full field {r['pruned']:.4f} (dense {r['dense']:.4f}, {100 * (r['pruned'] / r['dense'] - 1):+.2f}%), "
                      f"search {r['search_s']:.1f} s", flush=True)


def table(out: Path) -> str:
    every = load(out / "results.jsonl")
    if not every:
        return "no results yet"
    by_job = compared(every)
    rows = list(by_job.values())
    lines = []
    machines = sorted({r["machine"] for r in rows})
    dates = sorted({r["date"] for r in rows})
    lines.append(f"Machine: {'; '.join(machines)}; {', '.join(dates)}")
    lines.append("")
    lines.append("| data | backbone | sparsity | scheme | full-field test MAE | per seed | vs dense | vs dense + same fine-tuning "
                 "| kept-only | switched-off only | search time |")
    lines.append("|---|---|---|---|---|---|---|---|---|---|---|")
    settings = sorted({(r["data"], r["backbone"], r["sparsity"]) for r in rows if r["scheme"] != DENSE_FT})
    verdicts = []
    for data, backbone, sp in settings:
        g = [r for r in rows if (r["data"], r["backbone"], r["sparsity"]) == (data, backbone, sp)]
        dense = statistics.mean({r["seed"]: r["dense"] for r in g}.values())
        lines.append(f"| {data} | {backbone} | {sp:g} | dense | {dense:.3f} | "
                     f"{' / '.join(f'{v:.3f}' for _, v in sorted({r['seed']: r['dense'] for r in g}.items()))} | | | | | |")
        ft = sorted((r for r in rows if (r["data"], r["backbone"], r["scheme"]) == (data, backbone, DENSE_FT)),
                    key=lambda r: r["seed"])
        dense_ft = statistics.mean(r["pruned"] for r in ft) if ft else None
        if ft:
            per = " / ".join(f"{r['pruned']:.3f}" for r in ft)
            lines.append(f"| {data} | {backbone} | {sp:g} | dense + same fine-tuning | {dense_ft:.3f} | {per} | "
                         f"{100 * (dense_ft / dense - 1):+.2f}% | | | | |")
        by = {}
        for scheme in SCHEMES:
            s = sorted((r for r in g if r["scheme"] == scheme), key=lambda r: r["seed"])
            if not s:
                continue
            by[scheme] = {r["seed"]: r["pruned"] for r in s}
            vals = [r["pruned"] for r in s]
            mean = statistics.mean(vals)
            sd = f" ± {statistics.stdev(vals):.3f}" if len(vals) > 1 else ""
            lines.append(f"| {data} | {backbone} | {sp:g} | {scheme} | {mean:.3f}{sd} | {' / '.join(f'{v:.3f}' for v in vals)} | "
                         f"{100 * (mean / dense - 1):+.2f}% | {'' if dense_ft is None else f'{100 * (mean / dense_ft - 1):+.2f}%'} | "
                         f"{statistics.mean(r['kept_only'] for r in s):.3f} | "
                         f"{statistics.mean(r['off_only'] for r in s):.3f} | {statistics.mean(r['search_s'] for r in s):.1f} s |")
        if "dynst" in by and "qr" in by:
            seeds = sorted(set(by["dynst"]) & set(by["qr"]))
            wins = sum(by["dynst"][k] < by["qr"][k] for k in seeds)
            md = statistics.mean(by["dynst"][k] for k in seeds)
            mq = statistics.mean(by["qr"][k] for k in seeds)
            verdicts.append(f"- {data} {backbone} s={sp:g}: dynst {md:.4f} vs qr {mq:.4f} (mean over {len(seeds)} seeds, "
                            f"{'below' if md < mq else 'NOT below'}); dynst below qr in {wins} of {len(seeds)} seeds")
    noise = [f"{r['data']} {r['backbone']} seed {r['seed']} {r['scheme']} s={r['sparsity']:g}: "
             f"{r['pruned']:.4f} vs {by_job[job_key(r)]['pruned']:.4f}"
             for r in every if in_process(r) and not in_process(by_job[job_key(r)])]
    if noise:
        verdicts += ["", "Fine-tuning noise (the same keep-set from the same dense weights, fine-tuned right after "
                     "training the dense model in the same process, i.e. another random stream, vs loaded): "
                     + "; ".join(noise)]
    return "\n".join(lines + [""] + verdicts)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--suite", choices=sorted(SUITES), default="metr")
    ap.add_argument("--seeds", type=int, nargs="+", default=None)
    ap.add_argument("--sparsities", type=float, nargs="+", default=[0.3, 0.5])
    ap.add_argument("--schemes", nargs="+", default=SCHEMES, choices=SCHEMES)
    ap.add_argument("--out", default=None, help="[default: bench_out/sensor_search_<suite>]")
    ap.add_argument("--only", nargs="+", default=None, metavar="DATA/BACKBONE",
                    help="run only these settings of the suite, e.g. metr-la-week/gwn (two benchmarks side by side)")
    ap.add_argument("--no-dense-finetune", dest="dense_finetune", action="store_false",
                    help="skip the dense + same fine-tuning reference row (every sensor kept)")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (two benchmarks side by side: 1 each)")
    ap.add_argument("--table-only", action="store_true", help="only print the table of what results.jsonl holds")
    args = ap.parse_args()
    args.out = args.out or f"bench_out/sensor_search_{args.suite}"
    if args.threads:
        torch.set_num_threads(args.threads)
    if not args.table_only:
        run_all(args)
    print(table(Path(args.out)))


if __name__ == "__main__":
    main()
