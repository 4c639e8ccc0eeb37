import json
import pickle
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from sparsest.cli import main

from .conftest import requires_shared

QUICK = ["--epochs", "2", "--patience", "1", "--limit-train-batches", "3"]
ROUNDS = ["--rounds", "2", "--round-steps", "2", "--mask-steps", "2"]  # the searches that train (dynst-paper, iterative, ...)


def write_csv(path, values):
    pd.DataFrame(values, columns=[f"s{i}" for i in range(values.shape[1])]).to_csv(path, index=False)
    return path


def signals(T=200, N=6, seed=0):
    t = np.arange(T)[:, None]
    rng = np.random.default_rng(seed)
    return (np.sin(2 * np.pi * t / 24 + np.arange(N)) + 0.1 * rng.normal(size=(T, N))).astype(np.float32)


def run_cli(args, capsys):
    code = main(args)
    out = capsys.readouterr()
    return code, out.out, out.err


def assert_one_line_error(code, err, *needles):
    assert code == 2
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for n in needles:
        assert n in lines[0], lines[0]


def test_missing_file(tmp_path, capsys):
    code, _, err = run_cli(["run", "--data", str(tmp_path / "nope.csv"), "--out", str(tmp_path)], capsys)
    assert_one_line_error(code, err, "nope.csv", "no such file")


def test_wrong_shape(tmp_path, capsys):
    np.save(tmp_path / "flat.npy", np.zeros(50, np.float32))
    code, _, err = run_cli(["run", "--data", str(tmp_path / "flat.npy"), "--out", str(tmp_path)], capsys)
    assert_one_line_error(code, err, "flat.npy")


def test_adjacency_size_mismatch(tmp_path, capsys):
    write_csv(tmp_path / "sig.csv", signals(N=5))
    np.savetxt(tmp_path / "adj.csv", np.eye(4), delimiter=",")
    code, _, err = run_cli(["run", "--data", str(tmp_path / "sig.csv"), "--adjacency", str(tmp_path / "adj.csv"), "--out", str(tmp_path)], capsys)
    assert_one_line_error(code, err, "adj.csv", "5 sensors")


def test_inf_in_signals(tmp_path, capsys):
    v = signals()
    v[3, 2] = np.inf
    np.save(tmp_path / "inf.npy", v)
    code, _, err = run_cli(["run", "--data", str(tmp_path / "inf.npy"), "--out", str(tmp_path)], capsys)
    assert_one_line_error(code, err, "inf.npy", "inf")


def test_sensor_never_observed(tmp_path, capsys):
    v = signals()
    v[:, 4] = np.nan
    write_csv(tmp_path / "dead.csv", v)
    code, _, err = run_cli(["run", "--data", str(tmp_path / "dead.csv"), "--out", str(tmp_path)], capsys)
    assert_one_line_error(code, err, "dead.csv", "s4", "no observed value")


@pytest.mark.parametrize("s", ["1.0", "-0.2", "1.5"])
def test_sparsity_out_of_range(tmp_path, capsys, s):
    code, _, err = run_cli(["run", "--sparsity", s, "--out", str(tmp_path)], capsys)
    assert_one_line_error(code, err, "--sparsity", "[0, 1)")


def test_fewer_steps_than_one_window(tmp_path, capsys):
    write_csv(tmp_path / "short.csv", signals(T=30))
    code, _, err = run_cli(["run", "--data", str(tmp_path / "short.csv"), "--out", str(tmp_path)], capsys)
    assert_one_line_error(code, err, "short.csv", "window")


class Evil:
    def __reduce__(self):
        import os

        return (os.system, ("echo pwned > /dev/null",))


def test_pickle_with_code_is_refused(tmp_path, capsys):
    write_csv(tmp_path / "sig.csv", signals(N=3))
    with open(tmp_path / "adj_mx.pkl", "wb") as f:
        pickle.dump([["s0", "s1", "s2"], {}, Evil()], f, protocol=2)
    code, _, err = run_cli(["run", "--data", str(tmp_path / "sig.csv"), "--adjacency", str(tmp_path / "adj_mx.pkl"), "--out", str(tmp_path)], capsys)
    assert_one_line_error(code, err, "adj_mx.pkl", "not allowed")


def test_bad_config_key(tmp_path, capsys):
    (tmp_path / "c.yaml").write_text("sparsity: 0.2\nmagic: 3\n")
    code, _, err = run_cli(["run", "--config", str(tmp_path / "c.yaml")], capsys)
    assert_one_line_error(code, err, "c.yaml", "magic")


