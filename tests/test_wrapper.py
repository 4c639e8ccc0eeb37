import numpy as np
import pytest
import torch

from sparsest.backbones import DataSpec, create_backbone, get_backbone_entry, list_backbones
from sparsest.pruning.sensors.layout import SensorLayout
from sparsest.pruning.sensors.wrapper import KeptToAllPropagation, SensorMaskedForecaster

rng = np.random.default_rng(0)
_A = (rng.random((9, 9)) < 0.3).astype(np.float32)
GRAPH = DataSpec("graph", window=6, horizon=4, n_channels=1, n_nodes=9, steps_per_day=24, adjacency=np.maximum(_A, _A.T))
GRID = DataSpec("grid", window=5, horizon=3, n_channels=1, n_nodes=9 * 11, height=9, width=11, steps_per_day=24, patch_size=3)


def build(name):
    spec = GRAPH if get_backbone_entry(name).kind == "graph" else GRID
    layout = SensorLayout(spec.kind, spec.n_nodes, (spec.height, spec.width) if spec.kind == "grid" else None, spec.patch_size)
    torch.manual_seed(0)
    model = SensorMaskedForecaster(create_backbone(name, spec), layout)
    B = 2
    x = torch.randn((B, spec.window, spec.n_nodes, 1) if spec.kind == "graph" else (B, spec.window, 1, spec.height, spec.width))
    t = torch.randint(0, 24, (B, spec.window + spec.horizon))
    return model, x, t, torch.randint(0, 7, t.shape)


@pytest.mark.parametrize("name", list_backbones(trainable=True))
def test_kept_subset_forward_backward(name):
    model, x, tod, dow = build(name)
    with torch.no_grad():
        model.keep[1::3] = False
    model.subset = True
    y = model(x, tod, dow)
    assert torch.isfinite(y).all()
    assert y.shape[0] == 2 and y.shape[1] in (3, 4)
    y.abs().mean().backward()
    assert any(p.grad is not None and float(p.grad.abs().sum()) > 0 for p in model.backbone.parameters())
    token_or_graph = name in ("stid", "staeformer", "vit", "gwn", "stgcn")
    assert model.runs_subset == token_or_graph  # dense CNN / RNN backbones run on the masked input


def test_stid_subset_equals_masked_path_on_kept_nodes():
    model, x, tod, dow = build("stid")
    model.eval()
    with torch.no_grad():
        model.keep[::2] = False
        model.scores.uniform_(0.5, 1.5)
    masked = model(x, tod, dow)
    model.subset = True
    subset = model(x, tod, dow)
    k = model.keep
    torch.testing.assert_close(subset[:, :, k], masked[:, :, k])
    x2 = x.clone()
    x2[:, :, ~k] = 100.0  # switched-off sensors' readings are never used
    torch.testing.assert_close(model(x2, tod, dow), subset)


def test_grid_propagation_copies_from_kept_patch_offsets():
    layout = SensorLayout("grid", grid_shape=(5, 7), patch_size=2)
    prop = KeptToAllPropagation(layout.n_sensors, layout)
    keep = torch.ones(12, dtype=torch.bool)
    keep[5] = False
    y = torch.randn(2, 3, 1, 5, 7)
    assert torch.equal(prop(y, keep), y)  # identity at initialisation
    with torch.no_grad():
        prop.weight[5, 0] = 1.0
        prop.self_weight[5] = 0.0
    out = prop(y, keep)
    torch.testing.assert_close(out[..., 2:4, 2:4], y[..., 0:2, 0:2])  # patch 5 <- patch 0, same offsets
    mask = torch.ones(5, 7, dtype=torch.bool)
    mask[2:4, 2:4] = False
    assert torch.equal(out[..., mask], y[..., mask])  # kept patches untouched
