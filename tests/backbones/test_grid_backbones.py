import pytest
import torch

import sparsest.backbones.grid.convlstm  # noqa: F401  (registers convlstm)
import sparsest.backbones.grid.tau  # noqa: F401  (registers tau)
import sparsest.backbones.grid.vit  # noqa: F401  (registers vit)
from sparsest.backbones import DataSpec, create_backbone, get_backbone_entry, list_backbones
from sparsest.backbones.grid.convlstm import ConvLSTM
from sparsest.backbones.grid.tau import TAU
from sparsest.backbones.grid.vit import ViT
from sparsest.errors import ConfigError
from sparsest.pruning.sensors.layout import SensorLayout

NAMES = ["tau", "convlstm", "vit"]
CLASSES = {"tau": TAU, "convlstm": ConvLSTM, "vit": ViT}
# odd H and W, p divides neither; and a 2-channel spec where p divides H only
SPEC = DataSpec("grid", window=4, horizon=3, n_channels=1, n_nodes=9 * 11, height=9, width=11, patch_size=3)
SPEC2 = DataSpec("grid", window=3, horizon=2, n_channels=2, n_nodes=8 * 7, height=8, width=7, patch_size=4)
SMALL = {"tau": dict(hidden_size=8, hid_t=16, n_t=2), "convlstm": dict(hidden_size=8), "vit": dict(hidden_size=16, depth=2, n_heads=2)}


def _x(spec, B=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(B, spec.window, spec.n_channels, spec.height, spec.width, generator=g)


@pytest.mark.parametrize("spec", [SPEC, SPEC2])
@pytest.mark.parametrize("name", NAMES)
def test_forward_backward_shapes(name, spec):
    torch.manual_seed(0)
    model = create_backbone(name, spec, **SMALL[name])
    assert isinstance(model, CLASSES[name])
    x = _x(spec)
    t = torch.zeros(2, spec.window + spec.horizon, dtype=torch.long)
    y = model(x, t, t)
    assert y.shape == (2, spec.horizon, spec.n_channels, spec.height, spec.width)
    assert torch.isfinite(y).all()
    y.square().mean().backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert grads and all(g is not None for g in grads)
    assert any(float(g.abs().sum()) > 0 for g in grads)


@pytest.mark.parametrize("name", NAMES)
def test_registry_and_defaults(name):
    entry = get_backbone_entry(name)
    assert entry.kind == "grid" and name in list_backbones("grid", trainable=True)
    doc = CLASSES[name].__doc__
    assert "arXiv" in doc and "Args:" in doc and "Shapes:" in doc
    with pytest.raises(ConfigError, match="grid backbone"):
        create_backbone(name, DataSpec("graph", 4, 3, 1, 5))
    model = create_backbone(name, SPEC)  # default sizes build and run
    with torch.no_grad():
        assert model(_x(SPEC, B=1)).shape == (1, 3, 1, 9, 11)


@pytest.mark.parametrize("name", NAMES)
def test_residual_adds_last_frame(name):
    torch.manual_seed(0)
    a = create_backbone(name, SPEC, residual=True, **SMALL[name]).eval()
    b = create_backbone(name, SPEC, residual=False, **SMALL[name]).eval()
    b.load_state_dict(a.state_dict())
    x = _x(SPEC)
    with torch.no_grad():
        if name == "convlstm":  # the roll-out feeds its own (residual) predictions back
            b.feed = a.feed = "zero"
        torch.testing.assert_close(a(x) - b(x), x[:, -1:].expand(-1, SPEC.horizon, -1, -1, -1))


def test_convlstm_zero_feed_and_full_resolution():
    for kw in (dict(feed="zero"), dict(downsample=False)):
        model = create_backbone("convlstm", SPEC, hidden_size=8, **kw)
        assert model(_x(SPEC)).shape == (2, 3, 1, 9, 11)
    with pytest.raises(ValueError):
        create_backbone("convlstm", SPEC, feed="nope")


def _vit(spec=SPEC, **kw):
    torch.manual_seed(0)
    return create_backbone("vit", spec, **{**SMALL["vit"], **kw})


@pytest.mark.parametrize("decoder_depth", [0, 1])
def test_vit_subset_all_kept_equals_forward(decoder_depth):
    model = _vit(decoder_depth=decoder_depth).eval()
    assert ViT.supports_subset and model.patch_size == SPEC.patch_size and model.n_patches == 3 * 4
    x = _x(SPEC)
    with torch.no_grad():
        full = model(x)
        torch.testing.assert_close(model.forward_subset(x, torch.arange(model.n_patches)), full)
        torch.testing.assert_close(model.forward_subset(x, torch.ones(model.n_patches, dtype=torch.bool)), full)
        perm = torch.randperm(model.n_patches, generator=torch.Generator().manual_seed(1))
        torch.testing.assert_close(model.forward_subset(x, perm), full, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("spec", [SPEC, SPEC2])
def test_vit_subset_ignores_switched_off_patches(spec):
    model = _vit(spec, decoder_depth=1).eval()
    layout = SensorLayout("grid", grid_shape=(spec.height, spec.width), patch_size=spec.patch_size)
    assert layout.n_sensors == model.n_patches
    kept = torch.tensor([0, 2, layout.n_sensors - 1])
    off = ~torch.isin(layout.pixel_to_sensor, kept)  # [H, W] pixels of switched-off patches
    x = _x(spec)
    x2 = x.clone()
    x2[..., off] = torch.randn_like(x2[..., off]) * 100
    x3 = x.clone()
    x3[..., off] = float("nan")
    with torch.no_grad():
        y = model.forward_subset(x, kept)
        assert y.shape == (2, spec.horizon, spec.n_channels, spec.height, spec.width)
        torch.testing.assert_close(model.forward_subset(x2, kept), y)
        torch.testing.assert_close(model.forward_subset(x3, kept), y)
        x4 = x.clone()
        x4[..., ~off] += 1.0  # kept pixels do matter
        assert not torch.allclose(model.forward_subset(x4, kept), y)
        # nothing kept: a learned per-position forecast, still full size
        assert model.forward_subset(x, torch.zeros(0, dtype=torch.long)).shape == y.shape


def test_vit_subset_gradients():
    model = _vit()
    kept = torch.tensor([1, 4, 5, 10])
    y = model.forward_subset(_x(SPEC), kept)
    y.square().mean().backward()
    assert model.mask_token.grad is not None and float(model.mask_token.grad.abs().sum()) > 0
    assert float(model.embed.weight.grad.abs().sum()) > 0
    pos_grad = model.pos_embed.grad[0].abs().sum(-1)
    assert (pos_grad > 0).all()  # kept (via encoder) and switched-off (via mask tokens) positions


def test_vit_rejects_other_field_size():
    model = _vit()
    with pytest.raises(ValueError, match="9x11"):
        model(torch.randn(1, 4, 1, 8, 11))
