"""The ``sparsest`` command line. Config files and option parsing live only here.

Every sub-command is built by one function (:func:`add_command`) from its options class
(pydantic dataclasses: help text, type and range next to each field); values come from
defaults < ``--config FILE.yaml`` < ``--set KEY=VALUE`` < command-line options and are
validated by :func:`sparsest.engine.options.build_options`. Any bad input ends with one line
``sparsest: error: ...`` naming the option or file (exit status 2), never a traceback.
torch and Lightning are imported only by the commands that train, so ``--help``,
``datasets`` and ``backbones`` answer at once.
"""

from __future__ import annotations

import argparse
import sys

from .engine.options import aliases_of, build_options, fields_of, flag, load_yaml, parse_set
from .errors import ConfigError, SparsestError

# command -> (module of its options class, class name, one-line help, description)
RESUMABLE = ("run", "plan", "train", "compress")


class _Parser(argparse.ArgumentParser):
    """argparse with sparsest's one-line error (``sparsest CMD: error: ...``, exit 2)."""

    def error(self, message: str):  # noqa: D401 - argparse API
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _options_classes() -> dict:
    from .methods.dynapruner.config import CompressConfig
    from .methods.dynst.config import RunConfig
    from .methods.dynst.plan_config import PlanConfig
    from .methods.stprune.config import TrainConfig

    return {"run": RunConfig, "plan": PlanConfig, "train": TrainConfig, "compress": CompressConfig}


COMMANDS = {
    "run": ("find which sensors can be switched off (DynST) and report the accuracy cost",
            "Train a dense forecaster, search a sensor keep-set at the given sparsity, fine-tune, and write metrics, the "
            "sensor table, an importance map, checkpoints and a report to a new run directory."),
    "plan": ("the largest sensor sparsity whose validation error stays within a budget (--max-increase), in one search",
             "The budget is a relative increase of the validation error (--metric) over the dense model's: "
             "--max-increase 0.03 allows at most (1 + 0.03) x the dense validation error, checked on an upper "
             "confidence bound of each candidate's validation error (--confidence, default 0.95: a moving-block "
             "bootstrap of its error ratio to the dense model over the validation windows, so a short validation split "
             "accepts fewer switched-off sensors; 0 checks the error itself). Train a dense forecaster, then "
             "walk up the sensor sparsity in steps of --checkpoint-step with one continued DynST search; at every "
             "checkpoint the search's keep-set and the QR keep-set of the same size each get a short fine-tuning "
             "(--checkpoint-finetune-epochs) and their validation error is measured. The search stops at the first "
             "checkpoint where neither is within the budget (or at --max-sparsity). Calibration: that first "
             "checkpoint over the budget is fine-tuned fully (--finetune-epochs); within the budget there, the search "
             "goes on with the short-fine-tuned errors scaled by full / short, and each further pick is verified by "
             "a full fine-tuning, as is the checkpoint where the calibrated walk stops (if it holds, the walk goes on). The largest checkpoint verified within the budget is chosen (the better of the two "
             "keep-sets there; never one over the budget; every sensor when none is within it), confirmed on the "
             "test split, and written with the "
             "accuracy-against-sparsity curve, plan.csv (sensor ids, locations, scores, kept 0/1) and the exported "
             "model to a new run directory. With --sample-pruning (e.g. st-prune) the three savings compose: the "
             "dense model and every fine-tuning train on the pruned windows, a dense model trained on every window "
             "in the same run is the baseline of the budget and of the training time, and the run reports training "
             "time, sensors switched off, GFLOPs and latency, and the accuracy cost of all together, each against "
             "its baseline. On grid data --compress then applies Dyna-Pruner (sparsest compress, options in "
             "--compress-options) to the kept-sensor model, on the kept sensors' inputs, from the plan's weights, in "
             "the sub-directory compress/; GFLOPs and latency are then the Dyna-Pruner model's against the dense "
             "backbone, and the accuracy cost is its test error against the plan's dense model."),
    "train": ("train one backbone with sample pruning (ST-Prune, InfoBatch, random, static) and time it",
              "Train a forecaster on the windows each epoch's sample-pruning policy keeps; write test metrics, per-epoch wall "
              "times, samples seen and the scoring overhead to metrics.json in a new run directory."),
    "compress": ("Dyna-Pruner: input-adaptive data + channel co-pruning of a grid backbone, with MP and random baselines",
                 "Pre-train a dense grid backbone, then train dense / Dyna-Pruner / MP / random with the same budget; write "
                 "metrics.json (MSE, MAE, GFLOPs, latency at batch 1 and 64, robustness), importance-map PNGs and the "
                 "compressed model to a new run directory."),
}


