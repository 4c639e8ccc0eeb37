"""Graph WaveNet, STGCN and STAEformer: forward contract and the kept-subgraph path."""

import numpy as np
import pytest
import torch

import sparsest.backbones.graph.gwn  # noqa: F401  (registers "gwn")
import sparsest.backbones.graph.staeformer  # noqa: F401  (registers "staeformer")
import sparsest.backbones.graph.stgcn  # noqa: F401  (registers "stgcn")
from sparsest.backbones import DataSpec, check_backbone_options, create_backbone
from sparsest.backbones.graph.gwn import GraphWaveNet
from sparsest.backbones.graph.staeformer import STAEformer
from sparsest.errors import ConfigError

N, T, S, C, B = 8, 6, 4, 2, 3
NAMES = ["gwn", "stgcn", "staeformer"]
ZERO_DROPPED = {"gwn", "stgcn"}  # these leave switched-off rows to KeptToAllPropagation
KEPT = torch.tensor([0, 2, 3, 6])
DROPPED = torch.tensor([1, 4, 5, 7])


def _adjacency(n=N, seed=0):
    rng = np.random.default_rng(seed)
    a = rng.random((n, n)) * (rng.random((n, n)) < 0.5)
    return np.maximum(a, a.T).astype(np.float32)


def _spec(adjacency, n=N, window=T, steps_per_day=24):
    return DataSpec("graph", window=window, horizon=S, n_channels=C, n_nodes=n, steps_per_day=steps_per_day,
                    adjacency=adjacency)


def _inputs(seed=0, window=T):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(B, window, N, C, generator=g)
    tod = torch.randint(0, 24, (B, window + S), generator=g)
    dow = torch.randint(0, 7, (B, window + S), generator=g)
    return x, tod, dow


def _model(name, adjacency, **kw):
    torch.manual_seed(0)
    return create_backbone(name, _spec(adjacency), **kw)


ADJ = pytest.mark.parametrize("with_adj", [True, False], ids=["adj", "no-adj"])
# (backbone, options): both presets of gwn and staeformer (reference: the default); stgcn has none
CASES = pytest.mark.parametrize("name, kw", [("gwn", {}), ("gwn", {"preset": "small"}), ("stgcn", {}), ("staeformer", {}),
                                             ("staeformer", {"preset": "small"})], ids=lambda v: v.get("preset", "default")
                                if isinstance(v, dict) else v)


@CASES
@ADJ
def test_forward_backward(name, kw, with_adj):
    model = _model(name, _adjacency() if with_adj else None, **kw)
    assert model.supports_subset is True
    x, tod, dow = _inputs()
    y = model(x, tod, dow)
    assert y.shape == (B, S, N, C) and torch.isfinite(y).all()
    y.square().mean().backward()
    grads = {n: p.grad for n, p in model.named_parameters()}
    assert all(g is not None for g in grads.values()), [n for n, g in grads.items() if g is None]
    assert model(x).shape == (B, S, N, C)  # tod / dow optional


@CASES
@ADJ
def test_subset_with_all_kept_equals_forward(name, kw, with_adj):
    model = _model(name, _adjacency() if with_adj else None, **kw).eval()
    x, tod, dow = _inputs()
    with torch.no_grad():
        torch.testing.assert_close(model.forward_subset(x, torch.arange(N), tod, dow), model(x, tod, dow))


def _sub_model(name, model, adjacency, **kw):
    """A K-node model with the full model's weights restricted to the kept nodes."""
    sub_adj = None if adjacency is None else adjacency[KEPT.numpy()][:, KEPT.numpy()]
    sub = create_backbone(name, _spec(sub_adj, n=len(KEPT)), **kw)
    state = {}
    for k, v in model.state_dict().items():
        if k in ("node_emb1", "node_emb2"):
            v = v[KEPT]
        elif k == "adaptive_emb":
            v = v[:, KEPT]
        state[k] = v
    sub.load_state_dict(state)
    return sub.eval()


