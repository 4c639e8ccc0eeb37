"""Dyna-Pruner Tables III-IV (sparsest.compress_study), the s_w = 0 / s_d = 0 halves of
DynaPruner, the static L1 gates of the "independent" row and the TorchScript export."""

import io
import json

import pytest
import torch

from sparsest.cli import main
from sparsest.efficiency import count_flops
from sparsest.errors import ConfigError
from sparsest.pruning.adaptive import DynaPruner, l1_prune_gates, load_compact, to_torchscript

from tests.conftest import requires_shared
from .test_adaptive import SPEC, TINY, batch, tiny


# ---------------------------------------------------------------- s_w = 0 / s_d = 0

def test_model_sparsity_zero_is_data_mask_only():
    model = DynaPruner(tiny(), SPEC, data_sparsity=0.7, model_sparsity=0.0)
    assert not hasattr(model, "tau") and not hasattr(model, "alpha")  # no gating parameters
    model.calibrate_thresholds(batch(8))  # a no-op, not an error
    x = batch(3)
    y = model(x)
    assert bool((model.last["filter_mask"] == 1).all()) and model.last["importance"] is None
    assert model.last["data_mask"].mean().item() == pytest.approx(0.3, abs=0.02)
    # the loss: task + lambda_d * mean(S) only; the generator learns through the data mask
    assert float(model.penalty().detach()) == pytest.approx(model.lambda_d * float(model.last["S"].detach().mean()), rel=1e-6)
    (y.square().mean() + model.penalty()).backward()
    assert float(model.generator.net[-1].weight.grad.abs().sum()) > 0
    # gated execution = masked execution = the unmodified backbone on the masked input
    model.eval()
    with torch.no_grad():
        y_masked = model(x)
        model.mode = "gated"
        y_gated = model(x)
    assert torch.allclose(y_masked, y_gated, atol=1e-6)
    dense = tiny().eval()
    assert count_flops(lambda: model(x[:1])) >= count_flops(lambda: dense(x[:1]))  # no compute saved


def test_data_sparsity_zero_is_channel_gating_only():
    model = DynaPruner(tiny(), SPEC, data_sparsity=0.0, model_sparsity=0.7)
    model.calibrate_thresholds(batch(8))
    x = batch(3)
    y = model(x)
    assert bool((model.last["data_mask"] == 1).all()) and not model.last["data_mask"].requires_grad
    frac = float(model.last["filter_mask"].detach().mean())
    assert 0.05 < frac < 0.95
    # no lambda_d term: the penalty does not depend on mean(S)
    p = float(model.penalty().detach())
    model.lambda_d = 123.0
    assert float(model.penalty().detach()) == pytest.approx(p)
    (y.square().mean() + model.penalty()).backward()
    assert float(model.tau.grad.abs().sum()) > 0 and float(model.generator.net[-1].weight.grad.abs().sum()) > 0
    model.eval()
    with torch.no_grad():
        y_masked = model(x)
        masks = model.last["filter_mask"]
        model.mode = "gated"
        y_gated = model(x)
    assert torch.allclose(y_masked, y_gated, atol=1e-5, rtol=1e-4)
    # the backbone saw x itself: the same masks applied by hand on the raw input give the same output
    with torch.no_grad():
        for g, m in zip(model.gates, masks.split(model.sizes, dim=1)):
            g.mask = m
        y_hand = model.backbone(x)
    assert torch.allclose(y_masked, y_hand, atol=1e-6)
    dense = tiny().eval()
    assert count_flops(lambda: model(x[:1])) < 0.7 * count_flops(lambda: dense(x[:1]))


@pytest.mark.parametrize("sd,sw", [(0.0, 0.0), (1.0, 0.5), (0.5, -0.1)])
def test_invalid_sparsities_raise(sd, sw):
    with pytest.raises(ValueError, match="sparsity"):
        DynaPruner(tiny(), SPEC, data_sparsity=sd, model_sparsity=sw)