def _kind(annotation) -> str:
    text = str(annotation)
    if annotation is bool:
        return "bool"
    if "list" in text:
        return "list"
    if "dict" in text:
        return "dict"
    return "scalar"


def add_options(p: argparse.ArgumentParser, cls, skip: tuple[str, ...] = (), note: str = "") -> None:
    """One ``--flag`` per field of ``cls`` (and its aliases), help text and default from the
    field; values stay raw strings here and are converted by the options class."""
    alias = {}
    for a, name in aliases_of(cls).items():
        alias.setdefault(name, []).append(a)
    for name, info in fields_of(cls).items():
        extra = info.json_schema_extra or {}
        if not extra.get("cli", True) or name in skip:
            continue
        default = info.get_default(call_default_factory=True)
        shown = " ".join(map(str, default)) if isinstance(default, list) else default
        text = info.description + ("" if "[default:" in info.description else f" [default: {shown}]") + note
        flags = [flag(name)]
        for a in alias.get(name, []):  # old names: their own dest, so errors name the flag the user typed
            p.add_argument(flag(a), dest=a, default=argparse.SUPPRESS, metavar=name.upper(), help=f"same as {flag(name)}")
        kind = _kind(info.annotation)
        if kind == "bool":
            p.add_argument(*flags, dest=name, action=argparse.BooleanOptionalAction, default=argparse.SUPPRESS,
                           help=text.replace("%", "%%"))
        elif kind == "list":
            p.add_argument(*flags, dest=name, nargs="+", default=argparse.SUPPRESS, metavar="V", help=text.replace("%", "%%"))
        else:
            p.add_argument(*flags, dest=name, default=argparse.SUPPRESS, metavar=name.upper(), help=text.replace("%", "%%"))


def _common(p: argparse.ArgumentParser, resumable: bool, set_help: str) -> None:
    p.add_argument("--config", metavar="FILE.yaml", help="YAML file whose keys are these options (command-line options win)")
    p.add_argument("--set", dest="set_items", nargs="+", default=[], metavar="KEY=VALUE", help=set_help)
    if resumable:
        p.add_argument("--resume", metavar="RUN_DIR", help="continue an unfinished (.partial) run directory from its last "
                       "checkpoint, with the options in its config.yaml (no other options)")


def add_command(sub, name: str, cls, help: str, description: str, resumable: bool) -> argparse.ArgumentParser:
    """The sub-parser of one command, built from its options class ``cls``."""
    p = sub.add_parser(name, help=help, description=description)
    _common(p, resumable, "any option of this command as KEY=VALUE (YAML value), e.g. --set batch_size=16 lr=1e-3")
    add_options(p, cls)
    return p


def add_bench(sub) -> argparse.ArgumentParser:
    """``sparsest bench``: the options of every suite; each suite accepts only its own."""
    from .bench.options import SUITE_OPTIONS

    p = sub.add_parser("bench", help="paper-style tables of a method: --suite dynst (sensor pruning, Tables 1/2/4), "
                       "st-prune (sample pruning, Figure 4), dyna-pruner (Tables I-IV)",
                       description="Train each backbone once per data set and seed and run the suite's settings from it; "
                       "write the suite's tables and figures (measured side by side) under --out.")
    p.add_argument("--suite", choices=sorted(SUITE_OPTIONS), default=None, help="which method's tables [default: dynst]")
    _common(p, False, "an option of every run of the suite's command (run / train / compress), e.g. --set batch_size=16")
    from .bench.options import BenchOptions

    add_options(p, BenchOptions)
    for suite, cls in SUITE_OPTIONS.items():
        add_options(p, cls, skip=tuple(fields_of(BenchOptions)), note=f" (--suite {suite} only)")
    return p


