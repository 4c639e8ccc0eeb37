"""``sparsest plan --compress``: Dyna-Pruner on the plan's kept-sensor model, in the same run.

The compress run reads only the kept sensors (its windows carry the plan's input mask), starts
from the plan's weights, lives in ``compress/`` of the plan's directory and is resumed with the
plan, never alone; the composed savings are each against the baseline measured in the run.
Tiny grid: 12 x 12 pixels, 4 x 4 patches (9 sensors), a small SimVP.
"""

import json
import shutil

import numpy as np
import pytest
import torch

from sparsest.engine.options import build_options
from sparsest.engine.prepare import prepare
from sparsest.methods.dynapruner.config import CompressConfig

from .engine.test_resume import check_resume
from .test_cli import assert_one_line_error, run_cli

SMALL = "{hidden_size: 8, hid_t: 16, n_t: 1}"
QUICK = ["--backbone", "simvp", "--backbone-options", SMALL, "--window", "6", "--horizon", "3", "--epochs", "2",
         "--limit-train-batches", "3", "--batch-size", "8", "--bench-repeats", "1", "--bench-batch", "4",
         "--checkpoint-step", "0.5", "--checkpoint-finetune-epochs", "1", "--finetune-epochs", "2", "--max-increase", "5"]
COMPRESS = ["--compress", "--compress-options",
            "{epochs: 1, pretrain_epochs: 1, generator_warmup: 2, latency_samples: 1, n_maps: 0}"]


@pytest.fixture(scope="module")
def grid(tmp_path_factory):
    d = tmp_path_factory.mktemp("grid")
    rng = np.random.default_rng(0)
    t = np.arange(240)
    x = np.sin(t / 10)[:, None, None, None] + 0.1 * rng.standard_normal((240, 1, 12, 12))
    np.savez(d / "grid.npz", data=x.astype("float32"))
    return str(d / "grid.npz")


def test_input_scale_withholds_switched_off_readings(grid):
    """Items and whole batches carry the input mask: x scaled by it, x_mask False where it is 0."""
    prep = prepare(build_options(CompressConfig, ("cli", {"data": grid, "window": 6, "horizon": 3})))
    ds = prep.loaders["test"].dataset
    plain_item, plain_batch = ds[2], ds.__getitems__([0, 2])
    scale = torch.ones(1, 12, 12)
    scale[:, :4, :4] = 0.0
    scale[:, 8:, 8:] = 0.5
    ds.input_scale = scale
    item, batch = ds[2], ds.__getitems__([0, 2])
    for got, plain in ((item["x"], plain_item["x"]), (batch["x"][1], plain_batch["x"][1])):
        assert torch.equal(got, plain * scale) and got[:, :, :4, :4].abs().sum() == 0
        assert not torch.equal(got, plain)
    assert not item["x_mask"][:, :, :4, :4].any() and item["x_mask"][:, :, 4:, 4:].all()
    assert torch.equal(item["y"], plain_item["y"]) and torch.equal(batch["y"], plain_batch["y"])  # targets: the whole field


def test_plan_compress_reports_the_three_savings(tmp_path, capsys, grid):
    code, text, err = run_cli(["plan", "--data", grid, "--out", str(tmp_path), *QUICK, *COMPRESS], capsys)
    assert code == 0, err[-2000:]
    (run_dir,) = list(tmp_path.iterdir())
    m = json.loads((run_dir / "metrics.json").read_text())
    sub = run_dir / "compress"
    c = json.loads((sub / "metrics.json").read_text())
    k = m["composed"]
    assert k["label"] == "plan + Dyna-Pruner" and "training" not in k
    assert m["n_kept"] < m["n_sensors"] == 9  # a loose budget: sensors are switched off
    assert k["sensors"] == {"n_sensors": 9, "n_off": 9 - m["n_kept"], "fraction_off": m["sensor_sparsity"]}
    # the compress run read the kept sensors only, from the plan's options
    marker = json.loads((sub / "state" / "part_of_plan.json").read_text())
    assert marker["n_kept"] == m["n_kept"] and marker["n_sensors"] == 9
    cfg = (sub / "config.yaml").read_text()
    assert "epochs: 1" in cfg and "loss: mae" in cfg and "patch_size: 4" in cfg and "hidden_size: 8" in cfg
    # each saving against its baseline in the run: GFLOPs / latency from the compress run's dense row,
    # accuracy of all together against the plan's dense model on the same test windows
    assert [i["batch"] for i in k["inference"]] == [1, 64]
    assert k["inference"][0]["gflops_dense"] == c["gflops"]["dense"] and k["inference"][0]["gflops_pruned"] == c["gflops"]["pruned"]
    assert k["inference"][1]["latency_ms_pruned"] == c["latency_ms_b64"]["pruned"]
    assert k["all_together_test"] == c["mae"]["pruned"] and k["compress"]["test_dense_kept"] == c["mae"]["dense"]
    assert k["accuracy_cost"] == pytest.approx(c["mae"]["pruned"] / m["dense"]["mae"] - 1)
    assert m["compress"]["gflops"] == c["gflops"]
    assert "plan + Dyna-Pruner" in (run_dir / "report.md").read_text() and "all together" in text
    assert "Dyna-Pruner on the kept sensors" in (run_dir / "report.html").read_text()
    assert (sub / "report.html").is_file() and (sub / "model" / "compact_weights.pt").is_file()
    # the compress run is resumed with its plan, never alone
    partial = tmp_path / "x.partial"
    shutil.copytree(sub, partial)
    (partial / "metrics.json").unlink()
    code, _, err = run_cli(["compress", "--resume", str(partial)], capsys)
    assert_one_line_error(code, err, "part of a plan", "sparsest plan --resume")


def test_plan_compress_killed_in_the_compress_run_resumes_exactly(tmp_path, grid):
    check_resume(tmp_path, ["plan", "--data", grid, *QUICK, *COMPRESS], "compress.partial/checkpoints/dynapruner-last.ckpt",
                 [lambda m: m["composed"]["all_together_test"], lambda m: m["compress"]["mse"], lambda m: m["chosen"]["test"]])


@pytest.mark.parametrize("args, needles", [
    (["--compress-options", "{epochs: 2}"], ["--compress-options", "only with --compress"]),
    (["--compress", "--compress-options", "{batch_size: 4}"], ["--compress-options batch_size", "--batch-size"]),
    (["--compress", "--compress-options", "{sparsity: 0.5}"], ["--compress-options sparsity", "not an option"]),
    (["--compress", "--compress-options", "{data_sparsity: 1.5}"], ["--compress-options: data_sparsity", "[0, 1)"]),
    (["--compress", "--compress-options", "{tiles: [3]}"], ["--tiles"]),
    (["--compress", "--backbone", "stid"], ["--backbone", "stid"]),
])
def test_plan_compress_bad_options_are_one_line(tmp_path, capsys, args, needles):
    code, _, err = run_cli(["plan", "--backbone", "simvp", *args, "--out", str(tmp_path)], capsys)
    assert_one_line_error(code, err, *needles)
    assert not list(tmp_path.iterdir())
