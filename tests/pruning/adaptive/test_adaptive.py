"""Dyna-Pruner (sparsest.pruning.adaptive, sparsest.methods.dynapruner): STE gradients, gated ==
masked execution, thresholds that move to the target sparsity, baselines, CLI."""

import json

import pytest
import torch

from sparsest.backbones import DataSpec, create_backbone
from sparsest.cli import main
from sparsest.efficiency import count_flops
from sparsest.pruning.adaptive import (
    DynaPruner,
    flip_important,
    gates_of,
    l1_filter_prune,
    load_compact,
    match_flops_ratio,
    threshold_ste,
    topk_ste,
)

from tests.conftest import requires_shared

SPEC = DataSpec(kind="grid", window=4, horizon=3, n_channels=1, n_nodes=9 * 11, height=9, width=11)
TINY = {
    "simvp": {"hidden_size": 8, "hid_t": 16, "n_t": 1},
    "tau": {"hidden_size": 8, "hid_t": 16, "n_t": 1},
    "convlstm": {"hidden_size": 8, "n_layers": 1},
}


def tiny(name="simvp", **kw):
    torch.manual_seed(0)
    return create_backbone(name, SPEC, **TINY[name])


def batch(B=3):
    g = torch.Generator().manual_seed(1)
    return torch.randn(B, SPEC.window, 1, SPEC.height, SPEC.width, generator=g)


def test_topk_ste_is_hard_forward_identity_backward():
    s = torch.rand(2, 5, 6, requires_grad=True)
    m = topk_ste(s, 9)
    assert set(m.detach().unique().tolist()) <= {0.0, 1.0}
    assert m.detach().flatten(1).sum(1).tolist() == [9.0, 9.0]
    top = s.detach().flatten(1).topk(9).indices
    assert bool((m.detach().flatten(1).gather(1, top) == 1).all())
    (m * torch.arange(30.0).view(1, 5, 6)).sum().backward()
    assert torch.equal(s.grad, torch.arange(30.0).view(1, 5, 6).expand(2, 5, 6))


def test_threshold_ste_gradients_reach_importance_and_tau():
    imp = torch.tensor([[0.1, 0.5, 0.9]], requires_grad=True)
    tau = torch.tensor(0.4, requires_grad=True)
    m = threshold_ste(imp, tau, 0.1)
    assert m.detach().tolist() == [[0.0, 1.0, 1.0]]
    m.sum().backward()
    assert (imp.grad > 0).all() and tau.grad < 0


def test_ste_gradients_flow_to_generator_and_thresholds():
    model = DynaPruner(tiny(), SPEC)
    model.calibrate_thresholds(batch(8))
    y = model(batch())
    loss = y.square().mean() + model.penalty()
    loss.backward()
    gen_grads = [p.grad for p in model.generator.parameters()]
    assert all(g is not None for g in gen_grads)
    assert sum(float(g.abs().sum()) for g in gen_grads) > 0
    assert model.tau.grad is not None and float(model.tau.grad.abs().sum()) > 0
    assert float(model.alpha.grad.abs().sum()) > 0 and float(model.beta.grad.abs().sum()) > 0
    # the data mask alone also carries gradient to the generator (task loss only, no penalty)
    model.zero_grad()
    model(batch()).square().mean().backward()
    assert float(model.generator.net[-1].weight.grad.abs().sum()) > 0


@pytest.mark.parametrize("name", sorted(TINY))
def test_gated_execution_equals_masked_execution(name):
    model = DynaPruner(tiny(name), SPEC).eval()
    model.calibrate_thresholds(batch(8))
    x = batch(3)
    with torch.no_grad():
        model.mode = "masked"
        y_masked = model(x)
        masks = model.last["filter_mask"]
        model.mode = "gated"
        y_gated = model(x)
    assert 0.05 < float(masks.mean()) < 0.95  # a real mix of active and inactive units
    assert torch.allclose(y_masked, y_gated, atol=1e-5, rtol=1e-4)
    # and masking changes the output (the test would be empty otherwise)
    with torch.no_grad():
        for g in model.gates:
            g.mask = None
        y_dense = model.backbone(x)
    assert not torch.allclose(y_dense, y_masked, atol=1e-3)


