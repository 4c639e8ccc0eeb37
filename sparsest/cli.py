"""The ``sparsest`` command line. Config files and option parsing live only here."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from .errors import ConfigError, SparsestError

RUN_HELP = {
    "data": "data set name (see `sparsest datasets`) or path to your signals / grid file "
    "(CSV T x N with a header of sensor ids, .npz/.npy [T, N(, C)], PEMS .npz, METR-LA .h5, "
    "grid .npz/.nc [T, (C,) H, W], TaxiBJ .h5) [default: ghcnd-us, built in]",
    "backbone": "forecaster (see `sparsest backbones`) [default: stid]",
    "sparsity": "fraction of sensors switched off, in [0, 1) [default: 0.3]",
    "scheme": "sensor-search scheme: dynst (iterative pruning + drop/regrow), iterative (no regrow), "
    "one-shot, dst (fixed sparsity with drop/regrow), random (random keep-set, same fine-tuning) [default: dynst]",
    "epochs": "max epochs of dense training and of fine-tuning (early stopping on validation MAE) [default: 40]",
    "finetune_epochs": "max epochs of the fine-tuning after the search [default: --epochs]",
    "seed": "random seed [default: 0]",
    "out": "parent folder for run directories; each run gets a new one [default: runs]",
    "data_dir": "folder with the named data sets (metr-la-week/, era5-t2m-uk/) "
    "[default: $SPARSEST_DATA_DIR, else ../shared/data beside the repository]",
    "adjacency": "your adjacency: dense CSV/NPY N x N, edge-list CSV (from,to,cost|weight), or DCRNN adj_mx.pkl",
    "locations": "your sensor locations: CSV with sensor_id, latitude, longitude",
    "window": "input length T [time steps] [default: per data set, 12 for METR-LA]",
    "horizon": "forecast length S [time steps] [default: per data set, 12 for METR-LA]",
    "batch_size": "windows per batch [default: 32]",
    "lr": "learning rate of the network (AdamW) [default: 0.002]",
    "weight_decay": "AdamW weight decay of the network [default: 0.0001]",
    "patience": "early-stopping patience [epochs] [default: 8]",
    "rounds": "pruning rounds; each prunes sparsity/rounds of the sensors [default: 10]",
    "round_steps": "R: network training steps per round [optimiser steps] [default: 25]",
    "mask_steps": "M: mask-score training steps per round [optimiser steps] [default: 10]",
    "regrow_fraction": "q: fraction of all sensors dropped and regrown between rounds [default: 0.01]",
    "mask_lr": "learning rate of the sensor scores [default: 0.05]",
    "mask_l1": "L1 pull on sensor scores while they train (relative to the scaled loss) [default: 0.05]",
    "patch_size": "patch side p [pixels]; on grids each p x p patch is one sensor [default: 4]",
    "accelerator": "lightning accelerator: cpu, gpu, auto [default: cpu]",
    "devices": "lightning devices, e.g. 1, 2 or auto [default: 1]",
    "strategy": "lightning strategy, e.g. ddp for multi-GPU [default: auto]",
    "bench_batch": "batch size of the dense-vs-pruned latency and FLOPs measurement [default: 64]",
    "bench_repeats": "timed repeats of each model in the latency measurement (median reported) [default: 10]",
    "dense_checkpoint": "reuse the dense model of an earlier run (its checkpoints/dense.ckpt) instead of training one",
    "limit_train_batches": "batches per epoch: fraction (<= 1.0) or count, for quick runs [default: 1.0]",
    "sample_pruning": "train the dense model and the sensor search on pruned training windows: "
    "none, st-prune, infobatch, infobatch-budget, random, static [default: none]",
    "prune_ratio": "fraction of training windows skipped per pruned epoch, in [0, 1) [default: 0.5]",
}


def _run_parser(sub) -> argparse.ArgumentParser:
    from .experiment import RunConfig

    p = sub.add_parser(
        "run",
        help="find which sensors can be switched off (DynST) and report the accuracy cost",
        description="Train a dense forecaster, search a sensor keep-set at the given sparsity, fine-tune, "
        "and write metrics, the sensor table, an importance map, checkpoints and a report to a new run directory.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter if False else argparse.HelpFormatter,
    )
    p.add_argument("--config", type=Path, help="YAML file whose keys are these options (command-line options win)")
    types = {f.name: f.type for f in dataclasses.fields(RunConfig)}
    for name, text in RUN_HELP.items():
        flag = "--" + name.replace("_", "-")
        t = types[name]
        conv = {"int": int, "float": float, "int | None": int, "str | None": str, "str": str}.get(str(t).replace("'", ""), str)
        if name == "limit_train_batches":
            conv = lambda v: float(v) if "." in v else int(v)  # noqa: E731
        if name == "devices":
            conv = lambda v: v if v == "auto" else int(v)  # noqa: E731
        p.add_argument(flag, dest=name, type=conv, default=argparse.SUPPRESS, help=text)
    return p


# Other methods' bench suites: suite name -> "module:function", called as function(args, console) -> int
# (exit code). The dynst suite is built into the `bench` branch of main().
BENCH_SUITES: dict[str, str] = {"dynst": "", "st-prune": ".train:bench_suite", "dyna-pruner": ".compress:bench_suite"}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sparsest",
        description="Resource-efficient spatio-temporal forecasting: find which sensors can be switched off "
        "(DynST) and what that costs in accuracy.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    _run_parser(sub)
    b = sub.add_parser(
        "bench",
        help="paper-style tables: accuracy and measured speedup per backbone, sparsity and scheme",
        description="Train each backbone once per data set and seed, run DynST at several sparsities and the other "
        "schemes at one sparsity, measure dense vs pruned latency (batch 1 and 64) and FLOPs side by side, and write "
        "table1/2/4 (.md, .csv), speedups.csv and accuracy_vs_sparsity.png.",
    )
    b.add_argument("--datasets", nargs="+", default=["metr-la-week", "era5-t2m-uk"], help="data sets [default: metr-la-week era5-t2m-uk]")
    b.add_argument("--backbones", nargs="+", default=None, help="backbones [default: every trainable one of each data set's kind]")
    b.add_argument("--sparsities", nargs="+", type=float, default=None, help="DynST sparsities for Table 2 [default: 0.1 .. 0.6; quick: 0.3 0.5]")
    b.add_argument("--schemes", nargs="+", default=None, help="schemes for Table 4 [default: dynst one-shot iterative dst random]")
    b.add_argument("--seeds", nargs="+", type=int, default=[0], help="seeds; tables show the mean [default: 0]")
    b.add_argument("--table1-sparsity", type=float, default=0.3, help="sparsity of Tables 1 and 4 [default: 0.3]")
    b.add_argument("--quick", action="store_true", help="2 epochs of 6 batches, 3 short rounds, sparsities 0.3 and 0.5 (minutes)")
    b.add_argument("--epochs", type=int, default=None, help="max epochs per training [default: as sparsest run]")
    b.add_argument("--data-dir", default=None, help="folder with the named data sets")
    b.add_argument("--from-runs", nargs="+", default=None, metavar="RUNS_DIR",
                   help="do not train: rebuild the tables from finished run directories (e.g. an interrupted bench's out/runs)")
    b.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE",
                   help="any `sparsest run` option for every run, e.g. --set batch_size=16 round_steps=10")
    b.add_argument("--out", default="bench_out", help="output folder [default: bench_out]")
    b.add_argument("--suite", choices=sorted(BENCH_SUITES), default="dynst",
                   help="which method's tables: dynst (sensor pruning, Tables 1/2/4), st-prune (sample pruning: "
                   "test MAE vs per-epoch time at 10-90%% budgets, Figure 4), dyna-pruner (input-adaptive data + channel "
                   "co-pruning of grid backbones: Tables I-IV, see --tables) [default: dynst]")
    b.add_argument("--tables", nargs="+", type=int, default=None, metavar="K",
                   help="dyna-pruner suite only: which paper tables: 1 2 (Dyna-Pruner vs dense / MP / random, robustness; "
                   "one compress run per backbone), 3 (sensitivity to s_d, s_w at (0.5,0.5) (0.7,0.5) (0.7,0.7) (0.9,0.7) "
                   "(0.9,0.9)), 4 (ablation: DP only, MP only, independent DP + MP, full); 3 and 4 share one dense "
                   "pre-training per backbone (default backbone simvp) [default: 1 2; with --from-runs: all the runs support]")
    from .train import add_train_parser

    add_train_parser(sub)
    from .compress import add_compress_parser

    add_compress_parser(sub)
    sub.add_parser("datasets", help="list the registered data sets")
    sub.add_parser("backbones", help="list the registered backbones and baselines")
    return parser


def _load_yaml(path: Path) -> dict:
    import yaml

    if not path.exists():
        raise ConfigError(f"{path}: no such config file")
    try:
        cfg = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(cfg, dict):
        raise ConfigError(f"{path}: expected a mapping of option: value")
    return {k.replace("-", "_"): v for k, v in cfg.items()}


def _parse_set(items: list[str], config_cls=None) -> dict:
    """``["batch_size=16", ...]`` -> ``{"batch_size": 16}``; keys checked against the fields of
    ``config_cls`` (default :class:`~sparsest.experiment.RunConfig`).

    Raises:
        ConfigError: naming ``--set`` and the known keys.
    """
    import yaml

    if config_cls is None:
        from .experiment import RunConfig as config_cls

    known = {f.name for f in dataclasses.fields(config_cls)}
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or key not in known:
            raise ConfigError(f"--set: expected KEY=VALUE with KEY one of {', '.join(sorted(known))}, got {item!r}")
        out[key] = yaml.safe_load(value)
    return out


def config_from_args(args: argparse.Namespace):
    """Defaults < ``--config`` file < explicit options. Raises ConfigError on unknown keys."""
    from .experiment import RunConfig

    values = {}
    if getattr(args, "config", None):
        values.update(_load_yaml(args.config))
    values.update({k: v for k, v in vars(args).items() if k not in ("command", "config")})
    known = {f.name for f in dataclasses.fields(RunConfig)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f"{args.config or 'options'}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    try:
        return RunConfig(**values)
    except TypeError as e:
        raise ConfigError(f"config: {e}") from None


def _summary_table(metrics: dict, console, run_dir: Path) -> None:
    from rich.table import Table

    t = Table(title=f"{metrics['data']} · {metrics['backbone']} · {metrics['scheme']} · "
              f"{metrics['n_kept']}/{metrics['n_sensors']} sensors kept (sparsity {metrics['sparsity']:.2f})")
    for col in ("model", f"MAE ({metrics['units']})", "RMSE", "MAPE %"):
        t.add_column(col, justify="right" if col != "model" else "left")
    rows = [("persistence", metrics["baselines"]["persistence"]),
            ("historical average", metrics["baselines"]["historical_average"]),
            ("dense", metrics["dense"]),
            (f"+{metrics['scheme']} (full field)", metrics["pruned"]),
            (f"+{metrics['scheme']} (kept only)", metrics["pruned_kept_only"])]
    for name, m in rows:
        t.add_row(name, f"{m['mae']:.4f}", f"{m['rmse']:.4f}", f"{m['mape']:.2f}")
    console.print(t)
    console.print(f"full-field MAE vs dense: {metrics['mae_increase_pct']:+.2f}%   time {metrics['time_s']['total']:.0f} s")
    lat, gf = metrics["latency_ms"], metrics["gflops"]
    note = "" if metrics["runs_on_kept_sensors_only"] else " (this backbone runs on the masked full input: no compute saving)"
    console.print(f"batch {lat['batch']}: latency {lat['dense']:.2f} -> {lat['pruned']:.2f} ms (x{lat['speedup']:.2f}), "
                  f"GFLOPs {gf['dense']:.3f} -> {gf['pruned']:.3f}{note}")
    console.print(f"run directory: {run_dir}")


def main(argv: list[str] | None = None) -> int:
    from rich.console import Console

    parser = build_parser()
    args = parser.parse_args(argv)
    console = Console(stderr=False)
    err = Console(stderr=True)
    try:
        if args.command == "datasets":
            from .datasets import get_dataset_entry, list_datasets

            for name in list_datasets():
                e = get_dataset_entry(name)
                console.print(f"{name:<14} {e.kind:<6} {e.summary}", highlight=False)
            return 0
        if args.command == "backbones":
            from .backbones import get_backbone_entry, list_backbones

            for name in list_backbones():
                e = get_backbone_entry(name)
                console.print(f"{name:<20} {e.kind:<6} {e.summary}", highlight=False)
            return 0
        if args.command == "bench" and args.tables is not None and args.suite != "dyna-pruner":
            raise ConfigError(f"--tables: only for --suite dyna-pruner (the {args.suite} suite always writes all its tables)")
        if args.command == "bench" and args.suite != "dynst":
            import importlib

            module, func = BENCH_SUITES[args.suite].split(":")
            return getattr(importlib.import_module(module, __package__), func)(args, console)
        if args.command == "bench":
            from .bench import BenchConfig, run_bench
            from .pruning.masks import check_sparsity

            for v in (args.sparsities or []) + [args.table1_sparsity]:
                check_sparsity(v, "--sparsities")
            opts = {k: v for k, v in (("epochs", args.epochs), ("data_dir", args.data_dir)) if v is not None}
            opts.update(_parse_set(args.set))
            cfg = BenchConfig(datasets=args.datasets, backbones=args.backbones, seeds=args.seeds,
                              table1_sparsity=args.table1_sparsity, quick=args.quick, out=args.out, run_options=opts)
            if args.sparsities:
                cfg.sparsities = args.sparsities
            if args.schemes:
                cfg.schemes = args.schemes
            if args.from_runs:
                from .bench import tables_from_runs

                paths = tables_from_runs(args.from_runs, args.out, args.table1_sparsity)
            else:
                paths = run_bench(cfg, console=console)
            for name in ("table1", "table2", "table4"):
                console.print(paths[name].read_text(), markup=False, highlight=False)
            console.print(f"written: {', '.join(str(p) for p in paths.values())}")
            return 0
        if args.command == "train":
            from .train import run_train_command

            return run_train_command(args, console)
        if args.command == "compress":
            from .compress import run_compress_cli

            return run_compress_cli(args, console)
        if args.command == "run":
            from .experiment import run

            config = config_from_args(args)
            run_dir, metrics = run(config, console=console)
            _summary_table(metrics, console, run_dir)
            return 0
        parser.print_help()
        return 1
    except SparsestError as e:
        err.print(f"sparsest: error: {e}", highlight=False, markup=False, soft_wrap=True)
        return 2
    except KeyboardInterrupt:
        err.print("sparsest: interrupted; the unfinished run directory ends in .partial")
        return 130


if __name__ == "__main__":
    sys.exit(main())
