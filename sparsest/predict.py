"""``sparsest predict``: a finished ``sparsest run``'s exported model on new readings.

The run's ``deploy/model.ts`` (:mod:`sparsest.deploy`) takes the readings of the kept sensors
only, in physical units, and forecasts every sensor of the field (kept and switched off).
This module feeds it the way training fed the model:

- columns are matched by sensor id to ``deploy/sensors.json``'s ``kept_sensors`` (a missing
  one is an error naming it; other sensors in the file are ignored);
- a missing reading (NaN) is the training mean, as in training (zero after scaling);
- ``tod`` / ``dow`` come from the timestamps (input steps) and from last input time
  + h x step (forecast steps, h = 1..S) with the run's ``steps_per_day``; ``dow`` is all
  zeros where training had under two weeks (``day_of_week`` false);
- a window is ``window`` consecutive readings, evenly spaced at the data's step (the run's
  training step, when known, must match).

The forecast is issued for the latest window (default) or for every window of the file
(``all_windows``: one per window end, windows across a gap in the time column skipped).
Without a time column the readings can be used only where the training data had none either
(``step_seconds`` null; the time features then count steps from the first row, as training
did) or the model reads no time feature; forecasts then carry row and horizon indices only.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .engine.run import atomic_write_text, read_status
from .errors import ConfigError, DataError, SparsestError

OUT_SUFFIXES = (".csv", ".npz")
CHUNK = 256  # windows per forward pass
TIME_KEYS = ("steps_per_day", "day_of_week", "step_seconds", "horizon")


@dataclass
class Deployed:
    """A run's exported model: ``run_dir``, ``model_path`` and ``info`` (``deploy/sensors.json``,
    with ``sensor_ids`` and the :data:`TIME_KEYS` recovered for exports that predate them)."""

    run_dir: Path
    model_path: Path
    info: dict


@dataclass
class Forecast:
    """The forecast of the whole field for W windows.

    Attributes:
        values: ``[W, S, N, C]`` float32, physical units (``units``).
        sensor_ids: the N sensors (kept and switched off, the model's order).
        kept_sensors: the K sensors read.
        horizons: ``[S]`` 1..S.
        issued_at_row: ``[W]`` row (0-based, in the readings) of each window's last input step.
        issued_at: ``[W]`` ``datetime64[ns]`` time of that step, or None (no time column).
        times: ``[W, S]`` ``datetime64[ns]`` forecast times ``issued_at + h * step``, or None.
        step_seconds: the time step [s], or None.
        n_filled: missing readings (NaN) in the windows read, filled with the training mean.
        n_skipped: windows left out because they cross a gap in the time column.
        ignored: sensors of the readings the model does not read.
        notes: one line each on what was ignored, filled, skipped or assumed.
    """

    values: np.ndarray
    sensor_ids: list
    kept_sensors: list
    horizons: np.ndarray
    issued_at_row: np.ndarray
    issued_at: np.ndarray | None
    times: np.ndarray | None
    step_seconds: int | None
    units: str = ""
    n_filled: int = 0
    n_skipped: int = 0
    ignored: tuple = ()
    notes: tuple = ()


def load_run(run_dir: str | Path) -> Deployed:
    """The exported model of a finished ``sparsest run`` (graph data) run directory.

    Raises:
        ConfigError: not a directory, unfinished (``.partial``), no ``deploy/model.ts``
            (``train`` / ``compress`` runs), or a grid run.
        DataError: unreadable ``sensors.json``, or an old one whose time facts cannot be
            recovered from the run's training data.
    """
    d = Path(run_dir)
    if not d.is_dir():
        raise ConfigError(f"{d}: {'not a directory' if d.exists() else 'no such run directory'}")
    state = read_status(d).get("state")
    if d.name.endswith(".partial") or state not in (None, "finished"):
        raise ConfigError(f"{d}: an unfinished run ({state or '.partial'}); predict needs a finished `sparsest run` "
                          "run directory")
    model, sj = d / "deploy" / "model.ts", d / "deploy" / "sensors.json"
    if not model.is_file() or not sj.is_file():
        raise ConfigError(f"{d}: no exported model (deploy/model.ts); predict takes the run directory of a finished "
                          "`sparsest run` (DynST), `train` and `compress` runs export none")
    try:
        info = json.loads(sj.read_text())
        kept = list(map(str, info["kept_sensors"]))
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise DataError(f"{sj}: unreadable ({e.__class__.__name__}: {e})") from None
    kind = info.get("kind") or ("grid" if str(info.get("input", "")).startswith("x [") else "graph")
    if kind != "graph":
        raise ConfigError(f"{d}: a grid run; predict reads sensor readings (graph runs) only; load deploy/model.ts "
                          "with torch.jit.load for frames (see deploy/sensors.json)")
    info["kept_sensors"] = kept
    if "sensor_ids" not in info:  # exports before sparsest predict: rebuild the model's order
        ids, it_kept, it_off = [], iter(kept), iter(map(str, info.get("switched_off_sensors", [])))
        kept_at = set(info["kept_index"])
        for i in range(len(kept) + len(info.get("switched_off_sensors", []))):
            ids.append(next(it_kept) if i in kept_at else next(it_off))
        info["sensor_ids"] = ids
    info["sensor_ids"] = list(map(str, info["sensor_ids"]))
    if any(k not in info for k in TIME_KEYS):
        info.update({k: v for k, v in _time_facts_from_config(d).items() if k not in info})
    return Deployed(d, model, info)


def _time_facts_from_config(d: Path) -> dict:
    """:data:`TIME_KEYS` of a run whose ``sensors.json`` predates them, from its training data."""
    import yaml

    from .data.segments import regular_step_s
    from .data.windows import DEFAULT_SPLIT, chronological_split, uses_day_of_week
    from .datasets import load_dataset

    try:
        cfg = yaml.safe_load((d / "config.yaml").read_text())
        data, entry = load_dataset(str(cfg["data"]), cfg.get("data_dir"), segments=cfg.get("segments"))
        if cfg.get("time_slice") is not None:
            from .engine.prepare import time_slice

            data = time_slice(data, cfg["time_slice"])
        window = cfg.get("window") or (entry.window if entry else 12)
        horizon = cfg.get("horizon") or (entry.horizon if entry else 12)
        split = chronological_split(data.n_steps, window, horizon, fractions=tuple(cfg.get("split") or DEFAULT_SPLIT),
                                    source=data.source, segments=data.segments)
    except (OSError, KeyError, TypeError, AttributeError, yaml.YAMLError, SparsestError) as e:
        raise DataError(f"{d}: deploy/sensors.json predates sparsest predict (no steps_per_day / day_of_week) and the run's "
                        f"training data cannot be read to recover them ({str(e).splitlines()[0] if str(e) else e})") from None
    ts = data.timestamps
    return {"steps_per_day": int(data.steps_per_day), "horizon": int(horizon),
            "day_of_week": uses_day_of_week(split.n_steps("train"), data.steps_per_day),
            "step_seconds": regular_step_s(ts) if ts is not None and len(ts) > 1 else None}


def read_readings(path: str | Path) -> tuple[np.ndarray, list[str], np.ndarray | None]:
    """New readings from a signals file, as ``--data FILE`` reads graph signals
    (:func:`sparsest.data.readers.read_signals`): ``(values [T, N, C], sensor ids, timestamps
    or None)``; files without ids get ``"0".."N-1"`` as in training.

    Raises:
        DataError: a missing or malformed file, or grid frames.
    """
    from .data.readers import read_signals, sniff_kind

    p = Path(path)
    if not p.exists():
        raise DataError(f"{p}: no such file")
    if sniff_kind(p) == "grid":
        raise DataError(f"{p}: holds grid frames; predict reads sensor readings [T, N] (CSV, .npz, .npy, .h5)")
    values, ids, ts = read_signals(p)
    return values, [str(i) for i in ids] if ids else [str(i) for i in range(values.shape[1])], ts


def predict(run: Deployed, values: np.ndarray, timestamps: np.ndarray | None, sensor_ids: list[str],
            all_windows: bool = False, source: str = "readings") -> Forecast:
    """Forecast the whole field from ``values`` ``[T, N', C]`` (or ``[T, N']``) of sensors
    ``sensor_ids`` at ``timestamps`` ``[T]`` (or None), in physical units.

    Raises:
        DataError: a sensor the model needs is missing, too few rows, inf values, channels
            that do not match, irregular timestamps in a window, a time step other than
            the training one, or no time column for a model that uses the time of day / week.
    """
    import torch

    from .data.segments import regular_step_s
    from .data.windows import time_features_of

    info = run.info
    T_in, S, spd = int(info["window"]), int(info["horizon"]), int(info["steps_per_day"])
    kept = info["kept_sensors"]
    pos = {str(s): i for i, s in enumerate(sensor_ids)}
    missing = [s for s in kept if s not in pos]
    if missing:
        raise DataError(f"{source}: {len(missing)} of the {len(kept)} sensors the model needs are missing: "
                        f"{', '.join(missing[:10])}{' ...' if len(missing) > 10 else ''} "
                        f"(the list: {run.run_dir / 'deploy' / 'sensors.json'}, kept_sensors)")
    values = np.asarray(values, dtype=np.float32)
    x = (values[:, :, None] if values.ndim == 2 else values)[:, [pos[s] for s in kept]]  # [T, K, C]
    try:
        model = torch.jit.load(str(run.model_path), map_location="cpu")
        mean = model.mean.reshape(-1).numpy()
    except (RuntimeError, AttributeError) as e:
        raise DataError(f"{run.model_path}: cannot load the exported model ({str(e).splitlines()[0][:160]})") from None
    T = x.shape[0]
    if x.shape[2] != mean.size:
        raise DataError(f"{source}: {x.shape[2]} channel(s) per sensor, the model reads {mean.size}")
    if T < T_in:
        raise DataError(f"{source}: {T} time steps, fewer than the model's input window of {T_in}")
    if np.isinf(x).any():
        raise DataError(f"{source}: {int(np.isinf(x).sum())} readings of the kept sensors are inf; use NaN for missing")
    ends = np.arange(T_in, T + 1) if all_windows else np.array([T])  # window = rows [end - T_in, end)
    n_skipped, step = 0, info.get("step_seconds")
    ts = None if timestamps is None else np.asarray(timestamps).astype("datetime64[ns]")
    if ts is not None:
        data_step = regular_step_s(ts) if T > 1 else None
        if data_step is not None and data_step <= 0:
            raise DataError(f"{source}: timestamps must increase")
        if data_step and step and data_step != step:
            raise DataError(f"{source}: readings every {_span(data_step)}, the model was trained on a step of {_span(step)}")
        if data_step and not step and spd > 1 and max(1, round(86_400 / data_step)) != spd:
            raise DataError(f"{source}: readings every {_span(data_step)}, the model was trained on {spd} steps a day")
        step = data_step or step
    by_row = False
    if ts is None or not step:
        by_row = spd > 1 or bool(info["day_of_week"])
        if by_row and info.get("step_seconds"):
            need = " and ".join(w for w, used in (("time of day", spd > 1), ("day of week", info["day_of_week"])) if used)
            raise DataError(f"{source}: no time column; the model reads the {need}, so the readings need timestamps "
                            "(CSV: a first column 'time'; .npz: a 'timestamps' array)")
        ts = None
    if ts is not None:
        gap = np.diff(ts.astype("datetime64[s]").astype(np.int64)) != step  # [T - 1]: row i -> i + 1 not one step
        n_gaps = np.concatenate([[0], np.cumsum(gap)])
        bad = n_gaps[ends - 1] - n_gaps[ends - T_in] > 0
        if bad.all():
            i = int(np.flatnonzero(gap[ends[-1] - T_in:ends[-1] - 1])[-1]) + ends[-1] - T_in
            raise DataError(f"{source}: the last {T_in} readings are not evenly spaced ({_when(ts[i])} to {_when(ts[i + 1])}; the "
                            f"step is {_span(step)}); the model needs {T_in} consecutive readings"
                            + ("" if all_windows else " (--all-windows uses every window without a gap)"))
        n_skipped, ends = int(bad.sum()), ends[~bad]
    rows = ends[:, None] - T_in + np.arange(T_in)  # [W, T_in]
    horizons = np.arange(1, S + 1)
    times = issued = None
    if ts is None:  # as training without timestamps: steps counted from the first row (row 0 = Monday 00:00)
        t = np.concatenate([rows, (ends - 1)[:, None] + horizons], axis=1)
        tod = (t % spd).astype(np.int64)
        dow = (t // spd % 7).astype(np.int64) if info["day_of_week"] else np.zeros_like(tod)
    else:
        issued = ts[ends - 1]
        times = issued[:, None] + horizons * np.timedelta64(int(step), "s")  # [W, S]
        tod_in, dow_in = time_features_of(ts, spd)
        tod_f, dow_f = (a.reshape(times.shape) for a in time_features_of(times.ravel(), spd))
        tod = np.concatenate([tod_in[rows], tod_f], axis=1)
        dow = np.concatenate([dow_in[rows], dow_f], axis=1) if info["day_of_week"] else np.zeros_like(tod)
    read = np.zeros(T + 1, dtype=np.int64)  # rows some window reads
    np.add.at(read, ends - T_in, 1)
    np.add.at(read, ends, -1)
    nan = np.isnan(x)
    n_filled = int(nan[np.cumsum(read)[:T] > 0].sum())
    x = np.where(nan, mean.astype(np.float32), x)  # missing = the training mean (0 after scaling), as in training
    out = []
    with torch.no_grad():
        for a in range(0, len(ends), CHUNK):
            sl = slice(a, a + CHUNK)
            out.append(model(torch.from_numpy(x[rows[sl]]), torch.from_numpy(tod[sl]), torch.from_numpy(dow[sl])).numpy())
    values_out = np.concatenate(out).astype(np.float32)  # [W, S, N, C]
    if values_out.shape[1:3] != (S, len(info["sensor_ids"])):
        raise DataError(f"{run.model_path}: forecasts {values_out.shape[1:3]} steps x sensors, sensors.json says "
                        f"{(S, len(info['sensor_ids']))}")
    used = set(kept)
    ignored = [s for s in sensor_ids if s not in used]
    notes = [f"{len(ignored)} sensor(s) of {source} not read by the model, ignored (e.g. {', '.join(ignored[:3])})"] * bool(ignored)
    notes += [f"{n_filled} missing reading(s) in the windows read, filled with the training mean as in training"] * bool(n_filled)
    notes += [f"{n_skipped} window(s) across a gap in the time column skipped"] * bool(n_skipped)
    notes += ["no time column, as in the training data: time of day / day of week counted from the first row, as in "
              "training (row 0 = Monday 00:00)"] * by_row
    return Forecast(values_out, list(info["sensor_ids"]), list(kept), horizons, (ends - 1).astype(np.int64), issued, times,
                    int(step) if ts is not None else None, str(info.get("units", "")), n_filled, n_skipped, tuple(ignored),
                    tuple(notes))


def _when(t) -> str:
    return str(np.datetime64(t, "s")).replace("T", " ")


def _span(seconds: int) -> str:
    for unit, n in (("d", 86_400), ("h", 3_600), ("min", 60)):
        if seconds % n == 0:
            return f"{seconds // n} {unit}"
    return f"{seconds} s"


def check_out(out: str | Path, force: bool = False, run_dir: str | Path | None = None) -> Path:
    """``--out`` as a path: ``.csv`` or ``.npz``, its folder existing, not inside ``run_dir``,
    not an existing file unless ``force``.

    Raises:
        ConfigError: naming ``--out`` and why.
    """
    p = Path(out)
    if p.suffix.lower() not in OUT_SUFFIXES:
        raise ConfigError(f"--out {out}: write FILE.csv (a long table) or FILE.npz (arrays), got "
                          f"{p.suffix or 'no suffix'}")
    if p.is_dir():
        raise ConfigError(f"--out {out}: is a folder; give the file to write")
    if not p.parent.resolve().is_dir():
        raise ConfigError(f"--out {out}: folder {p.parent} does not exist")
    if run_dir is not None:
        root = Path(run_dir).resolve()
        if root in (p.parent.resolve() / p.name).parents:
            raise ConfigError(f"--out {out}: inside run directory {run_dir}; a finished run is never modified")
    if p.exists() and not force:
        raise ConfigError(f"--out {out}: exists; pass --force to overwrite it")
    return p


def forecast_table(fc: Forecast):
    """The long table: one row per window, step, sensor (and channel when C > 1):
    ``issued_at, forecast_time`` (or ``issued_at_row`` without timestamps), ``horizon,
    sensor_id[, channel], value``."""
    import pandas as pd

    W, S, N, C = fc.values.shape
    cols = {}
    if fc.issued_at is not None:
        cols["issued_at"] = np.repeat(fc.issued_at, S * N * C)
        cols["forecast_time"] = np.repeat(fc.times.ravel(), N * C)
    else:
        cols["issued_at_row"] = np.repeat(fc.issued_at_row, S * N * C)
    cols["horizon"] = np.tile(np.repeat(fc.horizons, N * C), W)
    cols["sensor_id"] = np.tile(np.repeat(np.asarray(fc.sensor_ids, dtype=str), C), W * S)
    if C > 1:
        cols["channel"] = np.tile(np.arange(C), W * S * N)
    cols["value"] = fc.values.ravel()
    return pd.DataFrame(cols)


def write_forecast(fc: Forecast, out: str | Path) -> Path:
    """Write ``fc`` to ``out`` (``.csv``: :func:`forecast_table`; ``.npz``: ``forecast``
    ``[W, S, N]`` (``[W, S, N, C]`` when C > 1), ``horizons``, ``sensor_ids``, ``kept_sensors``,
    ``issued_at_row``, ``units``, and with timestamps ``issued_at`` ``[W]`` and ``timestamps``
    ``[W, S]``) through a temporary file and a rename. Check ``out`` with :func:`check_out` first.

    Raises:
        ConfigError: the file cannot be written.
    """
    p = Path(out)
    if p.suffix.lower() == ".csv":
        payload = forecast_table(fc).to_csv(index=False).encode()
    else:
        arrays = {"forecast": fc.values[..., 0] if fc.values.shape[3] == 1 else fc.values,
                  "horizons": fc.horizons, "sensor_ids": np.asarray(fc.sensor_ids, dtype=str),
                  "kept_sensors": np.asarray(fc.kept_sensors, dtype=str), "issued_at_row": fc.issued_at_row,
                  "units": np.asarray(fc.units)}
        if fc.issued_at is not None:
            arrays.update(issued_at=fc.issued_at, timestamps=fc.times)
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        payload = buf.getvalue()
    try:
        atomic_write_text(p, payload)
    except OSError as e:
        raise ConfigError(f"--out {out}: cannot write it ({e.strerror or e.__class__.__name__})") from None
    return p


__all__ = ["Deployed", "Forecast", "load_run", "read_readings", "predict", "check_out", "forecast_table", "write_forecast"]
