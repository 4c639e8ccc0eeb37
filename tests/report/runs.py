"""Small run directories written by hand (no training): what ``sparsest run`` / ``train`` /
``compress`` leave behind, with the files and metrics.json keys the report reads."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import yaml

H = 6  # forecast steps


def _per_h(base: float, rng) -> list[float]:
    return list(base * (1 + 0.08 * np.arange(H)) + 0.01 * rng.random(H))


def _err(mae: float, rng) -> dict:
    return {"mae": mae, "rmse": 1.5 * mae, "mape": 10 * mae, "mse": 2.2 * mae ** 2, "mae_per_horizon": _per_h(mae, rng),
            "rmse_per_horizon": _per_h(1.5 * mae, rng), "mape_per_horizon": _per_h(10 * mae, rng),
            "mse_per_horizon": _per_h(2.2 * mae ** 2, rng), "n_observed": 1000}


def _status(path: Path, state: str = "finished", **info) -> None:
    (path / "status.json").write_text(json.dumps({"state": state, "pid": 1, "host": "h", "phase": "done", **info}))


def _log(path: Path, phase: str, val: list[float], timed: bool = True) -> None:
    d = path / "logs" / phase
    d.mkdir(parents=True, exist_ok=True)
    lines = ["epoch,step,time_s,train_loss,val_mae,val_mse" if timed else "epoch,step,train_loss,val_mae,val_mse"]
    for i, v in enumerate(val):
        t = f"{0.7 * (i + 1):.3f}," if timed else ""
        lines.append(f"{i},{3 * i + 2},{t},{v},{v * v}")
        lines.append(f"{i},{3 * i + 2},{',' if timed else ''}{0.5 / (i + 1)},,")  # a training-loss row
    (d / "metrics.csv").write_text("\n".join(lines) + "\n")


def graph_run(parent: Path, name: str = "20261201-000000_toy_stid_dynst-paper_s0.3_seed0", n: int = 20, sparsity: float = 0.3,
              mae: float = 2.0, seed: int = 0, grid: bool = False) -> Path:
    """A finished ``sparsest run`` directory: n graph sensors (or a 4 x 5 patch grid) on
    coordinates, a ring graph, two timed training phases, costs at batch 1 and 64."""
    rng = np.random.default_rng(seed)
    path = parent / name
    path.mkdir(parents=True)
    n_off = round(sparsity * n)
    kept = np.ones(n, int)
    kept[rng.permutation(n)[:n_off]] = 0
    baselines = {"persistence": _err(mae * 1.2, rng), "historical_average": _err(mae * 1.6, rng)}
    m = {"data": "toy", "backbone": "stid", "scheme": "dynst-paper", "seed": seed, "units": "mph", "window": 12, "horizon": H,
         "missing_readings": 3, "baselines": baselines, "dense": _err(mae, rng), "pruned": _err(mae * 1.05, rng),
         "dense_kept_only": _err(mae * 0.98, rng), "pruned_kept_only": _err(mae * 1.01, rng),
         "pruned_switched_off_only": _err(mae * 1.2, rng), "sensor_sparsity": n_off / n, "target_sensor_sparsity": sparsity,
         "n_sensors": n, "n_kept": int(kept.sum()), "search_history": [],
         "time_s": {"dense_train": 3.0, "search": 1.0, "finetune": 2.0, "total": 6.5}, "resumed": False,
         "mae_increase_pct": 5.0, "runs_on_kept_sensors_only": True,
         "latency_ms": {"dense": 45.0, "pruned": 33.0, "batch": 64, "speedup": 45 / 33},
         "gflops": {"dense": 0.041, "pruned": 0.029, "per": "sample", "ratio": 1.41},
         "costs": [{"batch": 1, "latency_ms_dense": 0.85, "latency_ms_pruned": 0.8, "gflops_dense": 0.041, "gflops_pruned": 0.029},
                   {"batch": 64, "latency_ms_dense": 45.0, "latency_ms_pruned": 33.0, "gflops_dense": 0.041,
                    "gflops_pruned": 0.029}]}
    (path / "metrics.json").write_text(json.dumps(m))
    (path / "config.yaml").write_text(yaml.safe_dump({"data": "toy", "backbone": "stid", "scheme": "dynst-paper",
                                                      "sensor_sparsity": sparsity, "seed": seed, "epochs": 3}))
    _status(path)
    if grid:
        rows, cols = np.divmod(np.arange(n), 5)
        ids = [f"r{r}c{c}" for r, c in zip(rows, cols)]
        lat, lon = 52.0 - 0.5 * rows, 4.0 + 0.5 * cols
    else:
        ids = [f"77{i:04d}" for i in range(n)]
        ang = np.linspace(0, 2 * np.pi, n, endpoint=False)
        lat, lon = 34.1 + 0.05 * np.sin(ang), -118.3 + 0.08 * np.cos(ang)
        edges = [(ids[i], ids[(i + 1) % n], 0.5) for i in range(n)] + [(ids[i], ids[(i + 3) % n], 0.2) for i in range(n)]
        (path / "graph_edges.csv").write_text("source,target,weight\n" + "".join(f"{a},{b},{w}\n" for a, b, w in edges))
    imp = 0.5 + rng.random(n)
    (path / "sensors.csv").write_text("sensor_id,latitude,longitude,importance,kept\n" + "".join(
        f"{i},{a},{o},{p},{k}\n" for i, a, o, p, k in zip(ids, lat, lon, imp, kept)))
    _log(path, "dense", [3.0, 2.5, 2.2, 2.1])
    _log(path, "pruned", [2.4, 2.2, 2.15])
    return path


def train_run(parent: Path, name: str = "20261201-000001_toy_stid_st-prune_seed0", timed_logs: bool = False) -> Path:
    """A finished ``sparsest train`` directory: no sensors, no costs; by default its log has
    no wall clock (runs written before the logs had one), metrics.json's ``cum_time_s`` has."""
    rng = np.random.default_rng(1)
    path = parent / name
    path.mkdir(parents=True)
    val = [3.0, 2.6, 2.4]
    test = _err(2.3, rng)
    m = {"data": "toy", "backbone": "stid", "sample_pruning": "st-prune", "prune_ratio": 0.5, "seed": 0, "units": "mph",
         "n_train_windows": 500, "epochs": 3, "test": {k: test[k] for k in ("mae", "rmse", "mape")},
         "test_per_horizon": {k: test[f"{k}_per_horizon"] for k in ("mae", "rmse", "mape")}, "best_val_mae": 2.4,
         "val_mae": val, "train_time_s": 4.0, "epoch_time_s": [1.2, 1.3, 1.3], "cum_time_s": [1.3, 2.7, 4.0],
         "samples_seen": 800, "kept_per_epoch": [250, 250, 250], "overhead": {"overhead_pct": 1.5}, "resumed": False,
         "baselines": {"persistence": {"mae": 2.8, "rmse": 4.0, "mape": 20.0}}, "data_notes": [], "n_sensors": 20,
         "machine": "x86_64, 2 cores"}
    (path / "metrics.json").write_text(json.dumps(m))
    (path / "config.yaml").write_text(yaml.safe_dump({"data": "toy", "backbone": "stid", "sample_pruning": "st-prune"}))
    _status(path)
    _log(path, "train", val, timed=timed_logs)
    return path


