"""Bad-input benchmark of the ``sparsest`` command line.

Tries ~160 inputs a new user could get wrong (out-of-range numbers, wrong types, broken
config files, unknown names, options a command would ignore, unusable output folders, broken
data / adjacency / locations files, ...) across ``run``, ``train``, ``compress`` and
``bench``, each as ``python -m sparsest.cli ...`` in a subprocess, and classifies each
outcome:

* ``ok``: exit status != 0 and the last non-empty output line (stdout + stderr) names the
  culprit (contains one of the case's expected substrings, case-insensitive), no
  ``Traceback`` anywhere;
* ``traceback``: a Python traceback was printed;
* ``hang``: not finished within ``--timeout`` seconds (or killed above ``--max-rss-mb``;
  the last-line column says which);
* ``accepted``: exit status 0 on a bad input;
* ``unclear``: non-zero exit without a traceback, but the last line does not name the
  culprit.

Cases marked ``convert_or_refuse`` (a config value of the wrong type that may sensibly be
converted, e.g. ``sparsity: '0.3'``) count exit 0 as ``ok`` too. A separate small list of
GOOD inputs (documented or sensible inputs that must run) counts exit 0 as ``ok`` and
anything else as ``refused`` (or ``traceback`` / ``hang``); its first four rows are
controls: the quick options below on valid data, one per command. If a control fails,
``accepted`` counts of that command mean little.

Accepted runs are kept short: ``--epochs 1``, and ``--limit-train-batches 2`` where the
command has it, plus ``--max-swaps 1 --bench-repeats 1`` for
``run`` (the default scheme; the training searches' ``--rounds`` would be refused) (``bench``: ``--quick`` and the same through ``--set``), wherever the case does not
set that option itself. The data is ``ghcnd-us`` (built in) unless the case is about a file;
``compress`` (grid data only) gets a generated 12 x 12 grid of 300 hourly steps, since
``era5-t2m-uk`` takes ~110 s even with these options. Every case runs in its own temporary
folder and writes its run directories there (``--out``), never into the repository; the
script warns if ``git status`` of ``--cwd`` changed. Named data sets are read from
``--data-dir`` (passed as ``$SPARSEST_DATA_DIR``).

Usage (the "before" / "after" numbers of the CLI rewrite)::

    python benchmarks/bad_inputs.py --python .venv/bin/python --cwd /tmp/before \\
        --pythonpath /tmp/before --out /tmp/badin/before.csv
    python benchmarks/bad_inputs.py --python .venv/bin/python --cwd . --pythonpath . \\
        --out /tmp/badin/after.csv

``--list`` prints the cases, ``--only REGEX`` runs a subset, ``--jobs 2`` runs two at a
time (at most). Needs only the standard library; data fixtures (.npz, .npy, .h5) are
written by the target interpreter (``--python``), which has numpy / h5py.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import csv
import math
import os
import pickle
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

OUTCOMES = ("ok", "traceback", "hang", "accepted", "unclear", "refused", "skipped")
COMMANDS = ("run", "train", "compress", "bench")

# --------------------------------------------------------------------------- quick options

BENCH_SET = ["limit_train_batches=2", "max_swaps=1", "bench_repeats=1"]

BASE: dict[str, list[tuple[str, list[str]]]] = {
    "run": [("--epochs", ["1"]), ("--limit-train-batches", ["2"]), ("--max-swaps", ["1"]), ("--bench-repeats", ["1"]),
            ("--out", ["{out}"])],
    "train": [("--epochs", ["1"]), ("--out", ["{out}"])],
    "compress": [("--data", ["{fx}/grid_ok.npz"]), ("--epochs", ["1"]), ("--pretrain-epochs", ["1"]),
                 ("--limit-train-batches", ["2"]), ("--no-baselines", []), ("--bench-repeats", ["1"]),
                 ("--n-maps", ["1"]), ("--out", ["{out}"])],
    "bench": [("--datasets", ["ghcnd-us"]), ("--backbones", ["stid"]), ("--sparsities", ["0.3"]),
              ("--schemes", ["dynst"]), ("--quick", []), ("--epochs", ["1"]), ("--set", BENCH_SET),
              ("--out", ["{out}"])],
    # bench --suite st-prune / dyna-pruner: their own data and no dynst-only options
    "bench:st-prune": [("--datasets", ["ghcnd-us"]), ("--backbones", ["stid"]), ("--quick", []), ("--epochs", ["1"]),
                       ("--out", ["{out}"])],
    "bench:dyna-pruner": [("--datasets", ["{fx}/grid_ok.npz"]), ("--backbones", ["simvp"]), ("--quick", []),
                          ("--epochs", ["1"]), ("--out", ["{out}"])],
    "other": [],
}


@dataclass
class Case:
    name: str
    command: str
    args: list[str]
    expect: tuple[str, ...]  # the last line must contain one of these (case-insensitive)
    files: dict = field(default_factory=dict)  # name in the case folder -> str | bytes | DIR | RO_DIR
    kind: str = "bad"  # bad | good
    mode: str = "refuse"  # refuse | convert_or_refuse (bad only)
    base: bool = True  # add the quick options the case does not set itself
    drop: tuple[str, ...] = ()  # quick options not to add (e.g. keys a config file sets)
    requires: str = ""  # "nonroot": skipped when running as root
    timeout: float | None = None
    note: str = ""


DIR = object()  # files value: create a directory
RO_DIR = object()  # files value: create a directory and chmod 555


def _flags(args: list[str]) -> set[str]:
    return {a.split("=", 1)[0] for a in args if a.startswith("--")}


def build_argv(case: Case) -> list[str]:
    """The case's arguments plus the quick options it does not set itself."""
    args = list(case.args)
    if not case.base:
        if case.command in COMMANDS and "--out" not in _flags(args) and "--out" not in case.drop:
            args += ["--out", "{out}"]
        return [case.command, *args] if case.command != "other" else args
    key = case.command
    if key == "bench" and "--suite" in args:
        suite = args[args.index("--suite") + 1]
        if suite in ("st-prune", "dyna-pruner"):
            key = f"bench:{suite}"
    given = _flags(args)
    extra: list[str] = []
    for flag, values in BASE.get(key, []):
        if flag in case.drop:
            continue
        if flag in given:
            if flag == "--set" and key == "bench":  # merge: the case's items last, so they win
                i = args.index("--set")
                args[i + 1:i + 1] = values
            continue
        extra += [flag, *values]
    return [case.command, *args, *extra] if case.command != "other" else args + extra


