import json

import numpy as np
import pytest
import torch

from sparsest.backbones import DataSpec, create_backbone
from sparsest.data import StandardScaler
from sparsest.deploy import export_pruned
from sparsest.pruning.sensors.layout import SensorLayout
from sparsest.pruning.sensors.wrapper import SensorMaskedForecaster


@pytest.mark.parametrize("name", ["stid", "gwn", "stgcn", "staeformer", "vit", "simvp"])
def test_exported_model_matches_python(tmp_path, name):
    torch.manual_seed(0)
    if name in ("stid", "gwn", "stgcn", "staeformer"):
        a = (torch.rand(10, 10) < 0.3).float().numpy()
        spec = DataSpec("graph", 6, 4, 1, 10, steps_per_day=24, adjacency=np.maximum(a, a.T))
        layout = SensorLayout("graph", 10)
        x = torch.randn(3, 6, 10, 1)
    else:
        spec = DataSpec("grid", 6, 4, 1, 9 * 11, height=9, width=11, patch_size=3)
        layout = SensorLayout("grid", grid_shape=(9, 11), patch_size=3)
        x = torch.randn(3, 6, 1, 9, 11)
    model = SensorMaskedForecaster(create_backbone(name, spec), layout).eval()
    with torch.no_grad():
        model.keep[::3] = False
        model.scores.uniform_(0.5, 1.5)
        if model.propagation is not None:
            model.propagation.weight.normal_(0, 0.1)
    model.subset = True
    scaler = StandardScaler(np.array([50.0]), np.array([10.0]), spec.kind)
    tod = torch.randint(0, 24, (3, 10))
    dow = torch.randint(0, 7, (3, 10))
    ids = [f"s{i}" for i in range(layout.n_sensors)]
    model_path, sensors_path = export_pruned(model, scaler, {"x": x, "tod": tod, "dow": dow}, tmp_path, ids, "mph")
    info = json.loads(sensors_path.read_text())
    kept = info["kept_index"]
    assert len(kept) == int(model.keep.sum()) and "s0" in info["switched_off_sensors"]
    loaded = torch.jit.load(str(model_path))
    x_phys = x * 10 + 50
    with torch.no_grad():
        want = model(x, tod, dow) * 10 + 50  # Python model on the full (scaled) input
        got = loaded(x_phys[:, :, kept] if spec.kind == "graph" else x_phys, tod, dow)
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-3)
