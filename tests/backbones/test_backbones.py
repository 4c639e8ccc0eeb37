import numpy as np
import pytest
import torch

from sparsest.backbones import DataSpec, create_backbone, get_backbone_entry, list_backbones
from sparsest.data import SpatioTemporalData, StandardScaler
from sparsest.data.windows import time_features
from sparsest.errors import ConfigError
from sparsest.pruning.sensors.layout import SensorLayout
from sparsest.pruning.sensors.wrapper import SensorMaskedForecaster

GRAPH = DataSpec("graph", window=6, horizon=4, n_channels=2, n_nodes=9, steps_per_day=24)
GRID = DataSpec("grid", window=5, horizon=3, n_channels=1, n_nodes=7 * 11, height=7, width=11, steps_per_day=24)


def _inputs(spec, B=3):
    shape = (B, spec.window, spec.n_nodes, spec.n_channels) if spec.kind == "graph" else (B, spec.window, spec.n_channels, spec.height, spec.width)
    t = torch.randint(0, spec.steps_per_day, (B, spec.window + spec.horizon))
    return torch.randn(shape), t, torch.randint(0, 7, t.shape)


@pytest.mark.parametrize("name", list_backbones(trainable=True))
def test_trainable_backbone_forward_backward(name):
    spec = GRAPH if get_backbone_entry(name).kind == "graph" else GRID
    torch.manual_seed(0)
    model = create_backbone(name, spec)
    x, tod, dow = _inputs(spec)
    y = model(x, tod, dow)
    want = (3, spec.horizon, spec.n_nodes, spec.n_channels) if spec.kind == "graph" else (3, spec.horizon, spec.n_channels, spec.height, spec.width)
    assert y.shape == want
    y.square().mean().backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert grads and all(g is not None for g in grads)
    assert any(float(g.abs().sum()) > 0 for g in grads)


@pytest.mark.parametrize("name", list_backbones(trainable=True))
def test_backbone_under_sensor_mask(name):
    spec = GRAPH if get_backbone_entry(name).kind == "graph" else GRID
    layout = SensorLayout(spec.kind, spec.n_nodes, (spec.height, spec.width) if spec.kind == "grid" else None, patch_size=3)
    model = SensorMaskedForecaster(create_backbone(name, spec), layout)
    model.keep[: layout.n_sensors // 3] = False
    x, tod, dow = _inputs(spec)
    model(x, tod, dow).abs().mean().backward()
    assert model.scores.grad is not None


def test_kind_mismatch_and_unknown():
    with pytest.raises(ConfigError, match="graph backbone"):
        create_backbone("stid", GRID)
    with pytest.raises(ConfigError, match="unknown backbone"):
        create_backbone("nope", GRAPH)


def test_baselines():
    _T, N = 96, 3
    v = np.tile(np.arange(24, dtype=np.float32), 4)[:, None, None] * np.ones((1, N, 1), np.float32)
    data = SpatioTemporalData(v, "graph", steps_per_day=24).validate()
    scaler = StandardScaler.fit(data, (0, 72))
    tod, dow = time_features(data)
    spec = DataSpec("graph", 4, 2, 1, N, steps_per_day=24)
    ha = create_backbone("historical-average", spec).fit(data, (0, 72), tod, scaler)
    x = torch.zeros(1, 4, N, 1)
    t = torch.tensor(tod[10:16])[None]
    pred = ha(x, t) * float(scaler.std[0]) + float(scaler.mean[0])
    torch.testing.assert_close(pred[0, :, 0, 0], torch.tensor([14.0, 15.0]))  # the daily cycle is learnt exactly
    per = create_backbone("persistence", spec)
    x = torch.arange(4.0).view(1, 4, 1, 1).expand(1, 4, N, 1)
    assert (per(x) == 3.0).all() and per(x).shape == (1, 2, N, 1)


def test_lower_bound_baseline():
    v = np.abs(np.random.default_rng(0).normal(size=(20, 1, 4, 5))).astype(np.float32)
    data = SpatioTemporalData(v, "grid", lower_bound=0.0).validate()
    scaler = StandardScaler.fit(data, (0, 14))
    spec = DataSpec(kind="grid", window=3, horizon=2, n_channels=1, n_nodes=1, height=4, width=5)
    lb = create_backbone("lower-bound", spec).fit(data, (0, 14), None, scaler)
    y = lb(torch.randn(2, 3, 1, 4, 5))
    assert y.shape == (2, 2, 1, 4, 5)
    torch.testing.assert_close(y * float(scaler.std[0]) + float(scaler.mean[0]), torch.zeros(2, 2, 1, 4, 5), atol=1e-5, rtol=0)
    no_bound = SpatioTemporalData(v, "grid").validate()
    with pytest.raises(ValueError, match="lower bound"):
        create_backbone("lower-bound", spec).fit(no_bound, (0, 14), None, StandardScaler.fit(no_bound, (0, 14)))
