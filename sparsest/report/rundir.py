"""What the HTML report reads from a run directory: files only (``metrics.json``,
``config.yaml``, ``status.json``, ``sensors.csv``, ``graph_edges.csv``,
``logs/<phase>/metrics.csv``, ``importance_maps/*.png``), never a model and never torch.

A missing required file is one :class:`~sparsest.errors.ConfigError` line naming it; a
missing or unreadable optional file becomes a one-line note on the page (its section is
left out).
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ..errors import ConfigError

PARTIAL = ".partial"  # the suffix of an unfinished run directory (sparsest.engine.run.PARTIAL)
MAX_MAP_BYTES = 2_000_000  # importance-map PNGs larger than this are linked, not embedded


@dataclass
class RunFiles:
    """One run directory as the report sees it.

    Attributes:
        kind: ``run`` (DynST), ``plan`` (DynST within an error budget), ``train`` (sample pruning), ``compress`` (Dyna-Pruner),
            ``study`` (Dyna-Pruner Tables III/IV) or ``unknown``.
        curves: per training phase, ``{"epoch", "time_s" (None when not logged), "val_mae", "val_mse"}``.
        notes: one line per optional file that was missing or unreadable.
    """

    path: Path
    name: str
    metrics: dict
    config: dict
    status: dict
    finished: bool
    kind: str
    curves: dict = field(default_factory=dict)
    sensors: object = None  # DataFrame of sensors.csv
    edges: object = None  # int array [E, 2] of rows of sensors
    maps: list = field(default_factory=list)  # (name, Path) of importance-map PNGs
    notes: list = field(default_factory=list)
    link_base: Path | None = None  # the folder of the page: links to the run's files are relative to it

    @property
    def units(self) -> str:
        return str(self.metrics.get("units") or self.config.get("units") or "")

    def short(self) -> str:
        """A short label: data · backbone · method, for legends and table headers."""
        m = self.metrics or self.config
        method = m.get("scheme") or m.get("sample_pruning") or m.get("method") or self.kind
        extra = ""
        if self.kind == "plan":
            method = "plan"
            if m.get("sensor_sparsity") is not None:
                extra = f" s={float(m['sensor_sparsity']):.2f} ({m.get('scheme', '?')})"
        elif self.kind == "run" and m.get("sensor_sparsity") is not None:
            extra = f" s={float(m['sensor_sparsity']):.2f}"
        elif self.kind == "train" and m.get("sample_pruning", "none") != "none":
            extra = f" R={m.get('prune_ratio', 0):g}"
        elif self.kind == "compress":
            extra = f" sd={m.get('data_sparsity', '?')} sw={m.get('model_sparsity', '?')}"
        return f"{m.get('data', '?')} · {m.get('backbone', '?')} · {method}{extra} · seed {m.get('seed', '?')}"


def _one_line(e: Exception) -> str:
    text = str(e).strip()
    return text.splitlines()[0][:160] if text else e.__class__.__name__


def kind_of(metrics: dict, config: dict) -> str:
    """Which command wrote the run (from ``metrics.json``, else ``config.yaml``)."""
    method = metrics.get("method")
    if method == "plan" or (not metrics and "max_increase" in config):
        return "plan"
    if method == "dynapruner-study":
        return "study"
    if method == "dynapruner" or (not metrics and "model_sparsity" in config):
        return "compress"
    if "sample_pruning" in metrics and "test" in metrics:
        return "train"
    if "scheme" in metrics or (not metrics and "scheme" in config):
        return "run"
    if not metrics and "sample_pruning" in config:
        return "train"
    return "unknown"


def _read_json(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise ConfigError(f"{path}: unreadable ({_one_line(e)})") from None


def _number(v) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def read_curve(path: Path) -> dict | None:
    """Validation rows of a Lightning CSV log: ``epoch``, ``time_s`` (None when the log has
    no wall clock), ``val_mae``, ``val_mse``; None when it holds no validation row."""
    out = {"epoch": [], "time_s": [], "val_mae": [], "val_mse": []}
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        if not reader.fieldnames or "val_mae" not in reader.fieldnames:
            return None
        for row in reader:
            if not row.get("val_mae"):
                continue
            out["epoch"].append(int(float(row.get("epoch") or len(out["epoch"]))) + 1)
            out["time_s"].append(_number(row.get("time_s")))
            out["val_mae"].append(_number(row["val_mae"]))
            out["val_mse"].append(_number(row.get("val_mse")))
    if not out["val_mae"]:
        return None
    if not all(math.isfinite(t) for t in out["time_s"]):
        out["time_s"] = None
    return out


def _read_curves(run: RunFiles) -> None:
    logs = run.path / "logs"
    for path in sorted(logs.glob("*/metrics.csv")) if logs.is_dir() else []:
        try:
            curve = read_curve(path)
        except (OSError, UnicodeDecodeError, ValueError, csv.Error) as e:
            run.notes.append(f"{path.relative_to(run.path)}: unreadable ({_one_line(e)}); its curve is left out")
            continue
        if curve is not None:
            run.curves[path.parent.name] = curve
    m = run.metrics
    train = run.curves.get("train")
    cum, val = m.get("cum_time_s"), m.get("val_mae")
    if run.kind == "train" and isinstance(cum, list) and isinstance(val, list) and len(cum) == len(val) and cum:
        if train is None or (train["time_s"] is None and len(train["val_mae"]) == len(cum)):
            run.curves["train"] = {"epoch": list(range(1, len(cum) + 1)), "time_s": [_number(t) for t in cum],
                                   "val_mae": [_number(v) for v in val], "val_mse": [math.nan] * len(val)}


def _read_sensors(run: RunFiles) -> None:
    path = run.path / "sensors.csv"
    if not path.exists():
        return
    import numpy as np
    import pandas as pd

    try:
        table = pd.read_csv(path, dtype={"sensor_id": str})
    except (OSError, UnicodeDecodeError, ValueError, pd.errors.ParserError) as e:
        run.notes.append(f"sensors.csv: unreadable ({_one_line(e)}); no sensor map")
        return
    need = {"sensor_id", "latitude", "longitude", "importance", "kept"}
    if not need <= set(table.columns) or table.empty:
        missing = ", ".join(sorted(need - set(table.columns))) or "rows"
        run.notes.append(f"sensors.csv: no {missing}; no sensor map")
        return
    try:
        table["kept"] = table["kept"].astype(int)
        for c in ("latitude", "longitude", "importance"):
            table[c] = pd.to_numeric(table[c], errors="coerce")
    except (TypeError, ValueError) as e:
        run.notes.append(f"sensors.csv: bad values ({_one_line(e)}); no sensor map")
        return
    run.sensors = table
    epath = run.path / "graph_edges.csv"
    if not epath.exists():
        return
    try:
        edges = pd.read_csv(epath, dtype={"source": str, "target": str})
        index = {sid: i for i, sid in enumerate(table["sensor_id"])}
        src, dst = edges["source"].map(index), edges["target"].map(index)
        ok = src.notna() & dst.notna()
        run.edges = np.column_stack([src[ok].astype(int), dst[ok].astype(int)]) if ok.any() else None
        if not ok.all():
            run.notes.append(f"graph_edges.csv: {int((~ok).sum())} edges name sensors not in sensors.csv; left out")
    except (OSError, UnicodeDecodeError, ValueError, KeyError, pd.errors.ParserError) as e:
        run.notes.append(f"graph_edges.csv: unreadable ({_one_line(e)}); the map has no edges")


def _read_maps(run: RunFiles) -> None:
    folder = run.path / "importance_maps"
    if not folder.is_dir():
        return
    for p in sorted(folder.glob("*.png"))[:8]:
        if p.stat().st_size <= MAX_MAP_BYTES:
            run.maps.append((p.name, p))
        else:
            run.notes.append(f"importance_maps/{p.name}: over {MAX_MAP_BYTES // 1_000_000} MB, linked instead of embedded")


def read_run(run_dir: str | Path) -> RunFiles:
    """Read everything the report shows from ``run_dir``.

    Args:
        run_dir: a run directory of ``sparsest run`` / ``train`` / ``compress`` / a bench
            (finished, or unfinished: ``….partial``).

    Raises:
        ConfigError: ``run_dir`` is not a directory; a finished run has no readable
            ``metrics.json``; an unfinished one has neither ``metrics.json`` nor ``config.yaml``.
    """
    p = Path(run_dir)
    if not p.exists():
        raise ConfigError(f"{p}: no such run directory")
    if not p.is_dir():
        raise ConfigError(f"{p}: not a directory (expected a run directory)")
    notes = []
    status = {}
    if (p / "status.json").exists():
        try:
            status = _read_json(p / "status.json")
        except ConfigError as e:
            notes.append(str(e))
        status = status if isinstance(status, dict) else {}
    partial = p.name.endswith(PARTIAL)
    finished = status.get("state") == "finished" if status.get("state") else not partial
    config = {}
    if (p / "config.yaml").exists():
        try:
            config = yaml.safe_load((p / "config.yaml").read_text()) or {}
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
            notes.append(f"config.yaml: unreadable ({_one_line(e)})")
        if not isinstance(config, dict):
            notes.append("config.yaml: not a mapping of options")
            config = {}
    else:
        notes.append("config.yaml: missing")
    mpath = p / "metrics.json"
    if mpath.exists():
        metrics = _read_json(mpath)
        if not isinstance(metrics, dict):
            raise ConfigError(f"{mpath}: not a JSON object of metrics")
    elif not finished and (p / "config.yaml").exists():
        metrics = {}
        notes.append("metrics.json: not written yet (the run has not finished); only its training curves are shown")
    else:
        raise ConfigError(f"{p}: no metrics.json (not a finished sparsest run directory)")
    name = p.name[: -len(PARTIAL)] if finished and partial else p.name
    run = RunFiles(p, name, metrics, config, status, finished, kind_of(metrics, config), notes=notes)
    _read_curves(run)
    _read_sensors(run)
    _read_maps(run)
    return run


__all__ = ["RunFiles", "read_run", "read_curve", "kind_of", "PARTIAL"]