def add_report(sub) -> argparse.ArgumentParser:
    """``sparsest report RUN_DIR [RUN_DIR ...] [--out FILE]``."""
    p = sub.add_parser("report", help="write the self-contained report.html of a run directory, or one page comparing "
                       "several runs", description="One RUN_DIR: (re)write RUN_DIR/report.html (or --out FILE) from the "
                       "files in it. Several: one page comparing them (headline figures side by side, validation curves "
                       "overlaid) at --out. The pages open offline: figures, style and script are inline, nothing is fetched.")
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="run directories of run / train / compress / a bench "
                   "(unfinished .partial ones too: the page says so)")
    p.add_argument("--out", metavar="FILE", default=None, help="the HTML file to write; one RUN_DIR: default "
                   "RUN_DIR/report.html; several: default report.html in the current folder. Never inside a run directory "
                   "(other than a run's own report.html)")
    return p


def add_predict(sub) -> argparse.ArgumentParser:
    """``sparsest predict RUN_DIR --data FILE [--out FILE] [--all-windows] [--force]``."""
    p = sub.add_parser("predict", help="forecast the whole field from new readings of the kept sensors with a run's "
                       "exported model", description="Run the exported model of a finished `sparsest run` (RUN_DIR/deploy/"
                       "model.ts) on new readings of the sensors it keeps, in physical units, and write the forecast of "
                       "every sensor of the field (kept and switched off) for the next `horizon` steps, issued at the "
                       "last reading (or at the end of every window with --all-windows). Forecast times are the last input "
                       "time + h x the time step (h = 1..horizon). Missing readings (NaN, empty cells) are filled with the "
                       "training mean, as in training.")
    p.add_argument("run_dir", metavar="RUN_DIR", help="a finished `sparsest run` or `sparsest plan` (DynST) run directory on "
                   "sensor data "
                   "(deploy/model.ts and deploy/sensors.json); train / compress runs export no model")
    p.add_argument("--data", required=True, metavar="FILE", help="the new readings, in the formats --data reads for "
                   "sensors: CSV with a header of sensor ids and a first time column (or year,month,day[,hour,minute] "
                   "columns), .npz (values, timestamps, sensor_ids), .npy, METR-LA .h5. Must hold every sensor of "
                   "deploy/sensors.json's kept_sensors (matched by id; other sensors are ignored) and at least `window` "
                   "evenly spaced rows at the training data's step; timestamps are needed when the model reads the time "
                   "of day or week, unless the training data had none either")
    p.add_argument("--out", metavar="FILE", default=None, help="FILE.csv: a long table issued_at, forecast_time, horizon, "
                   "sensor_id, value (issued_at_row in place of the times when the readings have none); FILE.npz: "
                   "forecast [W, S, N], timestamps [W, S], horizons, sensor_ids, issued_at [W] (W windows, S steps, N "
                   "sensors) [default: the CSV table on standard output]")
    p.add_argument("--all-windows", action="store_true", help="one forecast per window end of the file (every window of "
                   "`window` consecutive readings; windows across a gap in the time column are skipped) [default: only "
                   "the latest window]")
    p.add_argument("--force", action="store_true", help="overwrite an existing --out file")
    return p


def _predict(args) -> int:
    """``sparsest predict``: the forecast to ``--out`` (or the CSV table to standard output)."""
    from .predict import check_out, forecast_table, load_run, predict, read_readings, write_forecast

    run = load_run(args.run_dir)
    out = check_out(args.out, args.force, args.run_dir) if args.out else None
    values, ids, ts = read_readings(args.data)
    fc = predict(run, values, ts, ids, all_windows=args.all_windows, source=args.data)
    for line in fc.notes:
        print(f"sparsest: note: {line}", file=sys.stderr)
    if out is None:
        try:
            forecast_table(fc).to_csv(sys.stdout, index=False)
            sys.stdout.flush()
        except BrokenPipeError:  # e.g. | head: the reader has what it wants
            import os

            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    write_forecast(fc, out)
    W, S, N, _ = fc.values.shape
    last = (f"issued at {str(fc.issued_at[-1].astype('datetime64[s]')).replace('T', ' ')}" if fc.issued_at is not None
            else f"issued at row {fc.issued_at_row[-1]}")
    print(f"wrote {out}: {W} forecast(s) x {S} steps x {N} sensors ({len(fc.kept_sensors)} read, "
          f"{N - len(fc.kept_sensors)} switched off), last {last}")
    return 0


