"""Graph WaveNet, STGCN and STAEformer: forward contract and the kept-subgraph path."""

import numpy as np
import pytest
import torch

import sparsest.backbones.graph.gwn  # noqa: F401  (registers "gwn")
import sparsest.backbones.graph.staeformer  # noqa: F401  (registers "staeformer")
import sparsest.backbones.graph.stgcn  # noqa: F401  (registers "stgcn")
from sparsest.backbones import DataSpec, create_backbone

N, T, S, C, B = 8, 6, 4, 2, 3
NAMES = ["gwn", "stgcn", "staeformer"]
ZERO_DROPPED = {"gwn", "stgcn"}  # these leave switched-off rows to KeptToAllPropagation
KEPT = torch.tensor([0, 2, 3, 6])
DROPPED = torch.tensor([1, 4, 5, 7])


def _adjacency(n=N, seed=0):
    rng = np.random.default_rng(seed)
    a = rng.random((n, n)) * (rng.random((n, n)) < 0.5)
    return np.maximum(a, a.T).astype(np.float32)


def _spec(adjacency, n=N, window=T):
    return DataSpec("graph", window=window, horizon=S, n_channels=C, n_nodes=n, steps_per_day=24, adjacency=adjacency)


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


@pytest.mark.parametrize("name", NAMES)
@ADJ
def test_forward_backward(name, with_adj):
    model = _model(name, _adjacency() if with_adj else None)
    assert model.supports_subset is True
    x, tod, dow = _inputs()
    y = model(x, tod, dow)
    assert y.shape == (B, S, N, C) and torch.isfinite(y).all()
    y.square().mean().backward()
    grads = {n: p.grad for n, p in model.named_parameters()}
    assert all(g is not None for g in grads.values()), [n for n, g in grads.items() if g is None]
    assert model(x).shape == (B, S, N, C)  # tod / dow optional


@pytest.mark.parametrize("name", NAMES)
@ADJ
def test_subset_with_all_kept_equals_forward(name, with_adj):
    model = _model(name, _adjacency() if with_adj else None).eval()
    x, tod, dow = _inputs()
    with torch.no_grad():
        torch.testing.assert_close(model.forward_subset(x, torch.arange(N), tod, dow), model(x, tod, dow))


def _sub_model(name, model, adjacency):
    """A K-node model with the full model's weights restricted to the kept nodes."""
    sub_adj = None if adjacency is None else adjacency[KEPT.numpy()][:, KEPT.numpy()]
    sub = create_backbone(name, _spec(sub_adj, n=len(KEPT)))
    state = {}
    for k, v in model.state_dict().items():
        if k in ("node_emb1", "node_emb2"):
            v = v[KEPT]
        elif k == "adaptive_emb":
            v = v[:, KEPT]
        state[k] = v
    sub.load_state_dict(state)
    return sub.eval()


@pytest.mark.parametrize("name", NAMES)
@ADJ
def test_subset_is_the_induced_subgraph_model(name, with_adj):
    adjacency = _adjacency() if with_adj else None
    model = _model(name, adjacency).eval()
    x, tod, dow = _inputs()
    x_other = x.clone()
    x_other[:, :, DROPPED] = 100.0 * torch.randn(B, T, len(DROPPED), C)
    with torch.no_grad():
        y = model.forward_subset(x[:, :, KEPT], KEPT, tod, dow)
        y_other = model.forward_subset(x_other[:, :, KEPT], KEPT, tod, dow)
        y_sub = _sub_model(name, model, adjacency)(x[:, :, KEPT], tod, dow)
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