# --------------------------------------------------------------------------- file contents

def _signals_csv(rows: int = 480, n: int = 8, seed: int = 0, time_col: bool = True) -> str:
    rng = random.Random(seed)
    head = (["time"] if time_col else []) + [f"s{i}" for i in range(n)]
    lines = [",".join(head)]
    for t in range(rows):
        day, hour = divmod(t, 24)
        stamp = f"2024-{1 + day // 28:02d}-{1 + day % 28:02d} {hour:02d}:00:00"
        vals = [f"{20 + 5 * math.sin(2 * math.pi * t / 24 + i) + rng.gauss(0, 0.3):.3f}" for i in range(n)]
        lines.append(",".join(([stamp] if time_col else []) + vals))
    return "\n".join(lines) + "\n"


def _dense_adj(n: int, neg: bool = False, nan: bool = False, cols: int | None = None) -> str:
    cols = n if cols is None else cols
    rows = []
    for i in range(n):
        r = []
        for j in range(cols):
            w = 1.0 if abs(i - j) == 1 or {i, j} == {0, n - 1} else 0.0
            if neg and (i, j) == (0, 1):
                w = -1.0
            if nan and (i, j) == (1, 2):
                r.append("nan")
                continue
            r.append(f"{w:g}")
        rows.append(",".join(r))
    return "\n".join(rows) + "\n"


def _edges(header: str, pairs, ids=None) -> str:
    ids = ids or [f"s{i}" for i in range(8)]
    lines = [header] + [f"{ids[a]},{ids[b]},{w}" for a, b, w in pairs]
    return "\n".join(lines) + "\n"


RING = [(i, (i + 1) % 8, 1.0) for i in range(8)]
RING_DIST = [(i, (i + 1) % 8, 100.0 + 37 * i) for i in range(8)]


def _locations(header="sensor_id,latitude,longitude", lat=45.0, ids=None) -> str:
    ids = ids or [f"s{i}" for i in range(8)]
    lines = [header] + [f"{s},{lat + 0.1 * k:.3f},{-100 + 0.1 * k:.3f}" for k, s in enumerate(ids)]
    return "\n".join(lines) + "\n"


def _yaml_bomb(levels: int = 9, key: str | None = None) -> str:
    """Billion laughs: 9 levels of 9 aliases (9**9 = 387M leaves once expanded)."""
    names = "abcdefghijklmnop"[:levels]
    if key is None:  # top-level keys a..i (unknown keys)
        out = [f"a: &a [{', '.join(['lol'] * 9)}]"]
        for prev, cur in zip(names, names[1:]):
            out.append(f"{cur}: &{cur} [{', '.join(['*' + prev] * 9)}]")
        return "\n".join(out) + "\n"
    # all anchors inside the value of one known key
    out = [f"{key}:", f"  a: &a [{', '.join(['lol'] * 9)}]"]
    for prev, cur in zip(names, names[1:]):
        out.append(f"  {cur}: &{cur} [{', '.join(['*' + prev] * 9)}]")
    return "\n".join(out) + "\n"


def _yaml_bomb_list(key: str, levels: int = 9) -> str:
    """The bomb as a list value of ``key`` (a string option)."""
    names = "abcdefghijklmnop"[:levels]
    items = [f"&a [{', '.join(['lol'] * 9)}]"]
    for prev, cur in zip(names, names[1:]):
        items.append(f"&{cur} [{', '.join(['*' + prev] * 9)}]")
    return f"{key}: [{', '.join(items)}]\n"