def _report_out(out: str, run_dirs: list, own: str | None = None):
    """``--out`` as a path, refused (ConfigError) when it is a folder, its folder is missing,
    or it lies inside one of ``run_dirs`` (except ``own``, a run's own report.html)."""
    from pathlib import Path

    path = Path(out)
    if path.is_dir():
        raise ConfigError(f"--out {out}: is a folder; give the HTML file to write, e.g. {path / 'report.html'}")
    if not path.parent.resolve().is_dir():
        raise ConfigError(f"--out {out}: folder {path.parent} does not exist")
    target = path.parent.resolve() / path.name
    if own is not None and target == Path(own).resolve():
        return path
    for d in run_dirs:
        root = Path(d).resolve()
        if target == root or root in target.parents:
            raise ConfigError(f"--out {out}: inside run directory {d}; the report never writes over a run's files "
                              "(choose a file outside it)")
    return path


def _report(args) -> int:
    """``sparsest report``: one page per run directory, or one comparison page."""
    from pathlib import Path

    from .report.html import write_comparison, write_html_report

    for d in args.run_dirs:
        if not Path(d).is_dir():
            raise ConfigError(f"{d}: {'not a directory' if Path(d).exists() else 'no such run directory'}")
    try:
        if len(args.run_dirs) == 1:
            own = str(Path(args.run_dirs[0]) / "report.html")
            out = _report_out(args.out, args.run_dirs, own) if args.out else None
            path = write_html_report(args.run_dirs[0], out)
        else:
            path = write_comparison(args.run_dirs, _report_out(args.out or "report.html", args.run_dirs))
    except OSError as e:
        raise ConfigError(f"{e.filename or args.out or 'report.html'}: cannot write the report "
                          f"({e.strerror or e.__class__.__name__})") from None
    print(f"wrote {path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="sparsest", description="Resource-efficient spatio-temporal forecasting: find which sensors can "
                     "be switched off (DynST), make inference input-adaptive (Dyna-Pruner), train on fewer windows "
                     "(ST-Prune), and measure what each costs and saves.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    classes = _options_classes()
    for name, (help, description) in COMMANDS.items():
        add_command(sub, name, classes[name], help, description, name in RESUMABLE)
    add_bench(sub)
    add_report(sub)
    add_predict(sub)
    sub.add_parser("datasets", help="list the registered data sets, one a line")
    sub.add_parser("backbones", help="list the registered backbones and baselines, one a line")
    return parser


def _cli_values(args: argparse.Namespace, cls) -> dict:
    """The options given on the command line (raw), with mappings parsed as YAML."""
    import yaml

    skip = {"command", "config", "set_items", "resume", "suite"}
    out = {}
    info = fields_of(cls)
    for key, value in vars(args).items():
        if key in skip:
            continue
        if key in info and _kind(info[key].annotation) == "dict" and isinstance(value, str):
            try:
                value = yaml.safe_load(value)
            except yaml.YAMLError:
                raise ConfigError(f"{flag(key)}: not a YAML mapping, e.g. '{{hidden_size: 64}}', got {value!r}") from None
            if not isinstance(value, dict):
                raise ConfigError(f"{flag(key)}: expected a YAML mapping, e.g. '{{hidden_size: 64}}', got {value!r}")
        out[key] = value
    return out


def options_from_args(args: argparse.Namespace, cls):
    """Defaults < ``--config`` < ``--set`` < explicit options, validated.

    Raises:
        ConfigError: naming the option and where it came from.
    """
    layers = []
    if args.config:
        layers.append((args.config, load_yaml(args.config)))
    if args.set_items:
        layers.append(("--set", parse_set(args.set_items, cls)))
    layers.append(("cli", _cli_values(args, cls)))
    return build_options(cls, *layers)


def bench_options(args: argparse.Namespace):
    """The chosen suite's options object from ``sparsest bench`` arguments.

    Raises:
        ConfigError: an option of another suite, or any bad value.
    """
    from .bench.options import SUITE_OPTIONS

    file_values = load_yaml(args.config) if args.config else {}
    suite = args.suite or file_values.pop("suite", None) or "dynst"
    file_values.pop("suite", None)
    if suite not in SUITE_OPTIONS:
        raise ConfigError(f"{args.config}: suite: choose one of {', '.join(SUITE_OPTIONS)}, got {suite!r}")
    cls = SUITE_OPTIONS[suite]
    given = _cli_values(args, cls)
    mine = set(fields_of(cls))
    for key in given:
        if key not in mine:
            owners = [n for n, c in SUITE_OPTIONS.items() if key in fields_of(c)]
            raise ConfigError(f"{flag(key)}: only for --suite {' / '.join(owners)} (the {suite} suite does not use it)")
    run_cls = _options_classes()[{"dynst": "run", "st-prune": "train", "dyna-pruner": "compress"}[suite]]
    layers = [(args.config, file_values)] if args.config else []
    if args.set_items:
        run_opts = {**file_values.get("run_options", {}), **parse_set(args.set_items, run_cls)}
        given["run_options"] = run_opts
    layers.append(("cli", given))
    return build_options(cls, *layers)  # each suite checks its run options before anything trains


# ----------------------------------------------------------------------------- summaries


def _run_summary(metrics: dict, console, run_dir) -> None:
    from rich.table import Table

    from .report.sections import baseline_rows

    t = Table(title=f"{metrics['data']} · {metrics['backbone']} · {metrics['scheme']} · "
              f"{metrics['n_kept']}/{metrics['n_sensors']} sensors kept (sensor sparsity {metrics['sensor_sparsity']:.2f})")
    for col in ("model", f"MAE ({metrics['units']})", "RMSE", "MAPE %"):
        t.add_column(col, justify="right" if col != "model" else "left")
    rows = [*baseline_rows(metrics["baselines"]),
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


def _train_summary(m: dict, console, run_dir) -> None:
    t = m["test"]
    console.print(f"test MAE {t['mae']:.4f} {m['units']}  RMSE {t['rmse']:.4f}  MAPE {t['mape']:.2f}%   "
                  f"best val MAE {m['best_val_mae']:.4f}")
    console.print(f"fit {m['train_time_s']:.1f} s, mean epoch {sum(m['epoch_time_s']) / max(1, len(m['epoch_time_s'])):.2f} s, "
                  f"{m['samples_seen']} windows seen, scoring + selection overhead {m['overhead']['overhead_pct']:.2f}% "
                  "of step time")
    console.print(f"run directory: {run_dir}")


def _execute(command: str, args, console) -> int:
    from .engine.run import RunDirectory

    cls = _options_classes()[command]
    resume = None
    if args.resume:
        given = list(_cli_values(args, cls)) + (["config"] if args.config else []) + (["set"] if args.set_items else [])
        if given:
            raise ConfigError(f"--resume: takes no other options (the run's config.yaml holds them), got {flag(given[0])}")
        resume = RunDirectory.reopen(args.resume)
        opts = build_options(cls, (str(resume.path / "config.yaml"), resume.read_config()))
    else:
        opts = options_from_args(args, cls)
    if command == "run":
        from .methods.dynst.run import run

        run_dir, m = run(opts, console=console, resume=resume)
        if m is not None:
            _run_summary(m, console, run_dir)
    elif command == "plan":
        from .methods.dynst.plan import plan
        from .methods.dynst.plan_outputs import summary as plan_summary

        run_dir, m = plan(opts, console=console, resume=resume)
        plan_summary(m, console, run_dir)
    elif command == "train":
        from .methods.stprune.run import train

        run_dir, m = train(opts, console=console, resume=resume)
        if m is not None:
            _train_summary(m, console, run_dir)
    else:
        from .methods.dynapruner.run import compress, summary

        run_dir, m = compress(opts, console=console, resume=resume)
        if m is not None:
            summary(m, console, run_dir)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # --help (0) or a usage error (2, one line already printed)
        return int(e.code or 0)
    try:
        if args.command == "datasets":
            from .datasets import get_dataset_entry, list_datasets

            for name in list_datasets():
                e = get_dataset_entry(name)
                print(f"{name:<14} {e.kind:<6} {e.summary}")
            return 0
        if args.command == "backbones":
            from .backbones.catalog import CATALOG

            for name in sorted(CATALOG):
                kind, summary, _trainable = CATALOG[name]
                print(f"{name:<20} {kind:<6} {summary}")
            return 0
        if args.command is None:
            parser.print_help()
            return 1
        if args.command == "report":
            return _report(args)
        if args.command == "predict":
            return _predict(args)
        from rich.console import Console

        console = Console(stderr=False)
        if args.command == "bench":
            from .bench import run_suite

            return run_suite(bench_options(args), console)
        return _execute(args.command, args, console)
    except SparsestError as e:
        print(f"sparsest: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("sparsest: interrupted; the unfinished run directory ends in .partial (continue it with --resume RUN_DIR)",
              file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

