"""QR placement, the default drop / regrow search (held-out read-out error) and a user's keep-set file."""

import json

import numpy as np
import pandas as pd
import pytest

from sparsest.errors import ConfigError
from sparsest.pruning.sensors import placement as pl

from ...test_cli import assert_one_line_error, run_cli, signals, write_csv

QUICK = ["--epochs", "2", "--patience", "1", "--limit-train-batches", "3"]


def low_rank(T=400, N=12, r=3, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(T, r)) @ rng.normal(size=(r, N)) + 0.05 * rng.normal(size=(T, N)))


def test_qr_keep_set_has_the_requested_size_and_depends_only_on_training_rows():
    v = low_rank()[:, :, None]  # [T, N, C]
    train = (0, 280)
    mean, std = np.array([v[:280].mean()]), np.array([v[:280].std()])
    z = pl.snapshot_matrix(v, "graph", train, mean, std)
    assert z.shape == (280, 12)
    for k in (1, 5, 11):
        sel = pl.qr_ranking(z, k)
        assert len(sel) == k and len(set(sel.tolist())) == k
    changed = v.copy()
    changed[280:] = np.random.default_rng(5).normal(size=changed[280:].shape) * 100  # val / test rows only
    z2 = pl.snapshot_matrix(changed, "graph", train, mean, std)
    np.testing.assert_array_equal(pl.qr_ranking(z, 5), pl.qr_ranking(z2, 5))
    with pytest.raises(ConfigError, match="--qr-modes"):
        pl.qr_ranking(z, 5, n_modes=50)


