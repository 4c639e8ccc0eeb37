"""The straight-through clip of the training forecast at the data set's lower bound."""

import numpy as np
import pytest
import torch
from torch import nn

from sparsest.data.windows import StandardScaler
from sparsest.engine.module import ForecastModule


class _Const(nn.Module):
    """Forecasts one learnable value everywhere: ``[B, S, N]``."""

    def __init__(self, value: float):
        super().__init__()
        self.value = nn.Parameter(torch.tensor(value))

    def forward(self, x, tod, dow):
        return self.value.expand(x.shape[0], 2, x.shape[2])


def _batch(y):
    y = torch.as_tensor(y, dtype=torch.float32).reshape(1, 2, -1)
    return {"x": torch.zeros(1, 3, y.shape[2]), "tod": None, "dow": None, "y": y, "y_mask": torch.ones_like(y, dtype=torch.bool)}


def _loss(module, batch):
    module.log = lambda *a, **k: None
    return module.training_step(batch, 0)["loss"]


def test_clipped_loss_scores_the_clipped_forecast_and_passes_the_gradient():
    scaler = StandardScaler(np.array([1.0]), np.array([2.0]), "graph", floor=0.0)  # bound in scaled units: -0.5
    batch = _batch([0.0, 0.0, 4.0, 0.0])  # scaled: -0.5, -0.5, 1.5, -0.5
    clipped = ForecastModule(_Const(-2.0), scaler, clip_forecast=True)
    raw = ForecastModule(_Const(-2.0), scaler)
    loss_c, loss_r = _loss(clipped, batch), _loss(raw, batch)
    # clipped forecast -0.5 everywhere: errors 0, 0, 2, 0 -> 0.5; raw -2: 1.5, 1.5, 3.5, 1.5 -> 2.0
    assert loss_c.item() == pytest.approx(0.5) and loss_r.item() == pytest.approx(2.0)
    loss_c.backward()
    # straight through: d/dv mean|clip(v) - y| = mean(sign(clip(v) - y)) = (0 + 0 - 1 + 0) / 4, not 0 (a hard clip gives 0)
    assert clipped.model.value.grad.item() == pytest.approx(-0.25)


def test_clip_forecast_needs_a_lower_bound():
    scaler = StandardScaler(np.array([1.0]), np.array([2.0]), "graph")
    with pytest.raises(ValueError, match="lower bound"):
        ForecastModule(_Const(0.0), scaler, clip_forecast=True)
