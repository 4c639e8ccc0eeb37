"""``--ema``: validation, the best-epoch choice and the checkpoints use an exponential moving
average of the weights (Lightning's EMAWeightAveraging) with a half-life in epochs; the raw
weights go on training, and a killed run resumes with both exactly."""

import json

import pytest
import torch

from sparsest.engine.fit import weight_averaging

from .test_resume import check_resume, cli

QUICK = ["--data", "ghcnd-us", "--epochs", "3", "--limit-train-batches", "4", "--batch-size", "16"]


def test_half_life_in_epochs():
    loader = list(range(8))  # 8 steps per epoch
    assert weight_averaging(0.0, loader) is None
    for half_life, limit, steps in [(2.0, 1.0, 8), (1.0, 0.5, 4), (3.0, 3, 3), (1.0, 100, 8)]:
        cb = weight_averaging(half_life, loader, limit)
        assert cb.decay ** (half_life * steps) == pytest.approx(0.5)
        # what the callback applies per step: decay x average + (1 - decay) x current
        assert float(cb._kwargs["avg_fn"](torch.tensor(1.0), torch.tensor(0.0), 1)) == pytest.approx(cb.decay)


def _run(tmp_path, name, *extra):
    r = cli("train", *QUICK, *extra, "--out", str(tmp_path / name))
    assert r.returncode == 0, r.stderr[-2000:]
    (d,) = list((tmp_path / name).iterdir())
    return json.loads((d / "metrics.json").read_text()), torch.load(d / "checkpoints" / "train.ckpt", map_location="cpu",
                                                                      weights_only=False)


def test_validation_and_checkpoint_hold_the_average(tmp_path):
    raw, raw_ck = _run(tmp_path, "raw")
    ema, ema_ck = _run(tmp_path, "ema", "--ema", "1")
    assert "current_model_state" not in raw_ck
    # the checkpoint's weights are the average, the raw ones travel beside them
    avg, cur = ema_ck["state_dict"], ema_ck["current_model_state"]
    assert avg.keys() == cur.keys()
    assert max((avg[k].float() - cur[k].float()).abs().max().item() for k in avg) > 1e-5
    # the raw weights follow the same path with or without the average (same seed, same batches) ...
    assert max((raw_ck["state_dict"][k].float() - cur[k].float()).abs().max().item() for k in cur) < 1e-4
    # ... but validation (so the best epoch and the test figure) is of the average
    assert ema["val_mae"] != pytest.approx(raw["val_mae"], rel=1e-4)
    assert ema["best_val_mae"] == pytest.approx(min(ema["val_mae"]))
    assert ema["test"]["mae"] != pytest.approx(raw["test"]["mae"], rel=1e-5)


def test_ema_option_is_checked(capsys):
    r = cli("train", "--ema", "-1")
    assert r.returncode == 2 and "--ema" in r.stderr and "Traceback" not in r.stderr


def test_train_with_ema_killed_mid_training_resumes_exactly(tmp_path):
    check_resume(tmp_path, ["train", "--ema", "1", "--epochs", "6", "--limit-train-batches", "4", "--batch-size", "16"],
                 "checkpoints/train-last.ckpt",
                 [lambda m: m["test"]["mae"], lambda m: m["best_val_mae"], lambda m: m["val_mae"]])
