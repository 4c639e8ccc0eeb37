import numpy as np
import pytest
import torch

from sparsest.data import SpatioTemporalData, StandardScaler, WindowDataset, chronological_split
from sparsest.data.windows import time_features
from sparsest.errors import DataError


def graph(T=100, N=5, C=2, seed=0):
    rng = np.random.default_rng(seed)
    return SpatioTemporalData(rng.normal(size=(T, N, C)).astype(np.float32), "graph", steps_per_day=24).validate()


def test_windows_are_views_into_one_array():
    data = graph()
    scaler = StandardScaler.fit(data, (0, 70))
    ds = WindowDataset(data, (0, 70), window=12, horizon=6, scaler=scaler)
    assert len(ds) == 70 - 18 + 1
    assert np.shares_memory(ds.values.numpy(), data.values)  # the series is stored once
    item = ds[5]
    assert item["x"].shape == (12, 5, 2) and item["y"].shape == (6, 5, 2)
    np.testing.assert_allclose(item["y"].numpy(), data.values[17:23])
    np.testing.assert_allclose(item["x"].numpy(), (data.values[5:17] - scaler.mean) / scaler.std, rtol=1e-5, atol=1e-6)
    assert item["tod"].shape == (18,) and item["t0"] == 5
    with pytest.raises(IndexError):
        ds[len(ds)]


def test_large_series_is_not_copied():
    values = np.zeros((200_000, 50, 1), dtype=np.float32)  # 10^7 values: a copy per window would be 10^10
    data = SpatioTemporalData(values, "graph")
    ds = WindowDataset(data, (0, 200_000), 12, 12, StandardScaler(np.zeros(1), np.ones(1), "graph"))
    assert ds.values.data_ptr() == torch.from_numpy(values).data_ptr()
    assert ds[100_000]["x"].shape == (12, 50, 1)


def test_grid_windows():
    v = np.arange(40 * 1 * 3 * 4, dtype=np.float32).reshape(40, 1, 3, 4)
    data = SpatioTemporalData(v, "grid").validate()
    scaler = StandardScaler.fit(data, (0, 28))
    assert scaler.mean.shape == (1,)
    item = WindowDataset(data, (28, 40), 4, 2, scaler)[0]
    assert item["x"].shape == (4, 1, 3, 4) and item["y"].shape == (2, 1, 3, 4)
    np.testing.assert_allclose(item["y"].numpy(), v[32:34])


def test_scaler_is_fitted_on_train_only():
    data = graph()
    a = StandardScaler.fit(data, (0, 70))
    data.values[70:] += 1000.0  # change validation / test: the scaler must not move
    b = StandardScaler.fit(data, (0, 70))
    np.testing.assert_allclose(a.mean, b.mean)
    np.testing.assert_allclose(a.std, b.std)
    np.testing.assert_allclose(a.mean, data.values[:70].mean(axis=(0, 1)), rtol=1e-5)
    assert np.abs(StandardScaler.fit(data, (0, 100)).mean - a.mean).min() > 100


def test_missing_values_are_masked_not_zero():
    data = graph()
    data.values[10, 2, 0] = np.nan
    data.values[20, 3, 1] = np.nan
    scaler = StandardScaler.fit(data, (0, 70))
    assert np.isfinite(scaler.mean).all()
    item = WindowDataset(data, (0, 70), 12, 12, scaler)[5]  # x = steps 5..16, y = 17..28
    assert not item["x_mask"][5, 2, 0] and item["x"][5, 2, 0] == 0
    assert not item["y_mask"][3, 3, 1] and item["y"][3, 3, 1] == 0
    assert item["x_mask"].sum() == item["x_mask"].numel() - 1


def test_chronological_split_and_too_short_series():
    s = chronological_split(100, 4, 4)
    assert s.train == (0, 70) and s.val == (70, 80) and s.test == (80, 100)
    with pytest.raises(DataError, match="fewer than one window"):
        chronological_split(50, 12, 12, source="x.csv")


def test_time_features_from_timestamps():
    ts = np.datetime64("2012-03-01T00:00") + np.arange(600) * np.timedelta64(5, "m")
    data = SpatioTemporalData(np.zeros((600, 2, 1), np.float32), "graph", timestamps=ts, steps_per_day=288)
    tod, dow = time_features(data)
    assert tod[0] == 0 and tod[12] == 12 and tod[288] == 0
    assert dow[0] == 3 and dow[288] == 4  # 2012-03-01 was a Thursday
