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


@pytest.mark.parametrize("residual", [True, False])
def test_vit_patch_space_propagation_equals_field_propagation(residual):
    """ViT applies the kept-to-all step on its patch tokens; it must equal the wrapper's
    generic step on the returned field (33 x 49 is not a multiple of the patch size)."""
    torch.manual_seed(0)
    spec = DataSpec(kind="grid", window=4, horizon=3, n_channels=2, n_nodes=0, height=33, width=49, steps_per_day=24, patch_size=4)
    backbone = create_backbone("vit", spec, residual=residual).eval()
    assert backbone.propagates_in_patch_space
    layout = SensorLayout("grid", 0, (33, 49), 4)
    model = SensorMaskedForecaster(backbone, layout).eval()
    with torch.no_grad():
        model.scores.uniform_(0.5, 1.5)
        model.propagation.weight.normal_()
        model.propagation.self_weight.normal_()
        model.propagation.bias.normal_()
        model.keep.copy_(torch.rand(layout.n_sensors) > 0.4)
    model.subset = True
    x = torch.randn(2, 4, 2, 33, 49)
    with torch.no_grad():
        fast = model(x)
        idx = torch.nonzero(model.keep).flatten()
        slow = model.propagation(backbone.forward_subset(x * layout.expand(model.effective_mask()), idx), model.keep)
    assert fast.shape == (2, 3, 2, 33, 49)
    torch.testing.assert_close(fast, slow, rtol=1e-5, atol=1e-5)
