"""``sparsest predict``: a finished run's exported model on new readings equals the run's
Python model evaluated on the same windows; errors are one line (exit 2)."""

import json
import shutil

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from sparsest.cli import main

from .test_cli import assert_one_line_error, run_cli

T, N, WINDOW, HORIZON = 600, 8, 6, 3  # 25 days of hourly readings: the model reads time of day and day of week


def tiny_run(base, time_column=True):
    """A finished tiny ``sparsest run`` (QR placement, 1 epoch of 2 batches) on hourly readings with gaps of NaN."""
    t = np.arange(T)[:, None]
    rng = np.random.default_rng(0)
    v = (20 + 5 * np.sin(2 * np.pi * t / 24 + np.arange(N)) + 0.3 * rng.normal(size=(T, N))).astype(np.float32)
    v[100:103, 2] = np.nan
    v[T - 40:T - 37, 1:5] = np.nan  # in the test split: some of these sensors are kept
    df = pd.DataFrame(v, columns=[f"s{i}" for i in range(N)])
    if time_column:
        df.insert(0, "time", pd.date_range("2026-01-05", periods=T, freq="h"))
    df.to_csv(base / "sig.csv", index=False)
    assert main(["run", "--data", str(base / "sig.csv"), "--window", str(WINDOW), "--horizon", str(HORIZON), "--scheme", "qr",
                 "--epochs", "1", "--limit-train-batches", "2", "--bench-repeats", "1", "--bench-batch", "4",
                 "--out", str(base / "runs")]) == 0
    (path,) = (base / "runs").iterdir()
    return path


def python_forecast(run_dir):
    """The run's test windows and the Python model's forecast of them, as evaluation computes it."""
    from sparsest.backbones import create_backbone
    from sparsest.engine.options import build_options
    from sparsest.engine.prepare import prepare
    from sparsest.methods.dynst.config import RunConfig
    from sparsest.pruning.sensors.layout import SensorLayout
    from sparsest.pruning.sensors.wrapper import SensorMaskedForecaster

    opts = build_options(RunConfig, ("config", yaml.safe_load((run_dir / "config.yaml").read_text())))
    prep = prepare(opts)
    model = SensorMaskedForecaster(create_backbone(opts.backbone, prep.spec), SensorLayout("graph", N))
    state = torch.load(run_dir / "checkpoints" / "pruned.ckpt", map_location="cpu", weights_only=True)["state_dict"]
    model.load_state_dict({k[len("model."):]: w for k, w in state.items() if k.startswith("model.")})
    model.subset = True
    model.eval()
    ds = prep.loaders["test"].dataset
    b = ds.__getitems__(list(range(len(ds))))
    with torch.no_grad():
        want = prep.scaler.physical(model(b["x"], b["tod"], b["dow"])).numpy()[..., 0]  # [n, S, N]
    info = json.loads((run_dir / "deploy" / "sensors.json").read_text())
    return {"want": want, "rows": prep.split.test, "data": prep.data, "kept": info["kept_sensors"], "ids": info["sensor_ids"],
            "info": info}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return tiny_run(tmp_path_factory.mktemp("predict"))


@pytest.fixture(scope="module")
def truth(run_dir):
    return python_forecast(run_dir)


def readings(truth, path, drop=(), extra=False):
    """The test split's readings of the kept sensors (columns in reverse order) as CSV with a time column."""
    a, b = truth["rows"]
    d = truth["data"]
    cols = [s for s in reversed(truth["kept"]) if s not in drop]
    if extra:
        cols.append(next(s for s in truth["ids"] if s not in truth["kept"]))
    df = pd.DataFrame({s: d.values[a:b, d.sensor_ids.index(s), 0] for s in cols})
    df.insert(0, "time", pd.to_datetime(d.timestamps[a:b]))
    df.to_csv(path, index=False)
    return path


def test_predict_equals_the_python_model_csv_and_npz(run_dir, truth, tmp_path, capsys):
    data = readings(truth, tmp_path / "new.csv", extra=True)
    want = truth["want"]
    n = len(want)
    code, _, err = run_cli(["predict", str(run_dir), "--data", str(data), "--out", str(tmp_path / "f.npz"), "--all-windows"], capsys)
    assert code == 0, err
    assert "ignored" in err and "missing reading" in err  # the extra sensor; NaN readings filled
    z = np.load(tmp_path / "f.npz", allow_pickle=False)
    a, b = truth["rows"]
    assert z["forecast"].shape == (b - a - WINDOW + 1, HORIZON, N)
    assert list(z["sensor_ids"]) == truth["ids"] and list(z["horizons"]) == [1, 2, 3]
    np.testing.assert_allclose(z["forecast"][:n], want, rtol=1e-5, atol=1e-4)  # windows with a target in the file
    # (d) forecast times = last input time + h * step
    ts = truth["data"].timestamps
    np.testing.assert_array_equal(z["issued_at"], ts[a + WINDOW - 1:b])
    np.testing.assert_array_equal(z["timestamps"], z["issued_at"][:, None] + np.arange(1, 4) * np.timedelta64(1, "h"))
    np.testing.assert_array_equal(z["timestamps"][:n - 1, 0], ts[a + WINDOW:a + WINDOW + n - 1])
    # CSV: the long table, same numbers; default = the latest window only
    code, _, err = run_cli(["predict", str(run_dir), "--data", str(data), "--out", str(tmp_path / "f.csv")], capsys)
    assert code == 0, err
    t = pd.read_csv(tmp_path / "f.csv", dtype={"sensor_id": str}, parse_dates=["issued_at", "forecast_time"])
    assert list(t.columns) == ["issued_at", "forecast_time", "horizon", "sensor_id", "value"]
    assert len(t) == HORIZON * N and (t["issued_at"] == pd.Timestamp(ts[b - 1])).all()
    assert list(t["sensor_id"][:N]) == truth["ids"]
    assert (t["forecast_time"] == t["issued_at"] + pd.to_timedelta(t["horizon"], unit="h")).all()
    np.testing.assert_allclose(t["value"].to_numpy().reshape(HORIZON, N), z["forecast"][-1], rtol=1e-6, atol=1e-5)