@CASES
@ADJ
def test_subset_is_the_induced_subgraph_model(name, kw, with_adj):
    adjacency = _adjacency() if with_adj else None
    model = _model(name, adjacency, **kw).eval()
    x, tod, dow = _inputs()
    x_other = x.clone()
    x_other[:, :, DROPPED] = 100.0 * torch.randn(B, T, len(DROPPED), C)
    with torch.no_grad():
        y = model.forward_subset(x[:, :, KEPT], KEPT, tod, dow)
        y_other = model.forward_subset(x_other[:, :, KEPT], KEPT, tod, dow)
        y_sub = _sub_model(name, model, adjacency, **kw)(x[:, :, KEPT], tod, dow)
        y_full = model(x, tod, dow)
    assert y.shape == (B, S, N, C) and torch.isfinite(y).all()
    torch.testing.assert_close(y[:, :, KEPT], y_sub)  # kept rows: the model on A[kept][:, kept]
    torch.testing.assert_close(y, y_other)  # dropped inputs play no part
    assert not torch.allclose(y[:, :, KEPT], y_full[:, :, KEPT])  # ... whereas the full graph mixes them in
    if name in ZERO_DROPPED:
        assert (y[:, :, DROPPED] == 0).all()
    else:
        assert (y[:, :, DROPPED] != 0).any()


@pytest.mark.parametrize("name", NAMES)
def test_subset_backward(name):
    model = _model(name, _adjacency())
    x, tod, dow = _inputs()
    x_kept = x[:, :, KEPT].clone().requires_grad_(True)
    y = model.forward_subset(x_kept, KEPT, tod, dow)
    y.square().mean().backward()
    assert x_kept.grad is not None and x_kept.grad.abs().sum() > 0
    if name == "staeformer":
        assert model.mask_token.grad is not None and model.mask_token.grad.abs().sum() > 0


def test_staeformer_forecasts_dropped_nodes_from_time_and_identity():
    model = _model("staeformer", None).eval()
    x, tod, dow = _inputs()
    with torch.no_grad():
        y = model.forward_subset(x[:, :, KEPT], KEPT, tod, dow)
        y_tod = model.forward_subset(x[:, :, KEPT], KEPT, (tod + 5) % 24, dow)
    assert not torch.allclose(y[:, :, DROPPED], y_tod[:, :, DROPPED])
    assert not torch.allclose(y[:, :, DROPPED[0]], y[:, :, DROPPED[1]])  # node-specific via the adaptive embedding


def test_stgcn_valid_temporal_convs_on_long_window():
    # T=12, 2 blocks, kernel 3: unpadded ("valid") convolutions leave 4 steps for the output block
    torch.manual_seed(0)
    model = create_backbone("stgcn", _spec(_adjacency(), window=12)).eval()
    assert model.blocks[0].t1.pad == 0
    x, tod, dow = _inputs(window=12)
    with torch.no_grad():
        y = model(x, tod, dow)
        torch.testing.assert_close(model.forward_subset(x, torch.arange(N)), y)
    assert y.shape == (B, S, N, C)


# --- presets ---------------------------------------------------------------------------


def test_gwn_presets():
    ref = _model("gwn", _adjacency())  # the default: the authors' code (train.py defaults)
    assert ref.preset == "reference"
    assert (ref.start.out_features, ref.skip_convs[0].out_features, ref.end1.out_features) == (32, 256, 512)
    assert len(ref.tconvs) == 8 and ref.tconvs[0].kernel_size == 2 and ref.dilations == [1, 2] * 4
    assert ref.receptive_field == 13 and len(ref.gconvs) == 7 and ref.gconvs[0].order == 2
    assert ref.node_emb1.shape == (N, 10) and ref.gconvs[0].dropout.p == 0.3
    assert ref.start.in_features == C + 1  # the readings and the time-of-day fraction
    small = _model("gwn", _adjacency(), preset="small")
    assert (small.start.out_features, small.skip_convs[0].out_features, small.end1.out_features) == (16, 64, 128)
    assert len(small.tconvs) == 4 and small.tconvs[0].kernel_size == 3 and small.receptive_field == 13
    mixed = _model("gwn", _adjacency(), preset="small", hidden_size=24, n_blocks=1)  # explicit options win
    assert mixed.start.out_features == 24 and len(mixed.tconvs) == 2 and mixed.end1.out_features == 128
    assert sum(p.numel() for p in small.parameters()) < sum(p.numel() for p in ref.parameters()) / 5