class _Evil:
    """Pickles as ``os.system("touch MARKER")``: a restricted unpickler must refuse it."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


# Binary fixtures, written by the target interpreter (it has numpy / h5py / xarray).
FIXTURE_CODE = r'''
import sys, numpy as np
fx = sys.argv[1]
rng = np.random.default_rng(0)
def grid(T, H=12, W=12):
    t = np.arange(T)[:, None, None]; y = np.arange(H)[None, :, None]; x = np.arange(W)[None, None, :]
    return (280 + 5 * np.sin(2 * np.pi * t / 24 + 0.3 * x) + 0.2 * y + rng.normal(0, 0.3, (T, H, W))).astype("float32")
def times(T):
    return (np.datetime64("2019-03-01T00", "h") + np.arange(T)).astype("datetime64[ns]")
lat, lon = np.linspace(50, 54, 12), np.linspace(-4, 2, 12)
np.savez(f"{fx}/grid_ok.npz", t2m=grid(300), latitude=lat, longitude=lon, time=times(300))
np.savez(f"{fx}/grid_thw.npz", t2m=grid(300))
np.savez(f"{fx}/grid_short.npz", t2m=grid(20), latitude=lat, longitude=lon, time=times(20))
np.save(f"{fx}/sig_1d.npy", rng.normal(size=480).astype("float32"))
np.save(f"{fx}/sig_object.npy", np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
np.save(f"{fx}/sig_allnan.npy", np.full((480, 8), np.nan, dtype="float32"))
np.save(f"{fx}/sig_inf.npy", np.where(rng.random((480, 8)) < 0.01, np.inf, 1.0).astype("float32"))
np.savez(f"{fx}/npz_noarrays.npz")
np.savez(f"{fx}/npz_wrongkey.npz", foo=np.arange(480.0), bar=np.arange(480.0))
np.savez(f"{fx}/npz_ok_graph.npz", data=rng.normal(size=(480, 8)).astype("float32"))
raw = open(f"{fx}/npz_ok_graph.npz", "rb").read()
open(f"{fx}/npz_truncated.npz", "wb").write(raw[: len(raw) // 2])
np.save(f"{fx}/adj_1d.npy", np.ones(8, dtype="float32"))
try:
    import h5py
    with h5py.File(f"{fx}/h5_wrong_layout.h5", "w") as f:
        f["foo"] = np.arange(10)
except Exception as e:
    print("fixture h5_wrong_layout.h5 not written:", e)
try:
    import xarray as xr
    xr.Dataset({"t2m": (("time",), np.arange(480.0))}, coords={"time": times(480)}).to_netcdf(
        f"{fx}/nc_wrong_dims.nc", engine="h5netcdf")
except Exception as e:
    print("fixture nc_wrong_dims.nc not written:", e)
'''


def write_text_fixtures(fx: Path) -> None:
    (fx / "signals_ok.csv").write_text(_signals_csv())
    (fx / "adj_ok.csv").write_text(_dense_adj(8))
    (fx / "adj_144.csv").write_text(_dense_adj(144))
    (fx / "loc_ok.csv").write_text(_locations())
    with open(fx / "evil.pkl", "wb") as fh:
        pickle.dump(_Evil(str(fx / "PWNED")), fh, protocol=2)


def write_fixtures(fx: Path, python: str, env: dict) -> None:
    fx.mkdir(parents=True, exist_ok=True)
    write_text_fixtures(fx)
    r = subprocess.run([python, "-c", FIXTURE_CODE, str(fx)], env=env, capture_output=True, text=True, timeout=300)
    if r.returncode != 0:
        sys.exit(f"bad_inputs.py: writing the data fixtures with {python} failed:\n{r.stdout}{r.stderr}")
    if r.stdout.strip():
        print(r.stdout.strip())


# --------------------------------------------------------------------------- the cases

def cases() -> list[Case]:
    """Every case, in the order they run (bad inputs, then the GOOD inputs)."""
    C: list[Case] = []

    def bad(name, command, args, expect, **kw):
        C.append(Case(name, command, list(args), tuple([expect] if isinstance(expect, str) else expect), **kw))

    def good(name, command, args, **kw):
        C.append(Case(name, command, list(args), (), kind="good", **kw))

    sig = "{fx}/signals_ok.csv"

    # ---- numbers out of range: run (the list), train / compress / bench (their options)
    for flag, value in [("--epochs", "0"), ("--epochs", "-1"), ("--sparsity", "1.0"), ("--sparsity", "-0.1"),
                        ("--sparsity", "1.5"), ("--lr", "0"), ("--lr", "-1"), ("--lr", "nan"), ("--lr", "inf"),
                        ("--weight-decay", "-1"), ("--weight-decay", "nan"), ("--patience", "-1"), ("--seed", "-1"),
                        ("--seed", str(2**32)), ("--batch-size", "0"), ("--window", "0"), ("--horizon", "0"),
                        ("--limit-train-batches", "0"), ("--limit-train-batches", "1.5"),
                        ("--limit-train-batches", "-1"), ("--bench-batch", "0"), ("--bench-repeats", "0"),
                        ("--rounds", "0"), ("--mask-steps", "0"), ("--regrow-fraction", "1.0"), ("--mask-lr", "nan")]:
        bad(f"run {flag} {value}", "run", [flag, value], flag)
    bad("run --prune-ratio 1.0 (st-prune)", "run", ["--sample-pruning", "st-prune", "--prune-ratio", "1.0"], "--prune-ratio")
    for flag, value in [("--epochs", "0"), ("--lr", "nan"), ("--weight-decay", "-1"), ("--patience", "-1"),
                        ("--seed", str(2**32)), ("--batch-size", "0")]:
        bad(f"train {flag} {value}", "train", [flag, value], flag)
    bad("train --prune-ratio 1.0 (st-prune)", "train", ["--sample-pruning", "st-prune", "--prune-ratio", "1.0"], "--prune-ratio")
    bad("train --hard-cap -0.5 (st-prune)", "train", ["--sample-pruning", "st-prune", "--hard-cap", "-0.5"], "--hard-cap")
    for flag, value in [("--epochs", "0"), ("--data-sparsity", "1.0"), ("--model-sparsity", "-0.5"), ("--lr", "nan"),
                        ("--tau-lr", "0"), ("--min-usage", "1.0"), ("--n-maps", "-1")]:
        bad(f"compress {flag} {value}", "compress", [flag, value], flag)
    bad("bench --epochs 0", "bench", ["--epochs", "0"], "--epochs")
    bad("bench --table1-sparsity 1.0", "bench", ["--table1-sparsity", "1.0"], "--table1-sparsity")
    bad("bench --sparsities 1.2", "bench", ["--sparsities", "1.2"], "--sparsities")
    bad("bench --seeds -1", "bench", ["--seeds", "-1"], "--seeds")

    # ---- wrong types
    bad("run --epochs 1.7", "run", ["--epochs", "1.7"], "--epochs")
    bad("run --epochs abc", "run", ["--epochs", "abc"], "--epochs")
    bad("run --devices x", "run", ["--devices", "x"], "--devices")
    bad("train --epochs 1.7", "train", ["--epochs", "1.7"], "--epochs")
    bad("compress --epochs abc", "compress", ["--epochs", "abc"], "--epochs")

    # ---- config files (--config: run today; every command after the rewrite)
    def cfg_case(command, label, text, expect, drop=(), mode="refuse", name="cfg.yaml"):
        bad(f"{command} --config {label}", command, ["--config", "{tmp}/" + name], expect, files={name: text},
            drop=drop, mode=mode)

    cfg_case("run", "epochs: 1.7", "epochs: 1.7\n", "epochs", drop=("--epochs",))
    cfg_case("run", "sparsity: '0.3'", "sparsity: '0.3'\n", "sparsity", mode="convert_or_refuse")
    cfg_case("run", "epochs: null", "epochs: null\n", "epochs", drop=("--epochs",))
    cfg_case("run", "epochs: [1, 2]", "epochs: [1, 2]\n", "epochs", drop=("--epochs",))
    cfg_case("run", "epochs: yes (a bool)", "epochs: yes\n", "epochs", drop=("--epochs",))
    cfg_case("run", "sparsity: .nan", "sparsity: .nan\n", "sparsity")
    cfg_case("run", "unknown key (epoch: 1)", "epoch: 1\n", "epoch")
    cfg_case("run", "top level is a list", "- epochs: 1\n- sparsity: 0.3\n", "cfg.yaml")
    cfg_case("run", "invalid YAML", "epochs: [1, 2\nsparsity: 0.3\n", "cfg.yaml")
    cfg_case("run", "not UTF-8", b"epochs: 1\n\xff\xfe\x00bad: \x81\n", "cfg.yaml")
    bad("run --config missing file", "run", ["--config", "{tmp}/missing.yaml"], "missing.yaml")
    bad("run --config a directory", "run", ["--config", "{tmp}/cfgdir.yaml"], "cfgdir.yaml", files={"cfgdir.yaml": DIR})
    cfg_case("run", "alias bomb (unknown keys)", _yaml_bomb(), ("bomb.yaml",), name="bomb.yaml")
    cfg_case("run", "alias bomb in backbone_options", _yaml_bomb(key="backbone_options"),
             ("bomb.yaml", "backbone_options"), name="bomb.yaml")
    cfg_case("run", "alias bomb in data", _yaml_bomb_list("data"), ("bomb.yaml", "data"), name="bomb.yaml")
    cfg_case("train", "epochs: 1.7", "epochs: 1.7\n", ("epochs", "--config"), drop=("--epochs",))
    cfg_case("train", "alias bomb in backbone_options", _yaml_bomb(key="backbone_options"),
             ("bomb.yaml", "backbone_options", "--config"), name="bomb.yaml")
    cfg_case("compress", "epochs: null", "epochs: null\n", ("epochs", "--config"), drop=("--epochs",))
    cfg_case("compress", "alias bomb (unknown keys)", _yaml_bomb(), ("bomb.yaml", "--config"), name="bomb.yaml")
    cfg_case("bench", "epochs: [1, 2]", "epochs: [1, 2]\n", ("epochs", "--config"), drop=("--epochs",))
    bad("bench --config missing file", "bench", ["--config", "{tmp}/missing.yaml"], ("missing.yaml", "--config"))

    # ---- --set (bench today; every command after the rewrite)
    bad("bench --set unknown key", "bench", ["--set", "nosuch=1"], "nosuch")
    bad("bench --set without =", "bench", ["--set", "batch_size"], ("--set", "batch_size"))
    bad("bench --set batch_size=abc", "bench", ["--set", "batch_size=abc"], "batch_size")
    bad("bench --suite st-prune --set unknown key", "bench", ["--suite", "st-prune", "--set", "nosuch=1"], "nosuch")
    bad("run --set unknown key", "run", ["--set", "nosuch=1"], ("nosuch", "--set"))
    bad("run --set epochs=abc", "run", ["--set", "epochs=abc"], ("epochs", "--set"), drop=("--epochs",))
    bad("run --set sparsity=1.5", "run", ["--set", "sparsity=1.5"], ("sparsity", "--set"))
    bad("train --set unknown key", "train", ["--set", "nosuch=1"], ("nosuch", "--set"))
    bad("compress --set data_sparsity=1.0", "compress", ["--set", "data_sparsity=1.0"], ("data_sparsity", "--set"))

    # ---- unknown or unfit names
    bad("run --backbone nosuch", "run", ["--backbone", "nosuch"], ("--backbone", "nosuch"))
    bad("run --data nosuch", "run", ["--data", "nosuch"], ("--data", "nosuch"))
    bad("run --backbone persistence (baseline)", "run", ["--backbone", "persistence"], ("--backbone", "persistence"))
    bad("run --scheme nosuch", "run", ["--scheme", "nosuch"], ("--scheme", "nosuch"))
    bad("run --sample-pruning nosuch", "run", ["--sample-pruning", "nosuch"], ("--sample-pruning", "nosuch"))
    bad("run --backbone simvp on graph data", "run", ["--backbone", "simvp"], ("--backbone", "simvp"))
    bad("train --backbone nosuch", "train", ["--backbone", "nosuch"], ("--backbone", "nosuch"))
    bad("train --sample-pruning nosuch", "train", ["--sample-pruning", "nosuch"], ("--sample-pruning", "nosuch"))
    bad("compress on graph data (ghcnd-us)", "compress", ["--data", "ghcnd-us"], ("--data", "ghcnd-us"))
    bad("compress --backbone stid", "compress", ["--backbone", "stid"], ("--backbone", "stid"))
    bad("bench --backbones nosuch", "bench", ["--backbones", "nosuch"], ("--backbones", "nosuch"))

    # ---- options the command would ignore (and a missing checkpoint)
    bad("run --adjacency with a named data set", "run", ["--adjacency", "{fx}/adj_144.csv"], "--adjacency")
    bad("run --adjacency with grid data (era5)", "run",
        ["--data", "era5-t2m-uk", "--backbone", "vit", "--adjacency", "{fx}/adj_ok.csv"], "--adjacency")
    bad("run --locations with a named data set", "run", ["--locations", "{fx}/loc_ok.csv"], "--locations")
    bad("train --adjacency with a named data set", "train", ["--adjacency", "{fx}/adj_144.csv"], "--adjacency")
    bad("train --locations with a named data set", "train", ["--locations", "{fx}/loc_ok.csv"], "--locations")
    bad("compress --adjacency", "compress", ["--adjacency", "{fx}/adj_ok.csv"], "--adjacency")
    bad("run --prune-ratio without --sample-pruning", "run", ["--prune-ratio", "0.3"], "--prune-ratio")
    bad("bench --tables with the dynst suite", "bench", ["--tables", "1"], "--tables")
    bad("run --dense-checkpoint missing", "run", ["--dense-checkpoint", "{tmp}/nosuch.ckpt"],
        ("--dense-checkpoint", "nosuch.ckpt"))

    # ---- lightning options
    bad("run --accelerator tpu", "run", ["--accelerator", "tpu"], ("--accelerator", "tpu"))
    bad("run --accelerator gpu (no GPU)", "run", ["--accelerator", "gpu"], ("--accelerator", "gpu"))
    bad("run --devices 0", "run", ["--devices", "0"], "--devices")
    bad("run --devices -3", "run", ["--devices", "-3"], "--devices")
    bad("run --strategy nonsense", "run", ["--strategy", "nonsense"], ("--strategy", "nonsense"))
    bad("train --accelerator tpu", "train", ["--accelerator", "tpu"], ("--accelerator", "tpu"))

    # ---- unusable --out
    for command in COMMANDS:
        bad(f"{command} --out is a file", command, ["--out", "{tmp}/afile"], ("afile", "--out"), files={"afile": "x\n"})
    bad("run --out under a file", "run", ["--out", "{tmp}/afile/sub"], ("afile", "--out"), files={"afile": "x\n"})
    bad("run --out read-only dir", "run", ["--out", "{tmp}/ro"], ("ro", "--out"), files={"ro": RO_DIR}, requires="nonroot")

    # ---- signals / grid files (--data PATH)
    def data_case(label, name, content, expect=None, command="run", extra=(), **kw):
        bad(f"{command} --data {label}", command, ["--data", "{tmp}/" + name, *extra], expect or name,
            files={name: content}, **kw)

    hdr = "time,s0,s1,s2\n"
    lines = [f"2024-01-{1 + t // 24:02d} {t % 24:02d}:00,{t % 7}.5,{t % 5}.25,{t % 3}.0\n" for t in range(480)]
    rows = "".join(lines)
    short = lines[:100] + [lines[100].rsplit(",", 1)[0] + "\n"] + lines[101:]  # 3 fields for 4 columns
    long = lines[:100] + [lines[100].rstrip("\n") + ",9,9\n"] + lines[101:]  # 6 fields for 4 columns
    dup = lines[:100] + [lines[99].split(",")[0] + "," + lines[100].split(",", 1)[1]] + lines[101:]
    data_case("empty CSV", "empty.csv", "")
    data_case("CSV header only", "header_only.csv", hdr)
    data_case("CSV row with too few fields", "short_row.csv", hdr + "".join(short))
    data_case("CSV row with too many fields", "long_row.csv", hdr + "".join(long))
    nonnum = lines[:100] + [lines[100].split(",")[0] + ",abc," + lines[100].split(",", 2)[2]] + lines[101:]
    data_case("CSV non-numeric cells", "nonnumeric.csv", hdr + "".join(nonnum), ("nonnumeric.csv", "s0"))
    data_case("CSV all-NaN column", "allnan_col.csv", hdr + "".join(
        f"{ln.split(',')[0]},{ln.split(',')[1]},,{ln.split(',')[3]}" for ln in lines), ("allnan_col.csv",))
    data_case("CSV decreasing timestamps", "decreasing_time.csv", hdr + "".join(reversed(lines)))
    data_case("CSV duplicate timestamps", "dup_time.csv", hdr + "".join(dup))
    ymd = "year,month,day," + ",".join(f"st{i}" for i in range(12)) + "\n" + "".join(
        f"2024,{1 + d // 28},{1 + d % 28}," + ",".join(f"{10 + math.sin(d / 9 + i):.2f}" for i in range(12)) + "\n"
        for d in range(336))
    data_case("CSV year,month,day + 12 stations", "ymd.csv", ymd, ("ymd.csv", "year", "month", "day"),
              extra=("--window", "7", "--horizon", "7"), note="bad if accepted: year/month/day read as 3 more sensors")
    data_case("CSV duplicate sensor ids", "dup_ids.csv", "time,s0,s0,s2\n" + rows, ("dup_ids.csv",))
    data_case("CSV binary garbage", "garbage.csv", bytes(random.Random(1).randrange(256) for _ in range(4000)))
    data_case("signals shorter than window + horizon", "too_short.csv", hdr + "".join(lines[:20]),
              ("too_short.csv", "--window"))
    data_case("unknown extension (.txt)", "signals.txt", _signals_csv(rows=100))
    bad("run --data missing file", "run", ["--data", "{tmp}/nosuch.csv"], "nosuch.csv")
    bad("run --data a directory named .csv", "run", ["--data", "{tmp}/dir.csv"], "dir.csv", files={"dir.csv": DIR})
    bad("run --data .npy 1-D", "run", ["--data", "{fx}/sig_1d.npy"], "sig_1d.npy")
    bad("run --data .npy of objects (pickle)", "run", ["--data", "{fx}/sig_object.npy"], "sig_object.npy")
    bad("run --data .npz without arrays", "run", ["--data", "{fx}/npz_noarrays.npz"], "npz_noarrays.npz")
    bad("run --data .npz wrong keys (1-D only)", "run", ["--data", "{fx}/npz_wrongkey.npz"], "npz_wrongkey.npz")
    bad("run --data truncated .npz", "run", ["--data", "{fx}/npz_truncated.npz"], "npz_truncated.npz")
    data_case("corrupt .npz (random bytes)", "corrupt.npz", bytes(random.Random(2).randrange(256) for _ in range(2000)))
    data_case(".h5 that is not HDF5", "not_hdf5.h5", "this is not an HDF5 file\n")
    data_case(".nc that is not netCDF", "not_netcdf.nc", "this is not a netCDF file\n", command="compress")
    bad("compress --data grid .npz too few steps", "compress", ["--data", "{fx}/grid_short.npz"],
        ("grid_short.npz", "--window"))
    data_case("empty CSV", "empty.csv", "", command="train")

    # ---- adjacency files (with your own signals)
    def adj_case(label, name, content, expect=None, fixture=False):
        path = ("{fx}/" if fixture else "{tmp}/") + name
        bad(f"run --adjacency {label}", "run", ["--data", sig, "--adjacency", path], expect or name,
            files={} if fixture else {name: content})

    adj_case("wrong shape (N-1 x N-1)", "adj_7x7.csv", _dense_adj(7))
    adj_case("non-square (N x N+1)", "adj_8x9.csv", _dense_adj(8, cols=9))
    adj_case("negative weights", "adj_neg.csv", _dense_adj(8, neg=True))
    adj_case("NaN weights", "adj_nan.csv", _dense_adj(8, nan=True))
    adj_case("edge list with unknown sensor ids", "edges_unknown.csv",
             _edges("from,to,cost", RING_DIST, ids=[f"zz{i}" for i in range(8)]))
    adj_case("edge list with no recognised columns", "edges_cols.csv", _edges("a,b,c", RING))
    adj_case("pickle with a forbidden global", "evil.pkl", None, fixture=True)
    bad("run --adjacency missing file", "run", ["--data", sig, "--adjacency", "{tmp}/nosuch_adj.csv"], "nosuch_adj.csv")

    # ---- locations files (with your own signals)
    def loc_case(label, name, content):
        bad(f"run --locations {label}", "run", ["--data", sig, "--locations", "{tmp}/" + name], name,
            files={name: content})

    loc_case("missing columns", "loc_cols.csv", "sensor_id,latitude\n" + "".join(f"s{i},45.{i}\n" for i in range(8)))
    loc_case("latitude > 90", "loc_lat.csv", _locations(lat=95.0))
    loc_case("unknown sensor ids", "loc_ids.csv", _locations(ids=[f"zz{i}" for i in range(8)]))
    bad("run --locations missing file", "run", ["--data", sig, "--locations", "{tmp}/nosuch_loc.csv"], "nosuch_loc.csv")

    # ---- --resume (new after the rewrite)
    finished = "20240101-000000_ghcnd-us_stid_dynst_s0.3_seed0"
    bad("run --resume missing path", "run", ["--resume", "{tmp}/nosuch_run"], ("--resume", "nosuch_run"))
    bad("run --resume finished run", "run", ["--resume", "{tmp}/" + finished], ("--resume", finished),
        files={f"{finished}/config.yaml": "data: ghcnd-us\nepochs: 1\n", f"{finished}/metrics.json": "{}\n"})
    bad("run --resume not a run dir", "run", ["--resume", "{tmp}/notarun"], ("--resume", "notarun"),
        files={"notarun/readme.txt": "hello\n"})

    # ---- bench
    bad("bench --suite nonsense", "bench", ["--suite", "nonsense"], ("--suite", "nonsense"))
    bad("bench --tables 5 --suite dyna-pruner", "bench", ["--tables", "5", "--suite", "dyna-pruner"], "--tables")
    bad("bench --from-runs /nonexistent", "bench", ["--from-runs", "/nonexistent"], ("--from-runs", "/nonexistent"),
        base=False)
    bad("bench --from-runs empty dir", "bench", ["--from-runs", "{tmp}/emptyruns"], ("--from-runs", "emptyruns"),
        files={"emptyruns": DIR}, base=False)
    bad("bench --datasets nonsense", "bench", ["--datasets", "nonsense"], ("--datasets", "nonsense"))
    bad("bench --suite dyna-pruner on graph data", "bench", ["--suite", "dyna-pruner", "--datasets", "ghcnd-us"],
        ("--datasets", "ghcnd-us"))

    # ---- GOOD inputs: must run (exit 0). The first four are controls of the quick options.
    good("good: run (quick options, ghcnd-us)", "run", [])
    good("good: train (quick options, ghcnd-us)", "train", [])
    good("good: compress (quick options, small grid .npz)", "compress", [])
    good("good: bench (quick options, ghcnd-us stid)", "bench", [])
    good("good: own CSV + dense adjacency + locations", "run",
         ["--data", sig, "--adjacency", "{fx}/adj_ok.csv", "--locations", "{fx}/loc_ok.csv"])
    good("good: edge list from,to,cost (PEMS distances)", "run",
         ["--data", sig, "--adjacency", "{tmp}/edges_from_to.csv"], files={"edges_from_to.csv": _edges("from,to,cost", RING_DIST)})
    good("good: edge list source,target,weight", "run", ["--data", sig, "--adjacency", "{tmp}/edges_st.csv"],
         files={"edges_st.csv": _edges("source,target,weight", RING)}, note="a false refusal if refused")
    good("good: config with sparsity and epochs", "run", ["--config", "{tmp}/good.yaml"],
         files={"good.yaml": "sparsity: 0.2\nepochs: 1\nfinetune_epochs: 1\n"}, drop=("--epochs",))
    good("good: grid .npz [T, H, W] without lat/lon (README layout)", "compress", ["--data", "{fx}/grid_thw.npz"],
         note="README lists grid .npz [T, H, W]; ambiguous with graph [T, N, C] without lat/lon")
    return C


# --------------------------------------------------------------------------- running

ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")


def last_line(text: str) -> str:
    lines = [ln.strip() for ln in ANSI.sub("", text).replace("\r", "\n").split("\n")]
    lines = [ln for ln in lines if ln]
    return lines[-1] if lines else ""


def _tree_rss_mb(pid: int) -> float:
    try:
        import psutil  # optional
    except ImportError:
        try:
            with open(f"/proc/{pid}/status") as fh:
                for line in fh:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1]) / 1024
        except OSError:
            return 0.0
        return 0.0
    try:
        p = psutil.Process(pid)
        procs = [p, *p.children(recursive=True)]
    except psutil.Error:
        return 0.0
    total = 0
    for q in procs:
        try:
            total += q.memory_info().rss
        except psutil.Error:
            pass
    return total / 2**20


@dataclass
class Result:
    case: Case
    argv: list[str]
    outcome: str
    rc: int | None
    seconds: float
    line: str
    note: str = ""
    peak_rss_mb: float = 0.0


def classify(case: Case, rc: int | None, output: str, killed: str) -> tuple[str, str]:
    line = last_line(output)
    if killed:
        return "hang", f"[{killed}] {line}"
    if "Traceback (most recent call last)" in output:
        return "traceback", line
    if case.kind == "good":
        return ("ok" if rc == 0 else "refused"), line
    if rc == 0:
        return ("ok" if case.mode == "convert_or_refuse" else "accepted"), line
    low = line.lower()
    return ("ok" if any(e.lower() in low for e in case.expect) else "unclear"), line


def make_files(case: Case, tmp: Path) -> None:
    for name, content in case.files.items():
        p = tmp / name
        p.parent.mkdir(parents=True, exist_ok=True)
        if content is DIR or content is RO_DIR:
            p.mkdir(exist_ok=True)
            if content is RO_DIR:
                p.chmod(0o555)
        elif isinstance(content, bytes):
            p.write_bytes(content)
        else:
            p.write_text(content)


def run_case(index: int, case: Case, opts, fx: Path, root: Path, env: dict) -> Result:
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", case.name).strip("_")[:80]
    tmp = root / f"c{index:03d}"
    tmp.mkdir()
    out = tmp / "out"
    shown = build_argv(case)  # with {tmp}, {fx}, {out} placeholders, as stored in the CSV
    argv = [a.replace("{tmp}", str(tmp)).replace("{fx}", str(fx)).replace("{out}", str(out)) for a in shown]
    if case.requires == "nonroot" and hasattr(os, "geteuid") and os.geteuid() == 0:
        return Result(case, shown, "skipped", None, 0.0, "running as root: chmod 555 does not stop root's writes",
                      note="skipped (root)")
    make_files(case, tmp)
    cmd = [opts.python, "-m", "sparsest.cli", *argv]
    timeout = case.timeout or opts.timeout
    log = tmp / "output.txt"
    t0 = time.perf_counter()
    killed, peak = "", 0.0
    with open(log, "wb") as fh:
        proc = subprocess.Popen(cmd, cwd=opts.cwd, env=env, stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
        while proc.poll() is None:
            elapsed = time.perf_counter() - t0
            rss = _tree_rss_mb(proc.pid)
            peak = max(peak, rss)
            if elapsed > timeout:
                killed = f"timeout after {timeout:.0f} s"
            elif rss > opts.max_rss_mb:
                killed = f"killed: memory {rss:.0f} MiB > {opts.max_rss_mb} MiB after {elapsed:.0f} s"
            if killed:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait()
                break
            time.sleep(0.25)
        # a process that exited leaves children behind only by mistake; end them
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    seconds = time.perf_counter() - t0
    output = log.read_text(errors="replace")
    outcome, line = classify(case, proc.returncode, output, killed)
    line = line.replace(str(tmp), "{tmp}").replace(str(fx), "{fx}")  # shown and stored without the random root
    notes = []
    if outcome == "ok" and case.kind == "bad" and proc.returncode not in (0, 2):
        notes.append(f"exit status {proc.returncode}, not 2")
    if (fx / "PWNED").exists():
        notes.append("THE PICKLE RAN CODE (marker file written)")
        (fx / "PWNED").unlink()
    if opts.keep_output:
        (Path(opts.keep_output) / f"{safe}.txt").write_text(" ".join(cmd) + "\n\n" + output)
    if not opts.keep:
        _rmtree(tmp)
    return Result(case, shown, outcome, proc.returncode, seconds, line, "; ".join(notes), peak)


def _rmtree(p: Path) -> None:
    for d, _, _ in os.walk(p):
        try:
            os.chmod(d, 0o755)
        except OSError:
            pass
    shutil.rmtree(p, ignore_errors=True)


# --------------------------------------------------------------------------- report

def write_csv(path: str, results: list[Result]) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["case", "kind", "command", "mode", "outcome", "rc", "seconds", "peak_rss_mb", "expect", "last_line",
                    "note", "case_note", "argv"])
        for r in results:
            w.writerow([r.case.name, r.case.kind, r.case.command, r.case.mode, r.outcome,
                        "" if r.rc is None else r.rc, f"{r.seconds:.1f}", f"{r.peak_rss_mb:.0f}", " | ".join(r.case.expect),
                        r.line, r.note, r.case.note, " ".join(r.argv)])


def _short(s: str, n: int) -> str:
    return s if len(s) <= n else s[: n - 3] + "..."


def print_report(results: list[Result], width: int) -> None:
    name_w = max(len(r.case.name) for r in results)
    print()
    print(f"{'case':<{name_w}}  {'outcome':<9} {'rc':>4} {'s':>5}  last line")
    print("-" * (name_w + 30))
    for r in results:
        rc = "" if r.rc is None else str(r.rc)
        print(f"{r.case.name:<{name_w}}  {r.outcome:<9} {rc:>4} {r.seconds:5.1f}  {_short(r.line, width)}")
    for kind, title in (("bad", "BAD inputs (must be refused)"), ("good", "GOOD inputs (must run)")):
        rs = [r for r in results if r.case.kind == kind]
        if not rs:
            continue
        total = Counter(r.outcome for r in rs)
        print(f"\n{title}: {len(rs)} cases: " + ", ".join(f"{o} {total[o]}" for o in OUTCOMES if total[o]))
        per = defaultdict(Counter)
        for r in rs:
            per[r.case.command][r.outcome] += 1
        cols = [o for o in OUTCOMES if total[o]]
        print(f"  {'command':<10}" + "".join(f"{o:>11}" for o in cols) + f"{'total':>8}")
        for command in [c for c in (*COMMANDS, "other") if c in per]:
            print(f"  {command:<10}" + "".join(f"{per[command][o]:>11}" for o in cols) + f"{sum(per[command].values()):>8}")
    odd = [r for r in results if r.note]
    if odd:
        print("\nnotes:")
        for r in odd:
            print(f"  {r.case.name}: {r.note}")


# --------------------------------------------------------------------------- main

def _repo_state(cwd: str) -> set[str]:
    try:
        r = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"], cwd=cwd, capture_output=True,
                           text=True, timeout=60)
        if r.returncode == 0:
            return set(r.stdout.splitlines())
    except (OSError, subprocess.SubprocessError):
        pass
    return set(os.listdir(cwd))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=textwrap.dedent(__doc__.split("Usage", 1)[1]) if "Usage" in __doc__ else None)
    ap.add_argument("--python", default=sys.executable, help="interpreter that runs `-m sparsest.cli` [default: this one]")
    ap.add_argument("--cwd", default=str(Path(__file__).resolve().parents[1]),
                    help="working directory of every case (the checkout under test) [default: this repository]")
    ap.add_argument("--pythonpath", default=None, help="PYTHONPATH of every case, e.g. the checkout under test")
    ap.add_argument("--data-dir", default=os.environ.get("SPARSEST_DATA_DIR", "/work/shared/data"),
                    help="SPARSEST_DATA_DIR of every case (metr-la-week/, era5-t2m-uk/) [default: %(default)s]")
    ap.add_argument("--timeout", type=float, default=90.0, help="seconds per case before it counts as a hang [default: 90]")
    ap.add_argument("--retry-hangs", type=float, default=0.0, metavar="SECONDS",
                    help="rerun each case that hung with this longer timeout and put that outcome in its note (tells "
                    "a slow accepted run on a busy machine from a real hang; the outcome stays) [default: off]")
    ap.add_argument("--max-rss-mb", type=int, default=6000,
                    help="kill a case whose processes use more memory than this (counts as hang) [default: 6000]")
    ap.add_argument("--jobs", type=int, default=1, choices=(1, 2), help="cases run at a time [default: 1]")
    ap.add_argument("--out", default=None, help="CSV of the results (rewritten after every case)")
    ap.add_argument("--only", default=None, help="run only the cases whose name matches this regular expression")
    ap.add_argument("--list", action="store_true", help="list the cases and their command lines, run nothing")
    ap.add_argument("--workdir", default=None, help="parent of the temporary case folders [default: system temp]")
    ap.add_argument("--keep", action="store_true", help="keep every case's temporary folder")
    ap.add_argument("--keep-output", default=None, metavar="DIR", help="write each case's full output to DIR/<case>.txt")
    ap.add_argument("--width", type=int, default=110, help="characters of the last line shown in the table")
    ap.add_argument("--strict", action="store_true", help="exit 1 unless every case is ok (or skipped)")
    opts = ap.parse_args(argv)

    all_cases = cases()
    names = [c.name for c in all_cases]
    dupes = sorted(n for n, k in Counter(names).items() if k > 1)
    if dupes:
        sys.exit(f"bad_inputs.py: duplicate case names: {dupes}")
    selected = [c for c in all_cases if not opts.only or re.search(opts.only, c.name)]
    if opts.list:
        for c in selected:
            print(f"{c.kind:<4} {c.name:<58} sparsest {' '.join(build_argv(c))}")
        n_bad = sum(c.kind == "bad" for c in selected)
        print(f"\n{len(selected)} cases: {n_bad} bad, {len(selected) - n_bad} good")
        return 0
    if not selected:
        sys.exit("bad_inputs.py: --only matches no case")

    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "PYTHONPATH")}
    if opts.pythonpath:
        env["PYTHONPATH"] = opts.pythonpath
    env["SPARSEST_DATA_DIR"] = opts.data_dir
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.setdefault("PYTHONUNBUFFERED", "1")

    root = Path(tempfile.mkdtemp(prefix="sparsest-bad-inputs-", dir=opts.workdir))
    fx = root / "fixtures"
    write_fixtures(fx, opts.python, env)
    if opts.keep_output:
        Path(opts.keep_output).mkdir(parents=True, exist_ok=True)
    before = _repo_state(opts.cwd)
    print(f"{len(selected)} cases ({sum(c.kind == 'bad' for c in selected)} bad, "
          f"{sum(c.kind == 'good' for c in selected)} good); python {opts.python}; cwd {opts.cwd}; "
          f"PYTHONPATH {opts.pythonpath or '(unset)'}; timeout {opts.timeout:.0f} s; jobs {opts.jobs}; folders under {root}",
          flush=True)

    results: dict[int, Result] = {}
    lock = threading.Lock()
    t_start = time.perf_counter()

    def one(i: int, c: Case) -> None:
        r = run_case(i, c, opts, fx, root, env)
        with lock:
            results[i] = r
            done = len(results)
            print(f"[{done:>3}/{len(selected)}] {r.outcome:<9} {r.seconds:5.1f}s  {c.name}  ->  {_short(r.line, opts.width)}",
                  flush=True)
            if opts.out:
                write_csv(opts.out, [results[k] for k in sorted(results)])

    try:
        if opts.jobs == 1:
            for i, c in enumerate(selected):
                one(i, c)
        else:
            with concurrent.futures.ThreadPoolExecutor(opts.jobs) as pool:
                for f in [pool.submit(one, i, c) for i, c in enumerate(selected)]:
                    f.result()
    except KeyboardInterrupt:
        print("interrupted; reporting the cases that finished", flush=True)
    ordered = [results[k] for k in sorted(results)]
    if not ordered:
        return 1
    if opts.retry_hangs > 0:
        for i, r in enumerate(ordered):
            if r.outcome != "hang":
                continue
            c = r.case
            retry = Case(**{**c.__dict__, "timeout": opts.retry_hangs})
            r2 = run_case(1000 + i, retry, opts, fx, root, env)
            r.note = "; ".join(x for x in (r.note, f"retry with {opts.retry_hangs:.0f} s timeout: {r2.outcome}, "
                                           f"rc {r2.rc}, {r2.seconds:.0f} s, {r2.line}") if x)
            print(f"retry {c.name}: {r2.outcome} {r2.seconds:.0f} s -> {_short(r2.line, opts.width)}", flush=True)
            if opts.out:
                write_csv(opts.out, ordered)
    print_report(ordered, opts.width)
    print(f"\nwall time {time.perf_counter() - t_start:.0f} s")
    after = _repo_state(opts.cwd)
    if after - before:
        print("WARNING: the cases changed the checkout under test:\n  " + "\n  ".join(sorted(after - before)))
    if opts.out:
        write_csv(opts.out, ordered)
        print(f"written: {opts.out}")
    if not opts.keep:
        _rmtree(root)
    if opts.strict and any(r.outcome not in ("ok", "skipped") for r in ordered):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
