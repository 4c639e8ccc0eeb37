"""Export a pruned forecaster for deployment with the list of sensors it needs.

The exported model takes the readings of the KEPT sensors only, in physical units, and
returns the forecast of the whole field in physical units; switched-off sensors need not
exist at deployment. It is a TorchScript module (``torch.jit.trace``) loadable without
sparsest: ``torch.jit.load("model.ts")``.

Shapes:
    graph: ``x_kept`` ``[B, T, K, C]`` (sensors in the order of ``sensors.json``) ->
    ``[B, S, N, C]``; grid: ``x`` ``[B, T, C, H, W]`` (switched-off patches are ignored) ->
    ``[B, S, C, H, W]``. ``tod`` / ``dow``: ``[B, T + S]`` int64 time-of-day slot and day of
    week of every input and target step (:func:`sparsest.data.windows.time_features_of` with
    ``steps_per_day`` of ``sensors.json``; ``dow`` all zeros where ``day_of_week`` is false).

``sensors.json`` also holds what is needed to build those inputs from timestamped readings:
``window`` (T), ``horizon`` (S), ``sensor_ids`` (all N, the output's order),
``steps_per_day``, ``day_of_week`` and ``step_seconds`` (the training data's regular time
step, ``null`` when it had no time column). ``sparsest predict`` (:mod:`sparsest.predict`)
reads it.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import torch
from torch import nn

from .data.windows import StandardScaler, to_physical_range
from .pruning.sensors.wrapper import SensorMaskedForecaster


class DeployedForecaster(nn.Module):
    """A :class:`SensorMaskedForecaster` with its keep-set fixed and the scaler folded in.

    Args:
        model: the pruned wrapper (its ``keep`` is frozen into the export).
        scaler: the train-only scaler of the run.
    """

    def __init__(self, model: SensorMaskedForecaster, scaler: StandardScaler):
        super().__init__()
        self.model = model.eval()
        mean, std = scaler.tensors()
        self.register_buffer("mean", mean.float())
        self.register_buffer("std", std.float())
        self.register_buffer("kept_idx", torch.nonzero(model.keep).flatten())
        self.kind = model.layout.kind
        self.floor, self.resolution = scaler.floor, scaler.resolution

    def forward(self, x: torch.Tensor, tod: torch.Tensor, dow: torch.Tensor) -> torch.Tensor:
        xs = (x - self.mean) / self.std
        if self.kind == "graph":
            B, T, _, C = xs.shape
            full = xs.new_zeros(B, T, self.model.n_sensors, C)
            full[:, :, self.kept_idx] = xs  # switched-off sensors are never read
            xs = full
        return to_physical_range(self.model(xs, tod, dow) * self.std + self.mean, self.floor, self.resolution)


def time_info(data, day_of_week: bool) -> dict:
    """The time facts of a run's training data that ``sensors.json`` records: ``steps_per_day``,
    ``day_of_week`` (whether the model was given it) and ``step_seconds`` (regular step, or None).

    Args:
        data: the run's :class:`~sparsest.data.core.SpatioTemporalData`.
        day_of_week: :attr:`sparsest.engine.prepare.Prepared.day_of_week`.
    """
    from .data.segments import regular_step_s

    ts = data.timestamps
    step = regular_step_s(ts) if ts is not None and len(ts) > 1 else None
    return {"steps_per_day": int(data.steps_per_day), "day_of_week": bool(day_of_week), "step_seconds": step}


def export_pruned(
    model: SensorMaskedForecaster,
    scaler: StandardScaler,
    example: dict,
    out_dir: str | Path,
    sensor_ids: list[str],
    units: str = "",
    time: dict | None = None,
) -> tuple[Path, Path]:
    """Trace the pruned model to TorchScript and write the sensor list.

    Args:
        model: pruned wrapper. scaler: the run's scaler.
        example: a batch with ``x`` (full input, scaled as in training), ``tod``, ``dow``.
        out_dir: folder for ``model.ts`` and ``sensors.json``.
        sensor_ids: ids of all N sensors (grid: patch names).
        time: :func:`time_info` of the training data, written into ``sensors.json``.

    Returns:
        ``(model_path, sensors_path)``.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    dep = DeployedForecaster(model, scaler).eval()
    x = example["x"] * scaler.tensors()[1] + scaler.tensors()[0]  # back to physical units
    if dep.kind == "graph":
        x = x[:, :, dep.kept_idx]
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(dep, (x, example["tod"], example["dow"]), check_trace=False)
    model_path = out_dir / "model.ts"
    traced.save(str(model_path))
    kept = dep.kept_idx.tolist()
    info = {
        "kind": dep.kind,
        "input": "x_kept [B, T, K, C] readings of the kept sensors in this order" if dep.kind == "graph" else "x [B, T, C, H, W]; switched-off patches are ignored",
        "output": "forecast of all sensors [B, S, N, C]" if dep.kind == "graph" else "forecast [B, S, C, H, W]",
        "units": units,
        "kept_sensors": [sensor_ids[i] for i in kept],
        "kept_index": kept,
        "switched_off_sensors": [s for i, s in enumerate(sensor_ids) if i not in set(kept)],
        "sensor_ids": list(sensor_ids),
        "window": int(example["x"].shape[1]),
        "horizon": int(example["tod"].shape[1] - example["x"].shape[1]),
        "n_channels": int(dep.mean.numel()),
        **(time or {}),
        "time_features": "tod [B, T+S] time-of-day slot, dow [B, T+S] day of week (0 = Monday)",
    }
    sensors_path = out_dir / "sensors.json"
    sensors_path.write_text(json.dumps(info, indent=2))
    return model_path, sensors_path
