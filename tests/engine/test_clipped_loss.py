"""The training loss is taken on the forecast clipped at the data set's lower bound (the
forecast that is scored), so forecasts below the bound where the truth is at it cost nothing."""

import numpy as np
import torch
from torch import nn

from sparsest.data.windows import StandardScaler
from sparsest.engine.module import ForecastModule


class Const(nn.Module):
    """Forecasts a learnable constant (scaled units) everywhere, grid-shaped ``[B, S, C, H, W]``."""

    def __init__(self, value: float):
        super().__init__()
        self.c = nn.Parameter(torch.tensor(value))

    def forward(self, x, tod, dow):
        return self.c.expand(x.shape[0], 2, 1, 3, 3)


def batch(y: float) -> dict:
    return {"x": torch.zeros(4, 2, 1, 3, 3), "tod": torch.zeros(4, 2, dtype=torch.long), "dow": torch.zeros(4, 2, dtype=torch.long),
            "y": torch.full((4, 2, 1, 3, 3), y), "y_mask": torch.ones(4, 2, 1, 3, 3, dtype=torch.bool)}


def scaler(floor):
    return StandardScaler(np.array([1.0]), np.array([2.0]), "grid", floor)


def test_below_the_floor_costs_nothing_where_the_truth_is_at_it():
    # scaled floor = (0 - 1) / 2 = -0.5; a forecast of -3 (physical -5) is scored as 0
    m = ForecastModule(Const(-3.0), scaler(0.0))
    out = m.training_step(batch(0.0), 0)
    assert float(out["loss"]) == 0.0
    out["loss"].backward()
    assert m.model.c.grad is None or float(m.model.c.grad) == 0.0


def test_without_a_floor_the_raw_forecast_is_trained():
    m = ForecastModule(Const(-3.0), scaler(None))
    loss = m.training_step(batch(0.0), 0)["loss"]
    assert abs(float(loss) - 2.5) < 1e-6  # |-3 - (-0.5)|
    loss.backward()
    assert float(m.model.c.grad) < 0  # pushed up toward the truth


def test_above_the_floor_the_loss_is_unchanged():
    m = ForecastModule(Const(1.0), scaler(0.0))  # physical 3, truth 1 -> scaled error 1
    assert abs(float(m.training_step(batch(1.0), 0)["loss"]) - 1.0) < 1e-6