def test_leave_one_out_read_out_of_every_kept_sensor_matches_one_fit_each():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 9))
    x[:, 1] += x[:, 0]
    y = x + 0.2 * rng.normal(size=x.shape)
    sur = pl.ReadoutSurrogate(x, y, np.ones_like(x, bool), np.arange(300) // 100)
    kept = np.array([0, 1, 2, 4, 5, 7])
    each = [sur.reconstruct(np.delete(kept, i), kept[i:i + 1])[0] for i in range(len(kept))]
    np.testing.assert_allclose(sur.reconstruct_each_kept(kept), each, rtol=1e-10)


def test_read_out_is_scored_out_of_sample():
    # 40 noise sensors cannot read out sensor 0; an in-sample fit would look good anyway
    rng = np.random.default_rng(2)
    x = rng.normal(size=(120, 41))
    sur = pl.ReadoutSurrogate(x, x, np.ones_like(x, bool), np.arange(120) // 40, ridge=1e-6)
    keep = np.ones(41, bool)
    keep[0] = False
    held_out = sur.per_sensor(keep)[0]
    a = np.c_[x[:, 1:], np.ones(120)]
    w, *_ = np.linalg.lstsq(a, x[:, 0], rcond=None)
    in_sample = np.abs(x[:, 0] - a @ w).mean()
    assert held_out > 1.4 * in_sample and held_out > 0.9  # in-sample it would read 0.61


def test_swap_search_keeps_the_size_and_lowers_the_held_out_error():
    rng = np.random.default_rng(4)
    base = rng.normal(size=(900, 3))
    x = np.c_[base @ rng.normal(size=(3, 10)), rng.normal(size=(900, 6))]  # 10 explainable, 6 noise sensors
    y = x + 0.05 * rng.normal(size=x.shape)
    sur = pl.ReadoutSurrogate(x, y, np.ones_like(x, bool), np.arange(900) // 150)
    start = np.zeros(16, bool)
    start[:8] = True  # keeps explainable sensors, switches off every noise sensor: a bad start
    keep, hist = pl.swap_search(start, sur, candidates=4, max_swaps=20)
    assert keep.sum() == 8 and len(hist) > 1
    assert sur.total(keep) < sur.total(start)
    assert keep[10:].sum() >= 4  # the unexplainable sensors come back


def test_grid_snapshots_make_one_column_per_patch():
    v = np.arange(2 * 1 * 5 * 7, dtype=float).reshape(2, 1, 5, 7)  # [T, C, H, W]
    from sparsest.pruning.sensors.layout import SensorLayout

    lay = SensorLayout("grid", grid_shape=(5, 7), patch_size=2)
    z = pl.snapshot_matrix(v, "grid", (0, 2), np.zeros(1), np.ones(1), lay.pixel_to_sensor.numpy())
    assert z.shape == (2 * 4, 12)  # (t, offset) rows, 3 x 4 patches
    assert set(z[:4, 0]) == {0.0, 1.0, 7.0, 8.0}  # patch r0c0 of frame 0
    assert set(z[:4, 11]) == {34.0}  # the 1 x 1 corner patch repeats its pixel


def test_keep_set_file_formats(tmp_path):
    ids = [f"s{i}" for i in range(6)]
    (tmp_path / "a.txt").write_text("# mine\ns1\n\ns4\n")
    np.testing.assert_array_equal(pl.read_keep_set(str(tmp_path / "a.txt"), ids), [0, 1, 0, 0, 1, 0])
    pd.DataFrame({"sensor_id": ids, "kept": [1, 1, 0, 0, 0, 1]}).to_csv(tmp_path / "sensors.csv", index=False)
    np.testing.assert_array_equal(pl.read_keep_set(str(tmp_path / "sensors.csv"), ids), [1, 1, 0, 0, 0, 1])
    (tmp_path / "all.txt").write_text("\n".join(ids))
    with pytest.raises(ConfigError, match="keeps all 6"):
        pl.read_keep_set(str(tmp_path / "all.txt"), ids)


@pytest.mark.parametrize("content,needle", [("s1\nnope\n", "unknown sensor ids 'nope'"),
                                            ("s1\ns2\ns1\n", "duplicate sensor ids 's1'"),
                                            ("# nothing\n", "no sensor ids")])
def test_bad_keep_set_is_a_one_line_error(tmp_path, capsys, content, needle):
    write_csv(tmp_path / "sig.csv", signals(T=400))
    (tmp_path / "keep.txt").write_text(content)
    code, _, err = run_cli(["run", "--data", str(tmp_path / "sig.csv"), "--keep-set", str(tmp_path / "keep.txt"),
                            "--out", str(tmp_path / "runs"), *QUICK], capsys)
    assert_one_line_error(code, err, "--keep-set", needle)
    assert not list((tmp_path / "runs").glob("*/checkpoints/dense.ckpt"))  # refused before any training


@pytest.mark.parametrize("args,needle", [(["--scheme", "qr", "--rounds", "3"], "--rounds"),
                                         (["--scheme", "dst", "--qr-modes", "3"], "--qr-modes"),
                                         (["--scheme", "random", "--max-swaps", "3"], "--max-swaps"),
                                         (["--scheme", "keep-set"], "--keep-set FILE"),
                                         (["--keep-set", "k.txt", "--sensor-sparsity", "0.5"], "--sensor-sparsity"),
                                         (["--keep-set", "k.txt", "--scheme", "qr"], "--keep-set")])
def test_options_a_scheme_would_ignore_are_refused(tmp_path, capsys, args, needle):
    code, _, err = run_cli(["run", *args, "--out", str(tmp_path)], capsys)
    assert_one_line_error(code, err, needle)


@pytest.mark.parametrize("scheme", ["qr", "dynst", "keep-set"])
def test_placement_schemes_run_end_to_end_at_their_sparsity(tmp_path, capsys, scheme):
    import json

    write_csv(tmp_path / "sig.csv", signals(T=400, N=10))
    extra = ["--scheme", scheme, "--sensor-sparsity", "0.4"]
    if scheme == "keep-set":
        (tmp_path / "keep.txt").write_text("s0\ns3\ns7\n")
        extra = ["--keep-set", str(tmp_path / "keep.txt")]
    code, out, err = run_cli(["run", "--data", str(tmp_path / "sig.csv"), "--out", str(tmp_path / "runs"), *QUICK, *extra],
                             capsys)
    assert code == 0, err
    (run_dir,) = list((tmp_path / "runs").glob("*"))
    m = json.loads((run_dir / "metrics.json").read_text())
    assert m["n_kept"] == (3 if scheme == "keep-set" else 6)
    assert m["search_history"][0]["action"] == "placement"
    if scheme == "dynst":
        assert "swaps" in m["search_history"][0] and m["search_history"][0]["qr_modes"] == 6
    kept = pd.read_csv(run_dir / "sensors.csv")
    if scheme == "keep-set":
        assert kept.loc[kept["kept"] == 1, "sensor_id"].tolist() == ["s0", "s3", "s7"]


def test_cosine_fine_tuning_runs_every_epoch_and_ends_at_a_low_lr(tmp_path, capsys):
    """The default fine-tuning schedule sets the length (no early stopping, even with
    --patience 1) and decays the lr."""
    import csv

    import torch

    write_csv(tmp_path / "sig.csv", signals(T=400, N=10))
    code, _, err = run_cli(["run", "--data", str(tmp_path / "sig.csv"), "--out", str(tmp_path / "runs"), *QUICK,
                            "--scheme", "qr", "--sensor-sparsity", "0.4", "--finetune-epochs", "4", "--lr", "0.01"], capsys)
    assert code == 0, err
    (run_dir,) = list((tmp_path / "runs").glob("*"))
    rows = [r for r in csv.DictReader(open(run_dir / "logs" / "pruned" / "metrics.csv")) if r.get("val_mae")]
    assert len(rows) == 4
    state = torch.load(run_dir / "checkpoints" / "pruned.ckpt", map_location="cpu", weights_only=False)
    lr = state["optimizer_states"][0]["param_groups"][0]["lr"]
    assert lr < 0.01 * 0.5  # decayed from --lr (the kept epoch is at least the second of four)


@pytest.mark.parametrize("pick", ["best", "last"])
def test_finetune_epoch_keeps_the_best_or_the_last_epoch(tmp_path, capsys, pick):
    """--finetune-epoch: the kept weights (and the validation figure) are the best epoch's
    or the annealed last one's."""
    import csv

    import torch

    write_csv(tmp_path / "sig.csv", signals(T=400, N=10))
    code, _, err = run_cli(["run", "--data", str(tmp_path / "sig.csv"), "--out", str(tmp_path / "runs"), *QUICK,
                            "--scheme", "qr", "--sensor-sparsity", "0.4", "--finetune-epochs", "5", "--lr", "0.05",
                            "--finetune-epoch", pick], capsys)
    assert code == 0, err
    (run_dir,) = list((tmp_path / "runs").glob("*"))
    vals = [float(r["val_mae"]) for r in csv.DictReader(open(run_dir / "logs" / "pruned" / "metrics.csv")) if r.get("val_mae")]
    epoch = torch.load(run_dir / "checkpoints" / "pruned.ckpt", map_location="cpu", weights_only=False)["epoch"]
    want = len(vals) - 1 if pick == "last" else int(np.argmin(vals))
    assert epoch == want
    m = json.loads((run_dir / "metrics.json").read_text())
    assert m["pruned_val"]["mae"] == pytest.approx(vals[want], rel=1e-4)


def test_finetune_epoch_last_needs_the_cosine_schedule(tmp_path, capsys):
    code, _, err = run_cli(["run", "--finetune-epoch", "last", "--finetune-schedule", "constant", "--out", str(tmp_path)],
                           capsys)
    assert_one_line_error(code, err, "--finetune-epoch")


def test_finetune_schedule_is_checked(tmp_path, capsys):
    code, _, err = run_cli(["run", "--finetune-schedule", "linear", "--out", str(tmp_path)], capsys)
    assert_one_line_error(code, err, "finetune")


def test_patience_with_a_loaded_dense_model_and_cosine_fine_tuning_is_refused(tmp_path, capsys):
    (tmp_path / "dense.ckpt").write_text("")
    code, _, err = run_cli(["run", "--dense-checkpoint", str(tmp_path / "dense.ckpt"), "--patience", "3",
                            "--out", str(tmp_path)], capsys)
    assert_one_line_error(code, err, "--patience")