def test_staeformer_presets():
    ref = _model("staeformer", None)
    assert ref.preset == "reference" and ref.dim == 3 * 24 + 80 == 152
    assert len(ref.temporal) == len(ref.spatial) == 3 and ref.temporal[0].attn.heads == 4
    assert ref.temporal[0].ff[0].out_features == 256 and ref.temporal[0].drop1.p == 0.1
    small = _model("staeformer", None, preset="small")
    assert small.dim == 3 * 8 + 24 == 48 and len(small.temporal) == len(small.spatial) == 1
    assert small.temporal[0].attn.heads == 2 and small.temporal[0].ff[0].out_features == 64
    mixed = _model("staeformer", None, preset="small", n_spatial_layers=2, adaptive_size=16)
    assert len(mixed.spatial) == 2 and len(mixed.temporal) == 1 and mixed.dim == 3 * 8 + 16


@pytest.mark.parametrize("name", ["gwn", "staeformer"])
@pytest.mark.parametrize("value", ["big", "Small", 3, None])
def test_unknown_preset_is_a_clear_error(name, value):
    if value is not None:  # through the registry: checked with the other options
        with pytest.raises(ConfigError, match=f"{name} option 'preset' takes one of 'reference', 'small', got"):
            create_backbone(name, _spec(_adjacency()), preset=value)
    cls = {"gwn": GraphWaveNet, "staeformer": STAEformer}[name]
    with pytest.raises(ConfigError, match=f"--backbone-options: {name} option 'preset' takes one of 'reference', 'small'"):
        cls(N, T, S, C, preset="big" if value is None else value)  # the class checks it too
    check_backbone_options(name, {"preset": "small"})


def test_gwn_uses_time_of_day():
    model = _model("gwn", _adjacency()).eval()
    x, tod, dow = _inputs()
    later = (tod + 5) % 24
    with torch.no_grad():
        y = model(x, tod, dow)
        assert not torch.allclose(y, model(x, later, dow))
        torch.testing.assert_close(model(x, tod, (dow + 1) % 7), y)  # day of week is not used
        y_kept = model.forward_subset(x[:, :, KEPT], KEPT, tod, dow)
        assert not torch.allclose(y_kept[:, :, KEPT], model.forward_subset(x[:, :, KEPT], KEPT, later, dow)[:, :, KEPT])
        # only the input steps' slots matter, as the fraction of the day
        tail = tod.clone()
        tail[:, T:] = 0
        torch.testing.assert_close(model(x, tail, dow), y)
        h = model._with_tod(x, tod)
        assert h.shape == (B, T, N, C + 1)
        torch.testing.assert_close(h[..., C], (tod[:, :T].float() / 24)[:, :, None].expand(B, T, N))
        assert float(h[..., C].max()) < 1


def test_gwn_without_time_of_day():
    torch.manual_seed(0)
    model = create_backbone("gwn", _spec(_adjacency(), steps_per_day=1), preset="small").eval()
    assert model.start.in_features == C
    x, tod, dow = _inputs()
    with torch.no_grad():
        torch.testing.assert_close(model(x, tod, dow), model(x, (tod + 5) % 24, dow))
        torch.testing.assert_close(model(x), model(x, tod, dow))


def test_stid_last_value_skip_starts_at_persistence():
    import torch

    from sparsest.backbones import DataSpec, create_backbone
    from sparsest.errors import ConfigError

    spec = DataSpec(kind="graph", window=6, horizon=4, n_channels=1, n_nodes=5, steps_per_day=24)
    m = create_backbone("stid", spec, last_value_skip=True)
    x = torch.randn(3, 6, 5, 1)
    tod = torch.randint(0, 24, (3, 10))
    y = m(x, tod, torch.zeros(3, 10, dtype=torch.long))
    assert torch.allclose(y, x[:, -1:].expand(-1, 4, -1, -1))  # zero head: persistence exactly
    idx = torch.tensor([0, 2, 3])
    ys = m.forward_subset(x[:, :, idx], idx, tod)
    assert torch.allclose(ys[:, :, idx], x[:, -1:, idx].expand(-1, 4, -1, -1))
    with pytest.raises(ConfigError, match="last_value_skip"):
        create_backbone("stid", spec, last_value_skip=True, output_size=2)
