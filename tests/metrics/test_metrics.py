import torch

from sparsest.metrics import HorizonMetrics, masked_mae, masked_mape, masked_rmse


def test_masked_entries_are_left_out_not_counted_as_zero():
    y = torch.tensor([[1.0, 2.0, 0.0]])
    y_hat = torch.tensor([[2.0, 2.0, 5.0]])
    mask = torch.tensor([[True, True, False]])
    assert masked_mae(y_hat, y, mask) == 0.5  # (1 + 0) / 2, not (1 + 0 + 5) / 3
    assert torch.isclose(masked_rmse(y_hat, y, mask), torch.tensor(0.5**0.5))
    assert torch.isclose(masked_mape(y_hat, y, mask), torch.tensor(50.0))


def test_horizon_metrics_match_pure_functions_and_per_horizon():
    g = torch.Generator().manual_seed(0)
    y = torch.rand(8, 3, 4, 1, generator=g) + 1
    y_hat = y + torch.randn(8, 3, 4, 1, generator=g)
    mask = torch.rand(8, 3, 4, 1, generator=g) > 0.2
    m = HorizonMetrics(3)
    m.update(y_hat[:5], y[:5], mask[:5])
    m.update(y_hat[5:], y[5:], mask[5:])
    out = m.compute()
    assert abs(out["mae"] - float(masked_mae(y_hat, y, mask))) < 1e-5
    assert abs(out["rmse"] - float(masked_rmse(y_hat, y, mask))) < 1e-5
    assert abs(out["mape"] - float(masked_mape(y_hat, y, mask))) < 1e-3
    assert len(out["mae_per_horizon"]) == 3
    assert abs(out["mae_per_horizon"][1] - float(masked_mae(y_hat[:, 1], y[:, 1], mask[:, 1]))) < 1e-5
    assert out["n_observed"] == int(mask.sum())