def compress_run(parent: Path, name: str = "20261201-000002_radar_simvp_dynapruner_sd0.7_sw0.7_seed0") -> Path:
    """A finished ``sparsest compress`` directory with two importance-map PNGs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rng = np.random.default_rng(2)
    path = parent / name
    (path / "importance_maps").mkdir(parents=True)
    for k in range(2):
        plt.imsave(path / "importance_maps" / f"importance_t0_{k}.png", rng.random((24, 24)), cmap="viridis")
    gf = {"dense": 0.75, "pruned": 0.25, "compact_b64": 0.25, "reduction": 0.66, "per": "sample"}
    m = {"data": "radar", "backbone": "simvp", "seed": 0, "units": "mm/h", "window": 6, "horizon": H, "method": "dynapruner",
         "data_sparsity": 0.7, "model_sparsity": 0.7, "fill": "last", "epochs": 2, "pretrain_epochs": 3,
         "mse": {"dense": 0.30, "pruned": 0.33, "compact": 0.33}, "mae": {"dense": 0.20, "pruned": 0.21, "compact": 0.21},
         "gflops": gf, "latency_ms_b1": {"dense": 22.8, "pruned": 14.5, "speedup": 1.57, "per": "sample"},
         "latency_ms_b64": {"dense": 2845.0, "pruned": 1000.0, "speedup": 2.8, "per": "batch of 64"},
         "model_sparsity_measured": {"mean": 0.6, "min": 0.5, "max": 0.7},
         "compaction": {"removed": 100, "total": 3792},
         "robustness": {"dense": {"clean": 0.30, "noise_0.01": 0.31, "mask_failure_0.05": None},
                        "dyna": {"clean": 0.33, "noise_0.01": 0.34, "mask_failure_0.05": 0.35}},
         "params": {"dense": 250000, "dyna": 253000}, "importance_maps": ["importance_t0_0.png", "importance_t0_1.png"],
         "mp": {"mse": 0.36, "mae": 0.22, "gflops": 0.253, "latency_ms_b1": 15.0, "latency_ms_b64": 2320.0},
         "random": {"mse": 0.45, "mae": 0.25, "gflops": 0.245, "latency_ms_b1": 13.9},
         "baselines": {"persistence": {"mse": 0.5, "mae": 0.3, "rmse": 0.7}},
         "per_horizon": {"dense": {"mse": _per_h(0.3, rng), "mae": _per_h(0.2, rng)},
                         "dyna": {"mse": _per_h(0.33, rng), "mae": _per_h(0.21, rng)}},
         "mse_increase_pct": 10.0, "time_s": {"pretrain": 16.0, "total": 114.6}, "resumed": False}
    (path / "metrics.json").write_text(json.dumps(m))
    (path / "config.yaml").write_text(yaml.safe_dump({"data": "radar", "backbone": "simvp", "data_sparsity": 0.7,
                                                      "model_sparsity": 0.7}))
    _status(path)
    for phase, v in (("pretrain", [0.5, 0.4, 0.35]), ("dense", [0.33, 0.31]), ("dynapruner", [0.4, 0.34])):
        _log(path, phase, v)
    return path


def partial_run(parent: Path, name: str = "20261201-000003_toy_stid_dynst_s0.3_seed0.partial") -> Path:
    """An unfinished ``sparsest run``: config, a running status and one phase's log, no metrics.json."""
    path = parent / name
    path.mkdir(parents=True)
    (path / "config.yaml").write_text(yaml.safe_dump({"data": "toy", "backbone": "stid", "scheme": "dynst"}))
    _status(path, "running", phase="dense")
    _log(path, "dense", [3.0, 2.7])
    return path


