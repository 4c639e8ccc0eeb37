"""Resume: a run killed with SIGKILL in the middle of a phase, then ``--resume``-d, ends with
the same accuracy figures as an uninterrupted run with the same seed; killing a run never
touches another run's directory."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def cli(*args, **kw):
    return subprocess.run([sys.executable, "-m", "sparsest", *args], env=ENV, capture_output=True, text=True, **kw)


def kill_when(args, out: Path, marker: str, timeout=300):
    """Start ``sparsest ARGS --out OUT``, SIGKILL it once ``marker`` exists in its run directory."""
    p = subprocess.Popen([sys.executable, "-m", "sparsest", *args, "--out", str(out)], env=ENV,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    t0 = time.time()
    while time.time() - t0 < timeout:
        if list(out.glob(f"*.partial/{marker}")) or p.poll() is not None:
            break
        time.sleep(0.02)
    p.send_signal(signal.SIGKILL)
    p.wait()
    (run,) = list(out.glob("*.partial"))
    return run


def metrics(out: Path) -> dict:
    (m,) = [p for p in out.glob("*/metrics.json") if not p.parent.name.endswith(".partial")]
    return json.loads(m.read_text())


def check_resume(tmp_path, args, marker, figures):
    full = cli(*args, "--out", str(tmp_path / "full"))
    assert full.returncode == 0, full.stderr[-2000:]
    bystander = next((tmp_path / "full").iterdir())
    before = {p: p.stat().st_mtime_ns for p in bystander.rglob("*")}
    run = kill_when(args, tmp_path / "full", marker)  # same --out as the finished run
    assert run.name.endswith(".partial")
    assert json.loads((run / "status.json").read_text())["state"] == "running"  # killed: could not say more
    r = cli(args[0], "--resume", str(run))
    assert r.returncode == 0, r.stderr[-2000:]
    assert {p: p.stat().st_mtime_ns for p in bystander.rglob("*")} == before  # the other run is untouched
    done = [p for p in (tmp_path / "full").iterdir() if p != bystander]
    assert len(done) == 1 and not done[0].name.endswith(".partial")
    a = json.loads((bystander / "metrics.json").read_text())
    b = json.loads((done[0] / "metrics.json").read_text())
    assert b["resumed"] is True
    for f in figures:
        assert f(a) == f(b), f
    # a finished run directory is never modified by a resume
    again = cli(args[0], "--resume", str(done[0]))
    assert again.returncode == 2 and "has finished" in again.stderr
    assert not list(done[0].glob("checkpoints/*-last.ckpt"))


QUICK_RUN = ["--scheme", "dynst-paper", "--epochs", "3", "--limit-train-batches", "4", "--rounds", "3", "--round-steps", "6", "--mask-steps", "4",
             "--bench-repeats", "1", "--bench-batch", "8", "--batch-size", "8"]


def test_run_killed_in_the_sensor_search_resumes_exactly(tmp_path):
    check_resume(tmp_path, ["run", *QUICK_RUN], "checkpoints/search-last.ckpt",
                 [lambda m: m["dense"]["mae"], lambda m: m["pruned"]["mae"], lambda m: m["pruned_kept_only"]["rmse"],
                  lambda m: m["search_history"]])


def test_train_killed_mid_training_resumes_exactly(tmp_path):
    check_resume(tmp_path, ["train", "--sample-pruning", "st-prune", "--epochs", "6", "--limit-train-batches", "4",
                            "--batch-size", "16"], "checkpoints/train-last.ckpt",
                 [lambda m: m["test"]["mae"], lambda m: m["best_val_mae"], lambda m: m["val_mae"], lambda m: m["kept_per_epoch"],
                  lambda m: m["samples_seen"]])


def test_compress_killed_in_the_dynapruner_row_resumes_exactly(tmp_path):
    rng = np.random.default_rng(0)
    t = np.arange(240)
    x = np.sin(t / 10)[:, None, None, None] + 0.1 * rng.standard_normal((240, 1, 12, 12))
    np.savez(tmp_path / "grid.npz", data=x.astype("float32"))
    check_resume(tmp_path, ["compress", "--data", str(tmp_path / "grid.npz"), "--epochs", "3", "--limit-train-batches", "3",
                            "--bench-repeats", "1", "--latency-samples", "1", "--n-maps", "0",
                            "--backbone-options", "{hidden_size: 8, hid_t: 16, n_t: 1}"], "checkpoints/dynapruner-last.ckpt",
                 [lambda m: m["mse"], lambda m: m["mae"], lambda m: m["mp"]["mse"], lambda m: m["random"]["mse"],
                  lambda m: m["robustness"]])


def test_resume_takes_no_other_options(tmp_path):
    r = cli("train", "--resume", str(tmp_path), "--epochs", "3")
    assert r.returncode == 2 and "--resume: takes no other options" in r.stderr
    r = cli("run", "--resume", str(tmp_path / "nope"))
    assert r.returncode == 2 and "no such run directory" in r.stderr and "Traceback" not in r.stderr


def test_ctrl_c_says_so_and_the_run_resumes(tmp_path):
    out = tmp_path / "runs"
    # enough epochs that the run cannot finish before the signal (it is stopped at its first checkpoint)
    # preexec: a library imported by an earlier test (in this pytest process) may leave SIGINT ignored, and an ignored
    # signal stays ignored across exec; the child gets the default, as a shell gives it
    p = subprocess.Popen([sys.executable, "-m", "sparsest", "train", "--epochs", "500", "--limit-train-batches", "3",
                          "--out", str(out)], env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    t0 = time.time()
    while not list(out.glob("*.partial/checkpoints/train-last.ckpt")) and time.time() - t0 < 120 and p.poll() is None:
        time.sleep(0.02)
    assert p.poll() is None, f"the run ended before it could be interrupted: {p.communicate()[1][-500:]}"
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 130 and "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith("sparsest: interrupted")
    (run,) = list(out.glob("*.partial"))
    assert json.loads((run / "status.json").read_text())["state"] == "interrupted"