def test_gated_execution_computes_fewer_flops():
    model = DynaPruner(tiny(), SPEC).eval()
    model.calibrate_thresholds(batch(8))
    x = batch(1)
    model.mode = "masked"
    f_masked = count_flops(lambda: model(x))
    model.mode = "gated"
    f_gated = count_flops(lambda: model(x))
    frac = float(model.last["filter_mask"].mean())
    assert f_gated < 0.6 * f_masked, (f_gated, f_masked, frac)


def test_compact_model_equals_masked_when_removed_units_are_off():
    model = DynaPruner(tiny(), SPEC).eval()
    model.calibrate_thresholds(batch(8))
    x = batch(4)
    usage = model.filter_usage([{"x": x}])
    with torch.no_grad():
        y_masked = model(x)
    info = model.compact(usage, min_usage=0.01)  # removes exactly the units off for all 4 windows
    assert info["removed"] > 0
    with torch.no_grad():
        y_compact = model(x)
        model.mode = "gated"
        y_gated = model(x)
    assert torch.allclose(y_masked, y_compact, atol=1e-5, rtol=1e-4)
    assert torch.allclose(y_masked, y_gated, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("tau0", [0.0, 5.0])
def test_learned_threshold_moves_toward_target_sparsity(tau0):
    model = DynaPruner(tiny(), SPEC, model_sparsity=0.7, temperature=0.2)
    with torch.no_grad():
        model.tau.fill_(tau0 if tau0 == 0.0 else float(model.filter_importance(model.importance_map(batch(8))).max()) + 0.05)
    target = 0.3  # active fraction = 1 - s_w
    x = batch(8)

    def active():
        with torch.no_grad():
            model(x)
        return float(model.last["filter_mask"].mean())

    start, tau_start = active(), model.tau.detach().clone()
    opt = torch.optim.Adam([model.tau], lr=0.02)
    for _ in range(60):
        opt.zero_grad()
        model(x)
        model.penalty().backward()
        opt.step()
    end = active()
    assert abs(end - target) < 0.5 * abs(start - target), (start, end)
    moved = (model.tau.detach() - tau_start).mean()
    assert (moved > 0) if start > target else (moved < 0)


def test_l1_prune_and_flops_matching():
    torch.manual_seed(0)
    bb = create_backbone("simvp", SPEC, hidden_size=16, hid_t=32, n_t=1).eval()
    x = batch(1)
    dense = count_flops(lambda: bb(x))
    pruned = l1_filter_prune(bb, 0.5).eval()
    g = gates_of(pruned)[0]
    l1 = g.unit_weights().detach().abs().flatten(1).sum(1)
    assert set(g.keep.tolist()) == set(l1.topk(g.keep.numel()).indices.tolist())
    assert count_flops(lambda: pruned(x)) < dense
    ratio = match_flops_ratio(bb, x, 0.5 * dense)
    got = count_flops(lambda: l1_filter_prune(bb, ratio).eval()(x))
    assert abs(got / (0.5 * dense) - 1) < 0.1
    assert len(gates_of(bb)) == 0  # the input backbone is left untouched


def test_flip_important_switches_the_requested_fraction_of_kept_entries():
    m = torch.zeros(2, 10, 10)
    m[:, :4] = 1.0  # 40 kept per sample
    out = flip_important(m, 0.1, torch.Generator().manual_seed(0))
    assert out.flatten(1).sum(1).tolist() == [36.0, 36.0]
    assert bool((out <= m).all())


def test_random_policy_hits_the_sparsities():
    model = DynaPruner(tiny(), SPEC, data_sparsity=0.7, model_sparsity=0.7, policy="random").eval()
    torch.manual_seed(0)
    with torch.no_grad():
        model(batch(16))
    assert model.last["data_mask"].mean().item() == pytest.approx(0.3, abs=0.01)
    assert model.last["filter_mask"].mean().item() == pytest.approx(0.3, abs=0.05)


@pytest.mark.parametrize("args,needle", [
    (["--data-sparsity", "1.5"], "--data-sparsity"),
    (["--model-sparsity", "-0.1"], "--model-sparsity"),
    (["--backbone", "stid"], "--backbone"),
    (["--epochs", "0"], "--epochs"),
    (["--fill", "mean"], "--fill"),
    (["--clip-forecast", "yes"], "--clip-forecast"),
])
def test_compress_bad_options_are_one_line_errors(tmp_path, capsys, args, needle):
    code = main(["compress", "--out", str(tmp_path), *args])
    err = capsys.readouterr().err
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert code == 2 and len(lines) == 1 and needle in lines[0] and "Traceback" not in err
    assert not any(tmp_path.iterdir())  # nothing written


@requires_shared
def test_compress_graph_data_is_rejected(tmp_path, capsys):
    code = main(["compress", "--data", "metr-la-week", "--out", str(tmp_path)])
    assert code == 2 and "grid" in capsys.readouterr().err


@requires_shared
def test_compress_clip_forecast_on_needs_a_lower_bound(tmp_path, capsys):
    code = main(["compress", "--data", "era5-t2m-uk", "--clip-forecast", "on", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert code == 2 and len(lines) == 1 and "--clip-forecast" in lines[0] and "lower bound" in lines[0]
    assert not any(tmp_path.iterdir())  # refused before a run directory exists


@requires_shared
def test_compress_end_to_end_on_era5(tmp_path):
    from sparsest.methods.dynapruner.config import CompressConfig
    from sparsest.methods.dynapruner.run import compress

    cfg = CompressConfig(data="era5-t2m-uk", backbone="simvp", epochs=1, limit_train_batches=1, batch_size=8, window=4, horizon=3,
                         bench_repeats=1, latency_samples=1, n_maps=1, out=str(tmp_path), reading="tiles+channels", tiles=[2, 3],
                         backbone_options={"hidden_size": 8, "hid_t": 16, "n_t": 1})
    run_dir, m = compress(cfg)
    assert run_dir.is_dir() and not run_dir.name.endswith(".partial")
    saved = json.loads((run_dir / "metrics.json").read_text())
    for key in ("mse", "mae", "gflops", "latency_ms_b1", "latency_ms_b64"):
        assert {"dense", "pruned"} <= set(saved[key]), key
    for row in ("mp", "random"):
        assert {"mse", "mae", "gflops", "latency_ms_b1"} <= set(saved[row])
    assert saved["gflops"]["pruned"] < saved["gflops"]["dense"]
    assert saved["clip_forecast"] is False  # auto: temperature has no lower bound
    assert set(saved["robustness"]) == {"dense", "random", "dyna"}
    assert saved["robustness"]["dyna"]["mask_failure_0.1"] is not None
    assert len(list((run_dir / "importance_maps").glob("*.png"))) == 1
    compact = load_compact(run_dir / "model")  # weights + config, weights_only=True
    assert compact.gates[0].keep is not None
    # the compact model also as TorchScript, same outputs (test_adaptive_study checks the export in detail)
    assert saved["compaction"]["torchscript"]["path"] == "model/compact.ts", saved["compaction"]
    ts = torch.jit.load(str(run_dir / "model" / "compact.ts"))
    from sparsest.engine.prepare import prepare

    x = torch.stack([torch.as_tensor(prepare(cfg).loaders["test"].dataset[i]["x"]) for i in (0, 5)])
    with torch.no_grad():
        assert torch.allclose(ts(x), compact.eval()(x), atol=1e-5, rtol=1e-4)
    assert (run_dir / "model" / "compact_weights.pt").exists() and not (run_dir / "model" / "compact.pt").exists()
    # the bench suite rebuilds Tables I-II from the run; remeasure rebuilds the models from checkpoints
    out = tmp_path / "bench"
    assert main(["bench", "--suite", "dyna-pruner", "--from-runs", str(tmp_path), "--out", str(out)]) == 0
    table1 = (out / "dynapruner_table1.md").read_text()
    assert "Dyna-Pruner" in table1 and "MP" in table1 and (out / "dynapruner_table2.csv").exists()
    from sparsest.methods.dynapruner.run import remeasure

    again = remeasure(run_dir, repeats=1)
    assert again["gflops"]["pruned"] == pytest.approx(saved["gflops"]["pruned"], rel=1e-6)  # same models, same masks
    assert again["mse"] == saved["mse"] and (run_dir / "metrics_remeasured.json").exists()