def study_run(parent: Path, name: str = "20261201-000004_toy_simvp_dynapruner-study_t34_seed0") -> Path:
    """A finished Dyna-Pruner study (Tables III/IV): rows of settings, no sensors."""
    rows = {"dense": {"kind": "dense", "data_sparsity": 0.0, "model_sparsity": 0.0, "mse": 0.30, "mae": 0.20, "gflops": 0.75,
                      "latency_ms_b1": 20.0},
            "dyna_sd0.5_sw0.5": {"kind": "dyna", "data_sparsity": 0.5, "model_sparsity": 0.5, "mse": 0.31, "mae": 0.20,
                                 "gflops": 0.40, "latency_ms_b1": 14.0},
            "dyna_sd0.7_sw0.7": {"kind": "dyna", "data_sparsity": 0.7, "model_sparsity": 0.7, "mse": 0.33, "mae": 0.21,
                                 "gflops": 0.25, "latency_ms_b1": 12.0}}
    m = {"method": "dynapruner-study", "tables": [3], "data": "toy", "backbone": "simvp", "seed": 0, "units": "K", "window": 6,
         "horizon": H, "epochs": 1, "pretrain_epochs": 1, "default": {"data_sparsity": 0.7, "model_sparsity": 0.7}, "rows": rows,
         "time_s": {"total": 100.0}}
    path = parent / name
    path.mkdir(parents=True)
    (path / "metrics.json").write_text(json.dumps(m))
    (path / "config.yaml").write_text(yaml.safe_dump({"data": "toy", "backbone": "simvp"}))
    _status(path)
    return path
