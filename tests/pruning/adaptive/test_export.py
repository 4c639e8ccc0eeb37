"""Safe eager export of the compact Dyna-Pruner model (sparsest.pruning.adaptive.export):
``save_compact`` / ``load_compact`` round trip without ``torch.load(weights_only=False)``.

Dyna-Pruner: Zhang et al., arXiv:2606.15346."""

import json

import pytest
import torch

from sparsest.backbones import DataSpec, create_backbone
from sparsest.errors import ConfigError, DataError
from sparsest.pruning.adaptive import DynaPruner, l1_prune_gates, load_compact, save_compact

SPEC = DataSpec(kind="grid", window=4, horizon=3, n_channels=1, n_nodes=9 * 11, height=9, width=11)
OPTIONS = {"hid_t": 16, "n_t": 1}  # tiny SimVP (default spatial width)


def x_batch(B=3, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(B, SPEC.window, SPEC.n_channels, SPEC.height, SPEC.width, generator=g)


def perturb(model, seed=2):
    """Move every parameter off its initial value so a failed load cannot pass by accident."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=g))


def compact_model(**kw):
    torch.manual_seed(0)
    model = DynaPruner(create_backbone("simvp", SPEC, **OPTIONS), SPEC, **kw)
    perturb(model)
    model.calibrate_thresholds(x_batch(8, seed=3))
    usage = model.filter_usage([{"x": x_batch(4, seed=s)} for s in (4, 5)])
    model.compact(usage, 0.3)
    return model.eval()


def outputs(model, x, mode, seed=7):
    model.mode = mode
    torch.manual_seed(seed)  # the random policy draws its masks from the global RNG
    with torch.no_grad():
        y = model(x)
    model.mode = "masked"
    return y


CASES = {
    "dyna": {},
    "dyna_options": {"min_channels": 16, "gen_hidden": 8, "regions": (3, 4), "fill": "zero", "temperature": 0.1},
    "mp_only": {"data_sparsity": 0.0},
    "random": {"policy": "random"},
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_round_trip_gives_identical_outputs_in_both_modes(tmp_path, case):
    model = compact_model(**CASES[case])
    assert any(g.keep is not None and g.keep.numel() < g.n_units for g in model.gates)  # something removed
    info = save_compact(model, tmp_path / "model", "simvp", OPTIONS, SPEC)
    assert info["weights"] == "compact_weights.pt" and info["config"] == "compact_config.json"
    assert info["kept"] < info["total"]
    loaded = load_compact(tmp_path / "model")
    assert isinstance(loaded, DynaPruner) and not loaded.training and loaded.mode == "masked"
    assert loaded.gate_names == model.gate_names
    for a, b in zip(model.gates, loaded.gates):
        assert torch.equal(a.keep, b.keep)
    x = x_batch(3, seed=11)
    for mode in ("masked", "gated"):
        assert torch.equal(outputs(loaded, x, mode), outputs(model, x, mode)), mode


def test_dp_only_static_keep_sets_survive(tmp_path):
    """"DP only" + L1 keep sets (independent DP + MP): keep not derived from usage."""
    torch.manual_seed(0)
    model = DynaPruner(create_backbone("simvp", SPEC, **OPTIONS), SPEC, model_sparsity=0.0)
    perturb(model)
    l1_prune_gates(model.gates, 0.5)
    model.compact(torch.ones(sum(model.sizes)), 0.05)
    model.eval()
    save_compact(model, tmp_path, "simvp", OPTIONS, SPEC)
    loaded = load_compact(tmp_path)
    x = x_batch(2, seed=12)
    for mode in ("masked", "gated"):
        assert torch.equal(outputs(loaded, x, mode), outputs(model, x, mode)), mode


def test_files_are_weights_only_and_plain_json(tmp_path):
    model = compact_model()
    save_compact(model, tmp_path, "simvp", OPTIONS, SPEC)
    state = torch.load(tmp_path / "compact_weights.pt", weights_only=True)
    assert isinstance(state, dict) and all(isinstance(v, torch.Tensor) for v in state.values())
    assert state.keys() == model.state_dict().keys()
    cfg = json.loads((tmp_path / "compact_config.json").read_text())
    assert cfg["backbone"] == {"name": "simvp", "options": OPTIONS}
    assert cfg["spec"]["adjacency"] is None and DataSpec(**cfg["spec"]) == SPEC
    assert cfg["compaction"]["gates"] == model.gate_names
    assert cfg["compaction"]["keep"][model.gate_names[0]] == model.gates[0].keep.tolist()


def test_load_leaves_global_rng_alone(tmp_path):
    save_compact(compact_model(), tmp_path, "simvp", OPTIONS, SPEC)
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    load_compact(tmp_path)
    assert torch.equal(torch.rand(3), expected)


def test_missing_or_corrupt_files_raise_one_line_errors(tmp_path):
    with pytest.raises(ConfigError, match="compact_config.json: missing"):
        load_compact(tmp_path)
    model = compact_model()
    save_compact(model, tmp_path, "simvp", OPTIONS, SPEC)
    cfg_path, w_path = tmp_path / "compact_config.json", tmp_path / "compact_weights.pt"
    good = cfg_path.read_text()

    def fails(exc, pattern):
        with pytest.raises(exc, match=pattern) as e:
            load_compact(tmp_path)
        assert "\n" not in str(e.value)

    cfg_path.write_text(good[:40])
    fails(ConfigError, "compact_config.json: not a readable JSON file")
    cfg_path.write_text(json.dumps({"format": "something else"}))
    fails(ConfigError, "compact_config.json: not a Dyna-Pruner compact config")
    cfg = json.loads(good)
    del cfg["dynapruner"]["policy"]
    cfg_path.write_text(json.dumps(cfg))
    fails(ConfigError, "compact_config.json: missing field 'policy'")
    cfg = json.loads(good)
    cfg["backbone"]["name"] = "no_such_backbone"
    cfg_path.write_text(json.dumps(cfg))
    fails(ConfigError, "compact_config.json")
    cfg = json.loads(good)
    cfg["backbone"]["options"]["hid_t"] = 32  # other gate sizes: does not fit the weights
    cfg_path.write_text(json.dumps(cfg))
    fails(ConfigError, "compact_config.json: gate sizes")
    cfg = json.loads(good)
    first = model.gate_names[0]
    cfg["compaction"]["keep"][first] = [0, 999]
    cfg_path.write_text(json.dumps(cfg))
    fails(ConfigError, r"compaction.keep\[")
    cfg["compaction"]["keep"][first] = list(range(model.sizes[0]))  # valid, but not what the weights hold
    cfg_path.write_text(json.dumps(cfg))
    fails(DataError, "compact_weights.pt")

    cfg_path.write_text(good)
    w_path.write_bytes(b"not a torch file")
    fails(DataError, r"compact_weights.pt: cannot be read with torch.load\(weights_only=True\)")
    torch.save(model, w_path)  # a pickled module is refused, never unpickled
    fails(DataError, r"compact_weights.pt: cannot be read with torch.load\(weights_only=True\)")
    w_path.unlink()
    fails(DataError, "compact_weights.pt: missing")


def test_unserialisable_options_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="backbone_options"):
        save_compact(compact_model(), tmp_path, "simvp", {"act": torch.nn.GELU}, SPEC)
    assert not (tmp_path / "compact_weights.pt").exists()
