"""The budget error of ``sparsest plan`` (``sparsest.methods.dynst.budget``): per-window error sums
over observed targets only, the moving-block bootstrap bound of the error ratio, and the bound
in the metric's units (square root for RMSE)."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from sparsest.methods.dynst.budget import BudgetCheck, block_length, budget_error, upper_ratio, window_error_sums


def test_upper_ratio_is_the_point_ratio_without_spread_or_confidence():
    r = np.linspace(1.0, 2.0, 200)
    assert upper_ratio(r, r, 0.95, 24) == pytest.approx(1.0)
    assert upper_ratio(1.02 * r, r, 0.95, 24) == pytest.approx(1.02)  # every block has the same ratio
    noisy = r * (1.02 + 0.05 * np.sin(np.arange(200) / 5))
    point = noisy.sum() / r.sum()
    assert upper_ratio(noisy, r, 0, 24) == pytest.approx(point)


def test_upper_ratio_widens_with_spread_and_with_dependence_between_windows():
    r = np.ones(480)
    runs = np.repeat(np.tile([0.98, 1.06], 4), 60)  # runs of 60 windows at -2% and +6%: point +2%
    point = runs.sum() / r.sum()
    assert point == pytest.approx(1.02)
    iid, blocks = upper_ratio(runs, r, 0.95, 1, seed=0), upper_ratio(runs, r, 0.95, 24, seed=0)
    assert point < iid < blocks  # windows resampled one by one understate the spread of runs
    assert blocks > 1.03  # within a 3% budget on the point estimate, over it on the bound
    assert upper_ratio(runs, r, 0.95, 24, seed=0) == blocks  # seeded: the same bound again
    assert upper_ratio(runs, r, 0.5, 24, seed=0) < blocks


@pytest.mark.parametrize("args, needle", [
    ((np.ones(3), np.ones(4), 0.9, 2), "same non-empty"),
    ((np.ones(3), np.ones(3), 1.0, 2), "confidence"),
    ((np.ones(3), np.ones(3), 0.9, 0), "block"),
    ((np.ones(3), np.zeros(3), 0.9, 2), "sum to 0"),
])
def test_upper_ratio_refuses_bad_input(args, needle):
    with pytest.raises(ValueError, match=needle):
        upper_ratio(*args)


def test_block_length():
    assert block_length(380, 12, 12) == 24 and block_length(100, 12, 12) == 10 and block_length(5, 12, 12) == 1


class _Shift(torch.nn.Module):
    def __init__(self, shift):
        super().__init__()
        self.shift = shift

    def forward(self, x, tod=None, dow=None):
        return x + self.shift


def _prep(n=60):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 2, 3, 1, generator=g)
    mask = torch.rand(n, 2, 3, 1, generator=g) > 0.3
    batches = [{"x": x[i:i + 16], "y": x[i:i + 16], "y_mask": mask[i:i + 16], "tod": None, "dow": None}
               for i in range(0, n, 16)]
    scaler = SimpleNamespace(physical=lambda v: 2 * v)  # physical = 2 x scaled; y is compared in physical units
    return SimpleNamespace(loaders={"val": batches}, scaler=scaler, spec=SimpleNamespace(window=2, horizon=2)), x, mask


def test_window_error_sums_count_observed_targets_only():
    prep, x, mask = _prep()
    sums = window_error_sums(_Shift(0.5), prep.loaders["val"], prep.scaler, "mae")
    expected = ((2 * (x + 0.5) - x).abs() * mask).flatten(1).sum(1)
    assert sums.shape == (60,) and np.allclose(sums, expected.double().numpy())
    sq = window_error_sums(_Shift(0.5), prep.loaders["val"], prep.scaler, "mse")
    assert np.allclose(sq, (((2 * (x + 0.5) - x) ** 2) * mask).flatten(1).sum(1).double().numpy())


@pytest.mark.parametrize("metric", ["mae", "rmse", "mse"])
def test_budget_check_bounds_in_the_metrics_units(metric):
    prep, x, mask = _prep()
    dense, worse = _Shift(0.0), _Shift(0.3)
    family = "mae" if metric == "mae" else "mse"
    ref = window_error_sums(dense, prep.loaders["val"], prep.scaler, family)
    mine = window_error_sums(worse, prep.loaders["val"], prep.scaler, family)
    ratio = mine.sum() / ref.sum()
    point = ratio ** 0.5 if metric == "rmse" else ratio
    check = BudgetCheck(dense, prep, metric, dense_error=1.0, confidence=0.95, seed=0)
    b = check.bound(worse, error=point)
    assert b >= point  # never below the estimate
    upper = upper_ratio(mine, ref, 0.95, check.block, 0)
    assert b == pytest.approx(np.sqrt(upper) if metric == "rmse" else upper)
    assert BudgetCheck(dense, prep, metric, 1.0, confidence=0).bound(worse, error=0.123) == 0.123


def test_budget_error_of_a_checkpoint():
    p = {"val_mae": 1.0, "val_mae_qr": 1.1, "val_mae_ub": 1.3, "val_mae_qr_ub": 1.2}
    assert budget_error(p, "val_mae") == 1.2  # the lower bound of the two keep-sets, not the lower error
    assert budget_error({"val_mae": 1.0, "val_mae_qr": 1.1}, "val_mae") == 1.0  # a point recorded without bounds


def test_window_error_sums_leave_the_global_random_stream_alone():
    from torch.utils.data import DataLoader

    prep, x, mask = _prep()
    items = [{"x": x[i], "y": x[i], "y_mask": mask[i], "tod": torch.zeros(()), "dow": torch.zeros(())} for i in range(60)]
    loader = DataLoader(items, batch_size=16)  # iterating it draws a base seed from torch's global generator
    torch.manual_seed(3)
    window_error_sums(_Shift(0.5), loader, prep.scaler, "mae")
    after = torch.rand(3)
    torch.manual_seed(3)
    assert torch.equal(after, torch.rand(3))  # a plan's training phases see the same stream with or without a bound
