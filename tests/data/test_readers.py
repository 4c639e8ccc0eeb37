"""Tests for sparsest.data.readers: small files written in the exact on-disk layouts of the
standard data sets, plus the real files in ../shared/data when present."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from sparsest.data.readers import (
    read_adjacency,
    read_grid,
    read_locations,
    read_metr_h5,
    read_pems_npz,
    read_signals,
    read_taxibj_h5,
    safe_load_pickle,
    sniff_kind,
)
from sparsest.errors import DataError

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"
METR = SHARED / "metr-la-week"
needs_shared = pytest.mark.skipif(not SHARED.is_dir(), reason="shared data not present")


def raises_about(path: Path, *words: str):
    """Context manager: a one-line DataError that starts with ``path`` and contains ``words``."""

    class _Check:
        def __enter__(self):
            self._ctx = pytest.raises(DataError)
            self.info = self._ctx.__enter__()
            return self.info

        def __exit__(self, *exc):
            handled = self._ctx.__exit__(*exc)
            msg = str(self.info.value)
            assert msg.startswith(f"{path}:"), msg
            assert "\n" not in msg, msg
            for word in words:
                assert word in msg, (word, msg)
            return handled

    return _Check()


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


# ----------------------------------------------------------------------------- signals: CSV


def test_csv_header_ids(tmp_path):
    path = write(tmp_path / "speed.csv", "773869,767541,767542\n64.375,67.625,67.125\n62.75,68.0,65.25\n")
    values, ids, times = read_signals(path)
    assert values.shape == (2, 3, 1) and values.dtype == np.float32
    assert ids == ["773869", "767541", "767542"]
    assert times is None
    np.testing.assert_allclose(values[:, :, 0], [[64.375, 67.625, 67.125], [62.75, 68.0, 65.25]])


@pytest.mark.parametrize("first", ["", "Time", "datetime"])
def test_csv_timestamp_column(tmp_path, first):
    index = pd.date_range("2012-03-01", periods=4, freq="5min")
    df = pd.DataFrame(np.arange(8.0).reshape(4, 2), index=index, columns=["a1", "b2"])
    df.index.name = first or None
    path = tmp_path / "speed.csv"
    df.to_csv(path)
    values, ids, times = read_signals(path)
    assert ids == ["a1", "b2"]
    assert values.shape == (4, 2, 1)
    assert times.dtype == np.dtype("datetime64[ns]")
    np.testing.assert_array_equal(times, index.values.astype("datetime64[ns]"))


def test_csv_dates_detected_without_time_header(tmp_path):
    path = write(tmp_path / "s.csv", "when,s1\n2012-03-01 00:00,1.5\n2012-03-01 00:05,2.5\n")
    values, ids, times = read_signals(path)
    assert ids == ["s1"] and values[:, 0, 0].tolist() == [1.5, 2.5]
    assert times[1] - times[0] == np.timedelta64(5, "m")


def test_csv_unnamed_integer_index_is_dropped(tmp_path):
    path = tmp_path / "s.csv"
    pd.DataFrame({"s1": [1.0, 2.0], "s2": [3.0, 4.0]}).to_csv(path)
    values, ids, times = read_signals(path)
    assert ids == ["s1", "s2"] and times is None and values.shape == (2, 2, 1)


def test_csv_empty_cells_are_nan(tmp_path):
    path = write(tmp_path / "s.csv", "1,2,3\n1.0,,3.0\nNaN,5.0,\n")
    values, _, _ = read_signals(path)
    assert np.isnan(values[0, 1, 0]) and np.isnan(values[1, 0, 0]) and np.isnan(values[1, 2, 0])
    assert values[0, 0, 0] == 1.0 and values[1, 1, 0] == 5.0


def test_csv_non_numeric_cell_names_column(tmp_path):
    path = write(tmp_path / "s.csv", "s1,s2\n1.0,2.0\n3.0,oops\n")
    with raises_about(path, "'s2'", "oops", "line 3"):
        read_signals(path)


def test_csv_bad_time_column(tmp_path):
    path = write(tmp_path / "s.csv", "time,s1\nyesterday,1.0\n")
    with raises_about(path, "'time'"):
        read_signals(path)


def test_csv_duplicate_ids(tmp_path):
    path = write(tmp_path / "s.csv", "s1,s1\n1.0,2.0\n")
    with raises_about(path, "'s1'", "twice"):
        read_signals(path)


def test_csv_ragged_row(tmp_path):
    path = write(tmp_path / "s.csv", "s1,s2\n1.0,2.0\n1.0,2.0,3.0\n")
    with raises_about(path, "malformed CSV"):
        read_signals(path)


# ----------------------------------------------------------------------------- signals: npz / npy


def test_npz_signals_with_time_and_ids(tmp_path):
    data = np.random.default_rng(0).random((5, 4, 2))
    times = pd.date_range("2020-01-01", periods=5, freq="h").values
    path = tmp_path / "s.npz"
    np.savez(path, values=data, timestamps=times, sensor_ids=np.array([10, 11, 12, 13]))
    values, ids, ts = read_signals(path)
    assert values.dtype == np.float32 and values.shape == (5, 4, 2)
    np.testing.assert_allclose(values, data, rtol=1e-6)
    assert ids == ["10", "11", "12", "13"]
    np.testing.assert_array_equal(ts, times)


def test_npz_only_array_and_iso_time(tmp_path):
    path = tmp_path / "s.npz"
    np.savez(path, speed=np.ones((3, 2)), time=np.array(["2020-01-01T00", "2020-01-01T01", "2020-01-01T02"]))
    values, ids, ts = read_signals(path)
    assert values.shape == (3, 2, 1) and ids is None and len(ts) == 3


def test_npz_ambiguous_and_length_mismatch(tmp_path):
    path = tmp_path / "a.npz"
    np.savez(path, x=np.ones((3, 2)), y=np.ones((3, 2)))
    with raises_about(path, "cannot tell", "x, y"):
        read_signals(path)
    path = tmp_path / "b.npz"
    np.savez(path, data=np.ones((3, 2)), sensor_ids=np.array(["a"]))
    with raises_about(path, "1 array 'sensor_ids' for 2 sensors"):
        read_signals(path)


@pytest.mark.parametrize("shape", [(6, 3), (6, 3, 2)])
def test_npy_signals(tmp_path, shape):
    arr = np.arange(np.prod(shape), dtype=np.float64).reshape(shape)
    arr[0, 0] = np.nan
    path = tmp_path / "s.npy"
    np.save(path, arr)
    values, ids, ts = read_signals(path)
    assert values.shape == (6, 3, shape[2] if len(shape) == 3 else 1) and values.dtype == np.float32
    assert ids is None and ts is None
    assert np.isnan(values[0, 0]).all()
    np.testing.assert_array_equal(values.reshape(arr.shape)[1:], arr[1:])


@pytest.mark.parametrize("shape", [(5,), (2, 3, 4, 5)])
def test_wrong_ndim(tmp_path, shape):
    path = tmp_path / "s.npy"
    np.save(path, np.zeros(shape))
    with raises_about(path, "expected [T, N] or [T, N, C] values", f"got {len(shape)}-d"):
        read_signals(path)


def test_npy_object_array_not_unpickled(tmp_path):
    path = tmp_path / "s.npy"
    np.save(path, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with raises_about(path, "not a readable .npy"):
        read_signals(path)


# ----------------------------------------------------------------------------- adjacency


def test_dense_csv_adjacency(tmp_path):
    adj = np.array([[1.0, 0.5, 0.0], [0.5, 1.0, 0.25], [0.0, 0.25, 1.0]])
    path = tmp_path / "adj.csv"
    np.savetxt(path, adj, delimiter=",")
    out = read_adjacency(path, n_nodes=3)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, adj)


def test_dense_npy_adjacency_and_non_square(tmp_path):
    path = tmp_path / "adj.npy"
    np.save(path, np.eye(4))
    np.testing.assert_array_equal(read_adjacency(path), np.eye(4))
    np.save(path, np.ones((3, 4)))
    with raises_about(path, "(3, 4)"):
        read_adjacency(path)


def test_adjacency_size_mismatch(tmp_path):
    path = tmp_path / "adj.csv"
    np.savetxt(path, np.eye(3), delimiter=",")
    with raises_about(path, "adjacency is 3 x 3 but the signals have 4 sensors"):
        read_adjacency(path, n_nodes=4)


def _pems_distances(tmp_path, ends) -> tuple[Path, np.ndarray]:
    cost = np.array([100.0, 200.0, 300.0, 900.0])
    lines = ["from,to,cost"] + [f"{a},{b},{c}" for (a, b), c in zip(ends, cost)]
    return write(tmp_path / "PEMS04.csv", "\n".join(lines) + "\n"), cost


def _kernel(cost: np.ndarray) -> np.ndarray:
    w = np.exp(-((cost / cost.std()) ** 2))
    w[w < 0.1] = 0
    return w


def test_edge_list_indices_gaussian_kernel(tmp_path):
    path, cost = _pems_distances(tmp_path, [(0, 1), (1, 2), (2, 3), (3, 0)])
    w = _kernel(cost)
    assert (w == 0).sum() == 1  # the 900 edge falls under the 0.1 threshold
    adj = read_adjacency(path, n_nodes=5)
    assert adj.shape == (5, 5) and adj.dtype == np.float32
    np.testing.assert_allclose(adj, adj.T)
    for (a, b), wi in zip([(0, 1), (1, 2), (2, 3), (3, 0)], w):
        assert adj[a, b] == pytest.approx(wi, rel=1e-6)
    assert adj[3, 0] == 0 and np.all(np.diag(adj) == 0) and np.all(adj[4] == 0)
    assert read_adjacency(path).shape == (4, 4)  # size from the largest index


def test_edge_list_sensor_ids(tmp_path):
    path, cost = _pems_distances(tmp_path, [(317842, 318711), (318711, 312123), (312123, 313344), (313344, 317842)])
    ids = ["312123", "313344", "317842", "318711"]
    adj = read_adjacency(path, sensor_ids=ids)
    w = _kernel(cost)
    assert adj[2, 3] == pytest.approx(w[0], rel=1e-6) and adj[3, 2] == adj[2, 3]
    assert adj[3, 0] == pytest.approx(w[1], rel=1e-6)
    with raises_about(path, "'from'", "'317842'", "neither one of the sensor ids"):
        read_adjacency(path, sensor_ids=ids[:3])


def test_edge_list_weight_and_missing_column(tmp_path):
    path = write(tmp_path / "w.csv", "From,To,Weight\n0,1,0.7\n2,1,0.2\n")
    adj = read_adjacency(path, n_nodes=3)
    assert adj[0, 1] == adj[1, 0] == pytest.approx(0.7) and adj[1, 2] == adj[2, 1] == pytest.approx(0.2)
    bad = write(tmp_path / "bad.csv", "from,dst,cost\n0,1,1.0\n")
    with raises_about(bad, "'to'"):
        read_adjacency(bad)
    out_of_range = write(tmp_path / "oor.csv", "from,to,weight\n0,7,1.0\n")
    with raises_about(out_of_range, "'7'", "below 3"):
        read_adjacency(out_of_range, n_nodes=3)


def _dcrnn_pickle(tmp_path) -> tuple[Path, list[str], np.ndarray]:
    ids = ["773869", "767541", "767542"]
    adj = np.array([[1.0, 0.2, 0.0], [0.3, 1.0, 0.4], [0.0, 0.5, 1.0]], dtype=np.float32)
    path = tmp_path / "adj_mx.pkl"
    with open(path, "wb") as f:
        pickle.dump([ids, {s: i for i, s in enumerate(ids)}, adj], f, protocol=2)
    return path, ids, adj


def test_dcrnn_pickle(tmp_path):
    path, ids, adj = _dcrnn_pickle(tmp_path)
    obj = safe_load_pickle(path)
    assert obj[0] == ids and obj[1]["767541"] == 1
    np.testing.assert_array_equal(read_adjacency(path), adj)
    order = ["767542", "773869", "767541"]
    out = read_adjacency(path, sensor_ids=order, n_nodes=3)
    np.testing.assert_array_equal(out, adj[np.ix_([2, 0, 1], [2, 0, 1])])
    with raises_about(path, "'999'"):
        read_adjacency(path, sensor_ids=["773869", "999", "767541"])


def test_python2_style_names_and_containers(tmp_path):
    path = tmp_path / "p.pkl"
    obj = {"s": {1, 2}, "f": frozenset({3}), "c": 1 + 2j, "b": b"x\x00", "t": (1.5, None, True)}
    path.write_bytes(pickle.dumps(obj, protocol=0))  # refers to __builtin__.set etc.
    assert safe_load_pickle(path) == obj


class _Evil:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"echo pwned > {self.marker}",))


def test_malicious_pickle_is_refused(tmp_path, capfd):
    marker = tmp_path / "pwned"
    path = tmp_path / "adj_mx.pkl"
    path.write_bytes(pickle.dumps([["a"], {"a": 0}, _Evil(marker)], protocol=2))
    with raises_about(path, "system", "not allowed"):
        safe_load_pickle(path)
    with raises_about(path, "not allowed"):
        read_adjacency(path)
    assert not marker.exists()
    assert "pwned" not in capfd.readouterr().out


def test_corrupt_pickle(tmp_path):
    path = tmp_path / "adj_mx.pkl"
    path.write_bytes(b"\x80\x02]q\x00(X\x01\x00")
    with raises_about(path, "not a readable pickle"):
        safe_load_pickle(path)


# ----------------------------------------------------------------------------- locations


def test_locations_reorder_and_aliases(tmp_path):
    path = write(tmp_path / "loc.csv", "index,Sensor_ID,LAT,lng\n0,773869.0,34.1,-118.3\n1,767541,34.2,-118.2\n")
    lat, lon = read_locations(path, ["767541", " 773869 "])
    np.testing.assert_allclose(lat, [34.2, 34.1], rtol=1e-6)
    np.testing.assert_allclose(lon, [-118.2, -118.3], rtol=1e-6)
    lat, lon = read_locations(path, None)
    assert lat.dtype == np.float32 and lat.shape == (2,)


def test_locations_errors(tmp_path):
    path = write(tmp_path / "loc.csv", "sensor_id,latitude,longitude\n1,34.1,-118.3\n")
    with raises_about(path, "sensor id '2'"):
        read_locations(path, ["1", "2"])
    no_lon = write(tmp_path / "nolon.csv", "id,lat\n1,34.1\n")
    with raises_about(no_lon, "'longitude'"):
        read_locations(no_lon, None)


# ----------------------------------------------------------------------------- standard formats


def test_pems_npz(tmp_path):
    data = np.random.default_rng(1).random((7, 5, 3)) * 100
    path = tmp_path / "PEMS04.npz"
    np.savez(path, data=data)
    out = read_pems_npz(path)
    assert out.shape == (7, 5, 3) and out.dtype == np.float32
    np.testing.assert_allclose(out, data, rtol=1e-6)
    np.savez(tmp_path / "PEMS03.npz", data=data[:, :, :1])
    assert read_pems_npz(tmp_path / "PEMS03.npz").shape == (7, 5, 1)
    assert sniff_kind(path) == "graph"
    np.savez(tmp_path / "nodata.npz", flow=data)
    with raises_about(tmp_path / "nodata.npz", "'data'"):
        read_pems_npz(tmp_path / "nodata.npz")


def test_metr_la_h5(tmp_path):
    index = pd.date_range("2012-03-01", periods=4, freq="5min")
    speeds = np.array([[64.4, 0.0], [0.0, 61.0], [63.1, 60.5], [62.0, 59.9]])
    df = pd.DataFrame(speeds, index=index, columns=["773869", "767541"])
    path = tmp_path / "metr-la.h5"
    df.to_hdf(path, key="df")
    values, ids, times = read_metr_h5(path)
    assert values.shape == (4, 2, 1) and values.dtype == np.float32
    assert ids == ["773869", "767541"]
    assert np.isnan(values[0, 1, 0]) and np.isnan(values[1, 0, 0]) and np.isnan(values).sum() == 2
    assert values[2, 0, 0] == pytest.approx(63.1)
    np.testing.assert_array_equal(times, index.values.astype("datetime64[ns]"))
    assert sniff_kind(path) == "graph"
    assert read_signals(path)[1] == ids


def test_pems_bay_h5_integer_columns(tmp_path):
    df = pd.DataFrame(np.ones((3, 2)), index=pd.date_range("2017-01-01", periods=3, freq="5min"), columns=[400001, 400017])
    path = tmp_path / "pems-bay.h5"
    df.to_hdf(path, key="speed")
    assert read_metr_h5(path)[1] == ["400001", "400017"]


def _taxibj(tmp_path, dates) -> tuple[Path, np.ndarray]:
    data = np.random.default_rng(2).integers(0, 500, (len(dates), 2, 32, 32)).astype(np.float64)
    path = tmp_path / "BJ16_M32x32_T30_InOut.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("data", data=data)
        f.create_dataset("date", data=np.array(dates))
    return path, data


def test_taxibj_h5(tmp_path):
    path, data = _taxibj(tmp_path, [b"2013070101", b"2013070102", b"2013070148"])
    values, times = read_taxibj_h5(path)
    assert values.shape == (3, 2, 32, 32) and values.dtype == np.float32
    np.testing.assert_array_equal(values, data)
    expected = np.array(["2013-07-01T00:00", "2013-07-01T00:30", "2013-07-01T23:30"], dtype="datetime64[ns]")
    np.testing.assert_array_equal(times, expected)
    assert sniff_kind(path) == "grid"
    grid = read_grid(path)
    assert grid[0].shape == (3, 2, 32, 32) and grid[4] == ["inflow", "outflow"]


def test_taxibj_bad_slot(tmp_path):
    path, _ = _taxibj(tmp_path, [b"2013070101", b"2013070149"])
    with raises_about(path, "'date'", "2013070149"):
        read_taxibj_h5(path)


def _weatherbench(levels: list[int] | None) -> xr.Dataset:
    rng = np.random.default_rng(3)
    coords = {"time": pd.date_range("1979-01-01", periods=4, freq="6h"), "lat": [-5.625, 0.0, 5.625], "lon": [0.0, 5.625]}
    if levels is None:
        return xr.Dataset({"t2m": (("time", "lat", "lon"), rng.random((4, 3, 2)).astype(np.float32) + 270)}, coords=coords)
    coords["level"] = levels
    z = rng.random((4, len(levels), 3, 2)).astype(np.float32)
    return xr.Dataset({"z": (("time", "level", "lat", "lon"), z)}, coords=coords)


def test_weatherbench_netcdf(tmp_path):
    ds = _weatherbench(None)
    path = tmp_path / "2m_temperature_1979_5.625deg.nc"
    ds.to_netcdf(path, engine="h5netcdf")
    values, lat, lon, times, channels = read_grid(path)
    assert values.shape == (4, 1, 3, 2) and values.dtype == np.float32 and channels == ["t2m"]
    np.testing.assert_array_equal(values[:, 0], ds["t2m"].values)
    np.testing.assert_array_equal(lat, [-5.625, 0.0, 5.625])
    np.testing.assert_array_equal(times, ds["time"].values)
    assert sniff_kind(path) == "grid"


def test_weatherbench_levels_and_netcdf3(tmp_path):
    ds = _weatherbench([500, 850])
    ds["t2m"] = _weatherbench(None)["t2m"]
    path = tmp_path / "geopotential.nc"
    ds.to_netcdf(path, engine="scipy")  # classic netCDF3: read through the scipy fallback
    values, lat, lon, times, channels = read_grid(path)
    assert sorted(channels) == ["t2m", "z_500", "z_850"] and values.shape == (4, 3, 3, 2)
    assert channels.index("z_850") == channels.index("z_500") + 1  # levels stay in order
    np.testing.assert_array_equal(values[:, channels.index("z_850")], ds["z"].sel(level=850).values)
    np.testing.assert_array_equal(values[:, channels.index("t2m")], ds["t2m"].values)
    values, *_, channels = read_grid(path, variable="t2m")
    assert channels == ["t2m"] and values.shape == (4, 1, 3, 2)
    with raises_about(path, "'q'"):
        read_grid(path, variable="q")


def test_grid_npz(tmp_path):
    frames = np.random.default_rng(4).random((5, 3, 4)).astype(np.float32)
    path = tmp_path / "grid.npz"
    np.savez(path, t2m=frames, latitude=np.array([58.0, 57.75, 57.5]), longitude=np.arange(4.0),
             time=np.array([f"2019-03-01T0{h}:00:00" for h in range(5)]))
    values, lat, lon, times, channels = read_grid(path)
    assert values.shape == (5, 1, 3, 4) and channels == ["t2m"]
    np.testing.assert_array_equal(values[:, 0], frames)
    assert lat.tolist() == [58.0, 57.75, 57.5] and lon.shape == (4,)
    assert times[4] - times[0] == np.timedelta64(4, "h")
    assert sniff_kind(path) == "grid"
    four = tmp_path / "four.npz"
    np.savez(four, frames=np.zeros((2, 2, 3, 4)))
    assert read_grid(four)[4] == ["frames_0", "frames_1"] and sniff_kind(four) == "grid"
    short = tmp_path / "short.npz"
    np.savez(short, t2m=frames, lat=np.zeros(2))
    with raises_about(short, "2 latitudes for 3 grid rows"):
        read_grid(short)


def test_sniff_kind_npy_csv(tmp_path):
    for shape, kind in [((4, 3), "graph"), ((4, 3, 2), "graph"), ((4, 1, 3, 3), "grid")]:
        path = tmp_path / f"{len(shape)}.npy"
        np.save(path, np.zeros(shape))
        assert sniff_kind(path) == kind
    assert sniff_kind(write(tmp_path / "s.csv", "a\n1\n")) == "graph"


# ----------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "fn",
    [read_signals, read_adjacency, lambda p: read_locations(p, None), read_pems_npz, read_metr_h5,
     read_taxibj_h5, read_grid, sniff_kind, safe_load_pickle],
)
def test_missing_file(tmp_path, fn):
    path = tmp_path / "absent.csv"
    with raises_about(path, "no such file"):
        fn(path)


def test_unsupported_suffix(tmp_path):
    path = write(tmp_path / "s.txt", "1,2\n")
    with raises_about(path, "'.txt'"):
        read_signals(path)


# ----------------------------------------------------------------------------- real shared files


@needs_shared
def test_real_los_speed():
    values, ids, times = read_signals(METR / "los_speed.csv")
    assert values.shape == (2016, 207, 1) and values.dtype == np.float32
    assert ids[0] == "773869" and times is None
    assert not np.isnan(values).any() and 1.0 <= values.min() and values.max() <= 70.0


@needs_shared
def test_real_adjacencies():
    ids = read_signals(METR / "los_speed.csv")[1]
    dcrnn = read_adjacency(METR / "adj_mx.pkl", sensor_ids=ids, n_nodes=207)
    assert dcrnn.shape == (207, 207) and int((dcrnn != 0).sum()) == 1722
    np.testing.assert_array_equal(dcrnn, safe_load_pickle(METR / "adj_mx.pkl")[2])  # same order
    tgcn = read_adjacency(METR / "los_adj.csv", n_nodes=207)
    assert tgcn.shape == (207, 207) and int((tgcn != 0).sum()) == 2833


@needs_shared
def test_real_locations_reorder():
    path = METR / "graph_sensor_locations.csv"
    table = pd.read_csv(path)
    ids = [str(s) for s in table["sensor_id"]][::-1]
    lat, lon = read_locations(path, ids)
    np.testing.assert_allclose(lat, table["latitude"].to_numpy()[::-1], rtol=1e-6)
    np.testing.assert_allclose(lon, table["longitude"].to_numpy()[::-1], rtol=1e-6)


@needs_shared
def test_real_t2m():
    path = SHARED / "era5-t2m-uk" / "t2m.npz"
    values, lat, lon, times, channels = read_grid(path)
    assert values.shape == (744, 1, 33, 49) and channels == ["t2m"]
    assert lat[0] == 58.0 and lon[0] == -10.0 and len(times) == 744
    assert times[0] == np.datetime64("2019-03-01T00:00") and sniff_kind(path) == "grid"