def test_library_predict_fills_missing_like_training(run_dir, truth):
    from sparsest.predict import load_run, predict

    a, b = truth["rows"]
    d = truth["data"]
    kept = [d.sensor_ids.index(s) for s in truth["kept"]]
    fc = predict(load_run(run_dir), d.values[a:b, kept], d.timestamps[a:b], truth["kept"], all_windows=True)
    assert fc.n_filled == np.isnan(d.values[a:b, kept]).sum() > 0
    np.testing.assert_allclose(fc.values[:len(truth["want"]), ..., 0], truth["want"], rtol=1e-5, atol=1e-4)


def test_missing_sensor_is_one_line(run_dir, truth, tmp_path, capsys):
    gone = truth["kept"][1]
    data = readings(truth, tmp_path / "few.csv", drop=(gone,))
    code, _, err = run_cli(["predict", str(run_dir), "--data", str(data), "--out", str(tmp_path / "f.csv")], capsys)
    assert_one_line_error(code, err, "few.csv", gone, "missing")
    assert not (tmp_path / "f.csv").exists()


def test_existing_out_needs_force_and_bad_suffix(run_dir, truth, tmp_path, capsys):
    data = readings(truth, tmp_path / "new.csv")
    out = tmp_path / "f.csv"
    out.write_text("keep me\n")
    code, _, err = run_cli(["predict", str(run_dir), "--data", str(data), "--out", str(out)], capsys)
    assert_one_line_error(code, err, "--force")
    assert out.read_text() == "keep me\n"
    assert main(["predict", str(run_dir), "--data", str(data), "--out", str(out), "--force"]) == 0
    assert out.read_text().startswith("issued_at,") and not list(tmp_path.glob(".f.csv*"))
    code, _, err = run_cli(["predict", str(run_dir), "--data", str(data), "--out", str(tmp_path / "f.json")], capsys)
    assert_one_line_error(code, err, "f.json", ".csv", ".npz")


def test_runs_without_a_model_and_unfinished_runs_are_refused(run_dir, truth, tmp_path, capsys):
    data = readings(truth, tmp_path / "new.csv")
    train = tmp_path / "20261201-000000_sig_stid_st-prune_seed0"
    train.mkdir()
    (train / "metrics.json").write_text("{}")
    code, _, err = run_cli(["predict", str(train), "--data", str(data)], capsys)
    assert_one_line_error(code, err, "deploy/model.ts", "sparsest run")
    partial = tmp_path / "x.partial"
    shutil.copytree(run_dir, partial)
    code, _, err = run_cli(["predict", str(partial), "--data", str(data)], capsys)
    assert_one_line_error(code, err, "unfinished")


def test_time_column_needed_and_old_exports(run_dir, truth, tmp_path, capsys):
    data = readings(truth, tmp_path / "new.csv")
    pd.read_csv(data).drop(columns="time").to_csv(tmp_path / "notime.csv", index=False)
    code, _, err = run_cli(["predict", str(run_dir), "--data", str(tmp_path / "notime.csv")], capsys)
    assert_one_line_error(code, err, "notime.csv", "time of day", "timestamps")
    # an export that predates predict: time facts recovered from the run's training data
    old = tmp_path / "old_run"
    shutil.copytree(run_dir, old)
    info = json.loads((old / "deploy" / "sensors.json").read_text())
    for key in ("kind", "sensor_ids", "horizon", "n_channels", "steps_per_day", "day_of_week", "step_seconds"):
        info.pop(key)
    (old / "deploy" / "sensors.json").write_text(json.dumps(info))
    code, _, err = run_cli(["predict", str(run_dir), "--data", str(data), "--out", str(tmp_path / "new.npz")], capsys)
    assert code == 0, err
    code, _, err = run_cli(["predict", str(old), "--data", str(data), "--out", str(tmp_path / "old.npz")], capsys)
    assert code == 0, err
    new, was = np.load(tmp_path / "new.npz"), np.load(tmp_path / "old.npz")
    for key in ("forecast", "timestamps", "sensor_ids"):
        np.testing.assert_array_equal(new[key], was[key])


def test_no_time_column_as_in_training(tmp_path_factory, tmp_path):
    """Trained without a time column: the day of week counts rows from the first, as in training."""
    from sparsest.predict import load_run, predict, read_readings

    run = tiny_run(tmp_path_factory.mktemp("notime"), time_column=False)
    truth = python_forecast(run)
    assert truth["info"]["step_seconds"] is None and truth["info"]["day_of_week"]
    values, ids, ts = read_readings(run.parents[1] / "sig.csv")  # the whole file: its rows are the training rows
    fc = predict(load_run(run), values, ts, ids, all_windows=True)
    a, _ = truth["rows"]
    assert fc.times is None and fc.issued_at_row[0] == WINDOW - 1 and any("first row" in n for n in fc.notes)
    np.testing.assert_allclose(fc.values[a:a + len(truth["want"]), ..., 0], truth["want"], rtol=1e-5, atol=1e-4)
    out = tmp_path / "f.csv"
    assert main(["predict", str(run), "--data", str(run.parents[1] / "sig.csv"), "--out", str(out)]) == 0
    assert list(pd.read_csv(out).columns) == ["issued_at_row", "horizon", "sensor_id", "value"]