def test_compress_refuses_both_sparsities_zero(tmp_path, capsys):
    code = main(["compress", "--data-sparsity", "0", "--model-sparsity", "0", "--out", str(tmp_path)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "--model-sparsity" in err[0] and "both 0" in err[0]
    assert not any(tmp_path.iterdir())


def test_independent_row_static_l1_channels_on_a_data_mask_only_wrapper():
    model = DynaPruner(tiny(), SPEC, data_sparsity=0.7, model_sparsity=0.0).eval()
    kept = l1_prune_gates(model.gates, 0.7)
    for g, k in zip(model.gates, kept):
        l1 = g.unit_weights().detach().abs().flatten(1).sum(1)
        assert set(g.keep.tolist()) == set(l1.topk(k).indices.tolist())
    x = batch(1)
    dense = tiny().eval()
    model.mode = "gated"
    assert count_flops(lambda: model(x)) < 0.6 * count_flops(lambda: dense(x))
    info = model.compact(torch.ones(sum(model.sizes)))  # no gating: nothing more removed, the L1 cut reported
    assert info["removed"] == sum(model.sizes) - sum(kept)
    with pytest.raises(ValueError, match="ratio"):
        l1_prune_gates(model.gates, 1.0)


# ---------------------------------------------------------------- TorchScript

@pytest.mark.parametrize("name", sorted(TINY))
def test_torchscript_compact_model_equals_eager(name):
    model = DynaPruner(tiny(name), SPEC).eval()
    model.calibrate_thresholds(batch(8))
    model.compact(model.filter_usage([{"x": batch(4)}]), min_usage=0.01)
    x = batch(3)
    with torch.no_grad():
        model(x)  # fill the eager caches: the export must not freeze them
    scripted, info = to_torchscript(model, x)
    assert scripted is not None, info
    assert info["method"] in ("script", "trace") and info["max_abs_diff"] <= 1e-5
    buf = io.BytesIO()
    torch.jit.save(scripted, buf)
    buf.seek(0)
    loaded = torch.jit.load(buf)
    with torch.no_grad():
        for xb in (x, batch(1), torch.randn(2, *x.shape[1:])):  # masks differ per input: the trace must follow them
            assert torch.allclose(loaded(xb), model(xb, None, None), atol=1e-5, rtol=1e-4)


def test_torchscript_failure_is_reported_not_raised():
    import numpy as np

    class Bad(torch.nn.Module):
        def forward(self, x, tod=None, dow=None):
            # numpy: not scriptable; traced, the example's mean is frozen into a constant
            return x + torch.from_numpy(np.full(x.shape[1:], float(x.mean()), dtype=np.float32))

    scripted, info = to_torchscript(Bad(), torch.ones(1, 2))
    assert scripted is None and "differs" in info["error"] and "script_error" in info


# ---------------------------------------------------------------- tables

def test_plan_rows_dedupes_the_full_method_and_checks_values():
    from sparsest.methods.dynapruner.study import SENSITIVITY, plan_rows

    rows = plan_rows((3, 4), SENSITIVITY, 0.7, 0.7)
    assert rows[0] == ("dense", 0.0, 0.0)
    assert len(rows) == 1 + 5 + 3  # (0.7, 0.7) is both a Table III row and Table IV's full method
    assert ("dyna", 0.7, 0.0) in rows and ("dyna", 0.0, 0.7) in rows and ("independent", 0.7, 0.7) in rows
    assert len(plan_rows((4,), SENSITIVITY, 0.7, 0.7)) == 5
    for bad in (dict(tables=(5,)), dict(tables=()), dict(tables=(3,), settings=[(0.0, 0.0)]), dict(tables=(4,), sw=0.0)):
        with pytest.raises(ConfigError):
            plan_rows(bad["tables"], bad.get("settings", SENSITIVITY), 0.7, bad.get("sw", 0.7))


def _fake_study(tables=(3, 4), seed=0):
    """metrics.json of a study with made-up numbers (for the table code only)."""
    from sparsest.methods.dynapruner.study import SENSITIVITY, row_key

    rows = {"dense": {"mse": 4.0, "gflops": 0.4, "latency_ms_b1": 10.0}}
    for i, (sd, sw) in enumerate(SENSITIVITY):
        rows[row_key("dyna", sd, sw)] = {"mse": 4.0 + i, "gflops": 0.4 * (1 - sw), "latency_ms_b1": 10.0 - 2 * sw}
    rows[row_key("dyna", 0.7, 0.0)] = {"mse": 4.2, "gflops": 0.41, "latency_ms_b1": 10.5}
    rows[row_key("dyna", 0.0, 0.7)] = {"mse": 5.0, "gflops": 0.12, "latency_ms_b1": 8.0}
    rows[row_key("independent", 0.7, 0.7)] = {"mse": 6.0, "gflops": 0.125, "latency_ms_b1": 7.0}
    return {"method": "dynapruner-study", "tables": list(tables), "data": "era5-t2m-uk", "backbone": "simvp", "seed": seed,
            "default": {"data_sparsity": 0.7, "model_sparsity": 0.7}, "settings": [list(s) for s in SENSITIVITY],
            "epochs": 1, "pretrain_epochs": 1, "rows": rows}


def test_study_tables_from_metrics():
    from sparsest.bench.dynapruner import study_tables

    t3, t4 = study_tables([(_fake_study(), None)])
    assert len(t3) == 6 and list(t3["row"])[0] == "dense"
    r = t3[(t3["s_d"] == 0.9) & (t3["s_w"] == 0.7)].iloc[0]
    assert r["mse"] == 7.0 and r["mse_x_dense"] == pytest.approx(7 / 4) and r["gflops_x_dense"] == pytest.approx(0.3)
    assert r["latency_x_dense"] == pytest.approx(8.6 / 10)
    assert (t3["row"] == "Dyna-Pruner (default)").sum() == 1
    assert list(t4["row"]) == ["Dense", "DP only", "MP only", "DP + MP, independent (L1 channels)", "Dyna-Pruner (DP + MP + synergy)"]
    assert list(t4["mse"]) == [4.0, 4.2, 5.0, 6.0, 6.0] and list(t4["synergy"]) == ["", "", "", "", "✓"]
    assert list(t4["s_w"]) == [0.0, 0.0, 0.7, 0.7, 0.7] and list(t4["DP"]) == ["", "✓", "", "✓", "✓"]
    t3, t4 = study_tables([(_fake_study(tables=(4,)), None)])
    assert t3.empty and len(t4) == 5


def test_bench_from_runs_writes_tables_3_and_4(tmp_path, capsys):
    runs = tmp_path / "runs"
    for seed in (0, 1):
        d = runs / f"study{seed}"
        d.mkdir(parents=True)
        (d / "metrics.json").write_text(json.dumps(_fake_study(seed=seed)))
    (runs / "x.partial").mkdir()  # unfinished: skipped
    out = tmp_path / "tables"
    assert main(["bench", "--suite", "dyna-pruner", "--from-runs", str(runs), "--out", str(out)]) == 0
    for t in (3, 4):
        assert (out / f"dynapruner_table{t}.md").exists() and (out / f"dynapruner_table{t}.csv").exists()
    assert not (out / "dynapruner_table1.md").exists()  # no compress run: Tables I-II not made
    md = (out / "dynapruner_table4.md").read_text()
    assert "Table IV" in md and "independent" in md and md.count("| era5-t2m-uk | simvp |") == 10
    capsys.readouterr()
    # asking for a table the runs cannot give, or --tables on another suite: one-line errors
    assert main(["bench", "--suite", "dyna-pruner", "--from-runs", str(runs), "--tables", "1", "--out", str(out)]) == 2
    assert "--tables 1 2" in capsys.readouterr().err
    assert main(["bench", "--suite", "dyna-pruner", "--from-runs", str(runs), "--tables", "7", "--out", str(out)]) == 2
    assert main(["bench", "--suite", "st-prune", "--tables", "3", "--out", str(out)]) == 2
    assert "only for --suite dyna-pruner" in capsys.readouterr().err


@requires_shared
def test_study_end_to_end_on_era5(tmp_path):
    from sparsest.methods.dynapruner.config import CompressConfig
    from sparsest.methods.dynapruner.study import run_study

    cfg = CompressConfig(data="era5-t2m-uk", backbone="simvp", epochs=1, limit_train_batches=1, batch_size=8, window=4, horizon=3,
                         bench_repeats=1, latency_samples=1, out=str(tmp_path / "runs"),
                         backbone_options={"hidden_size": 8, "hid_t": 16, "n_t": 1})
    run_dir, _ = run_study(cfg, tables=(3, 4), settings=((0.5, 0.5), (0.7, 0.7)))
    assert run_dir.is_dir() and not run_dir.name.endswith(".partial")
    saved = json.loads((run_dir / "metrics.json").read_text())
    assert set(saved["rows"]) == {"dense", "dyna_sd0.5_sw0.5", "dyna_sd0.7_sw0.7", "dyna_sd0.7_sw0", "dyna_sd0_sw0.7",
                                  "independent_sd0.7_l1r0.7"}
    rows = saved["rows"]
    for r in rows.values():
        assert {"mse", "mae", "gflops", "latency_ms_b1", "units_active", "pixels_kept"} <= set(r)
    assert rows["dyna_sd0.7_sw0"]["gflops"] >= rows["dense"]["gflops"]  # DP only: the data mask saves nothing here
    assert rows["dyna_sd0.7_sw0"]["units_active"] == 1.0 and rows["dyna_sd0_sw0.7"]["pixels_kept"] == 1.0
    assert rows["independent_sd0.7_l1r0.7"]["units_active"] < 0.4
    for k in ("dyna_sd0.7_sw0.7", "dyna_sd0_sw0.7", "independent_sd0.7_l1r0.7"):
        assert rows[k]["gflops"] < 0.6 * rows["dense"]["gflops"], k
    out = tmp_path / "tables"
    assert main(["bench", "--suite", "dyna-pruner", "--from-runs", str(tmp_path / "runs"), "--tables", "3", "4", "--out", str(out)]) == 0
    assert len((out / "dynapruner_table3.csv").read_text().strip().splitlines()) == 1 + 3  # header, dense, 2 settings


@requires_shared
def test_compress_without_gating_writes_torchscript(tmp_path):
    """compress() at s_w = 0 (DP only) runs end to end; the compact model is saved as TorchScript too."""
    from sparsest.methods.dynapruner.config import CompressConfig
    from sparsest.methods.dynapruner.run import compress

    cfg = CompressConfig(data="era5-t2m-uk", backbone="simvp", model_sparsity=0.0, epochs=1, limit_train_batches=1, batch_size=8,
                         window=4, horizon=3, bench_repeats=1, latency_samples=2, n_maps=0, baselines=False, out=str(tmp_path),
                         backbone_options={"hidden_size": 8, "hid_t": 16, "n_t": 1})
    run_dir, m = compress(cfg)
    assert m["model_sparsity_measured"]["mean"] == 0.0 and m["compaction"]["removed"] == 0
    assert m["compaction"]["torchscript"]["path"] == "model/compact.ts", m["compaction"]
    from sparsest.methods.dynapruner.measure import samples as _samples
    from sparsest.engine.prepare import prepare

    compact = load_compact(run_dir / "model")  # weights + config, weights_only=True.eval()
    ts = torch.jit.load(str(run_dir / "model" / "compact.ts"))
    x = torch.cat([s["x"] for s in _samples(prepare(cfg).loaders["test"].dataset, 2)])
    with torch.no_grad():
        assert torch.allclose(ts(x), compact(x, None, None), atol=1e-5, rtol=1e-4)