def test_no_traceback_from_the_entry_point(tmp_path):
    r = subprocess.run([sys.executable, "-m", "sparsest", "run", "--data", str(tmp_path / "x.npz")], capture_output=True, text=True)
    assert r.returncode == 2 and "Traceback" not in r.stderr and "x.npz" in r.stderr


def test_nan_is_missing_and_counted_and_config_file(tmp_path, capsys):
    v = signals()
    v[5:9, 1] = np.nan
    write_csv(tmp_path / "gappy.csv", v)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"data: {tmp_path / 'gappy.csv'}\nwindow: 6\nhorizon: 3\nsparsity: 0.5\nscheme: iterative\n")
    code, out, err = run_cli(["run", "--config", str(cfg), "--out", str(tmp_path / "runs"), *QUICK, *ROUNDS], capsys)
    assert code == 0, err
    (run_dir,) = (tmp_path / "runs").iterdir()
    m = json.loads((run_dir / "metrics.json").read_text())
    assert m["missing_readings"] == 4 and m["n_kept"] == 3 and m["window"] == 6
    assert "missing readings 4" in out


def test_datasets_and_backbones_lists(capsys):
    assert main(["datasets"]) == 0
    out = capsys.readouterr().out
    assert "ghcnd-us" in out and "metr-la-week" in out and "era5-t2m-uk" in out
    assert main(["backbones"]) == 0
    out = capsys.readouterr().out
    assert "stid" in out and "simvp" in out and "persistence" in out


def _check_run_dir(run_dir, n_sensors, sparsity):
    for f in ("config.yaml", "metrics.json", "sensors.csv", "sensor_importance.png", "report.md", "checkpoints/dense.ckpt", "checkpoints/pruned.ckpt"):
        assert (run_dir / f).exists(), f
    m = json.loads((run_dir / "metrics.json").read_text())
    for key in ("dense", "pruned"):
        assert {"mae", "rmse", "mape", "mae_per_horizon"} <= set(m[key])
        assert np.isfinite(m[key]["mae"])
    assert {"persistence", "historical_average"} <= set(m["baselines"])
    assert m["n_sensors"] == n_sensors and m["n_kept"] == n_sensors - round(sparsity * n_sensors)
    table = pd.read_csv(run_dir / "sensors.csv")
    assert list(table.columns) == ["sensor_id", "latitude", "longitude", "importance", "kept"]
    assert len(table) == n_sensors and table["kept"].sum() == m["n_kept"]
    return m


def test_cli_run_builtin_default_data(tmp_path, capsys):
    code, out, err = run_cli(["run", "--out", str(tmp_path), *QUICK], capsys)
    assert code == 0, err
    (run_dir,) = tmp_path.iterdir()
    m = _check_run_dir(run_dir, 144, 0.3)
    assert m["data"] == "ghcnd-us" and m["missing_readings"] == 44
    assert "persistence" in out and "run directory" in out
    # a second run never overwrites the first
    assert main(["run", "--out", str(tmp_path), *QUICK]) == 0
    assert len(list(tmp_path.iterdir())) == 2


@requires_shared
def test_cli_run_metr_la_week(tmp_path, capsys):
    code, out, err = run_cli(["run", "--data", "metr-la-week", "--scheme", "dynst-paper", "--out", str(tmp_path), *QUICK,
                              *ROUNDS], capsys)
    assert code == 0, err
    (run_dir,) = tmp_path.iterdir()
    _check_run_dir(run_dir, 207, 0.3)
    table = pd.read_csv(run_dir / "sensors.csv")
    assert table["latitude"].between(33, 35).all()


@requires_shared
def test_cli_run_era5_grid(tmp_path, capsys):
    code, out, err = run_cli(["run", "--data", "era5-t2m-uk", "--backbone", "simvp", "--patch-size", "8", "--batch-size", "8",
                              "--backbone-options" if False else "--seed", "1", "--out", str(tmp_path), *QUICK,
                              "--limit-train-batches", "2"], capsys)
    assert code == 0, err
    (run_dir,) = tmp_path.iterdir()
    _check_run_dir(run_dir, 5 * 7, 0.3)  # ceil(33/8) x ceil(49/8) patches


def test_bench_bad_set_option(capsys):
    code, _, err = run_cli(["bench", "--set", "nonsense=3"], capsys)
    assert_one_line_error(code, err, "--set", "nonsense")
