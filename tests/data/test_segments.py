"""Series with gaps: windows never cross a gap; segment tables; the k-NN distance graph;
the divvy-chicago named data set."""

import numpy as np
import pandas as pd
import pytest

from sparsest.data import SpatioTemporalData, StandardScaler, WindowDataset, chronological_split
from sparsest.data.graph import haversine_km, knn_graph
from sparsest.data.segments import keep_segments, read_segment_table, segments_from_timestamps
from sparsest.datasets import load_dataset
from sparsest.errors import ConfigError, DataError
from tests.conftest import SHARED_DATA, requires_shared


def gapped(seed=0):
    """300 five-minute rows in three runs of 120, 60 and 120 rows with gaps between."""
    rng = np.random.default_rng(seed)
    t0 = np.datetime64("2024-01-01T00:00")
    step = np.timedelta64(5, "m")
    ts = np.concatenate([t0 + np.arange(120) * step, t0 + (200 + np.arange(60)) * step, t0 + (400 + np.arange(120)) * step])
    values = rng.normal(size=(300, 4, 1)).astype(np.float32)
    return ts.astype("datetime64[ns]"), values


def test_segments_from_timestamps_find_the_gaps():
    ts, _ = gapped()
    seg = segments_from_timestamps(ts)
    assert seg.tolist() == [[0, 120], [120, 180], [180, 300]]
    assert segments_from_timestamps(ts[:120]) is None


def test_windows_never_cross_a_gap():
    ts, values = gapped()
    data = SpatioTemporalData(values, "graph", timestamps=ts, steps_per_day=288, segments=segments_from_timestamps(ts)).validate()
    split = chronological_split(data.n_steps, 12, 12, segments=data.segments)
    assert split.n_steps("train") + split.n_steps("val") + split.n_steps("test") == 300
    assert split.train == (0, 210) and split.val == (210, 240) and split.test == (240, 300)
    assert split.runs("train") == [(0, 120), (120, 180), (180, 210)]
    ds = WindowDataset(data, split.train, 12, 12, StandardScaler.fit(data, split.train), runs=split.runs("train"))
    assert len(ds) == (120 - 23) + (60 - 23) + (30 - 23)
    step = np.timedelta64(5, "m")
    for i in range(len(ds)):
        t0 = int(ds.starts[i])
        window_ts = ts[t0 : t0 + 24]
        assert (np.diff(window_ts) == step).all(), f"window {i} crosses a gap"
    # a run shorter than one window gives no window; a split without a long enough run is an error
    with pytest.raises(DataError, match="longest unbroken run"):
        chronological_split(data.n_steps, 40, 40, segments=data.segments)


def test_keep_segments_drops_rows_outside_runs():
    ts, values = gapped()
    data = SpatioTemporalData(values, "graph", timestamps=ts, segments=np.array([[0, 100], [150, 170], [200, 300]])).validate()
    kept = keep_segments(data, min_length=30)
    assert kept.n_steps == 200 and kept.segments.tolist() == [[0, 100], [100, 200]]
    np.testing.assert_array_equal(kept.values[100:], values[200:])
    assert kept.timestamps[100] == ts[200]


def test_segment_table_rows_and_timestamps(tmp_path):
    ts, _ = gapped()
    rows = tmp_path / "rows.csv"
    rows.write_text("start,end\n0,100\n150,170\n")
    assert read_segment_table(rows, 300, ts).tolist() == [[0, 100], [150, 170]]
    stamps = tmp_path / "stamps.csv"
    stamps.write_text(f"start,end\n{pd.Timestamp(ts[0])},{pd.Timestamp(ts[99])}\n")
    assert read_segment_table(stamps, 300, ts).tolist() == [[0, 100]]
    bad = tmp_path / "bad.csv"
    bad.write_text("start,end\n0,100\n50,170\n")
    with pytest.raises(DataError, match="line 3: segments must be sorted"):
        read_segment_table(bad, 300, ts)
    (tmp_path / "none.csv").write_text("begin,end\n0,1\n")
    with pytest.raises(DataError, match="no 'start' column"):
        read_segment_table(tmp_path / "none.csv", 300, ts)
    (tmp_path / "far.csv").write_text("start,end\n0,400\n")
    with pytest.raises(DataError, match="outside"):
        read_segment_table(tmp_path / "far.csv", 300, ts)


def test_user_csv_with_gaps_and_locations_builds_runs_and_knn_graph(tmp_path):
    ts, values = gapped()
    csv = tmp_path / "signals.csv"
    df = pd.DataFrame(values[..., 0], columns=["a", "b", "c", "d"])
    df.insert(0, "time", pd.to_datetime(ts).strftime("%Y-%m-%d %H:%M"))
    df.to_csv(csv, index=False)
    loc = tmp_path / "loc.csv"
    loc.write_text("sensor_id,latitude,longitude\na,41.88,-87.63\nb,41.89,-87.62\nc,41.90,-87.64\nd,41.70,-87.60\n")
    data, _ = load_dataset(str(csv), locations=loc, knn=2)
    assert data.segments.tolist() == [[0, 120], [120, 180], [180, 300]]
    assert data.steps_per_day == 288
    assert data.adjacency.shape == (4, 4) and (np.diag(data.adjacency) == 1).all()
    assert any("2-nearest" in n for n in data.notes)
    with pytest.raises(ConfigError, match="--knn"):
        load_dataset(str(csv), knn=2)  # no --locations: nothing to build from
    seg = tmp_path / "seg.csv"
    seg.write_text("start,end\n0,100\n")
    data, _ = load_dataset(str(csv), segments=seg)
    assert data.n_steps == 100 and data.segments.tolist() == [[0, 100]]


def test_knn_graph_weights():
    lat = np.array([0.0, 0.0, 0.0, 0.0, np.nan])
    lon = np.array([0.0, 0.01, 0.02, 1.0, np.nan])
    a = knn_graph(lat, lon, k=1)
    assert np.allclose(a, a.T) and (np.diag(a) == 1).all()
    d01 = haversine_km(0, 0, 0, 0.01)
    assert abs(d01 - 1.112) < 0.01  # 0.01 degree of longitude at the equator ~ 1.11 km
    assert a[0, 1] > 0 and a[0, 2] == 0  # 0's nearest is 1 only
    assert a[3, 2] > 0 and a[3, 2] < a[0, 1]  # 3's nearest (2) is far: weaker link
    assert (a[4, :4] == 0).all() and a[4, 4] == 1  # no coordinates: isolated, self-loop only
    with pytest.raises(DataError, match="--knn"):
        knn_graph(lat, lon, k=0)


@requires_shared
def test_divvy_chicago_named_data_set():
    data, entry = load_dataset("divvy-chicago", SHARED_DATA)
    assert entry.window == 12 and entry.horizon == 12
    assert data.n_steps == 74_695 and len(data.segments) == 16
    assert data.n_nodes == 300 and any("6 of 306 stations dropped" in n for n in data.notes)
    assert 0.05 < data.missing_fraction < 0.2  # -1 readings are NaN, not zeros
    assert np.nanmin(data.values) >= 0
    step = np.timedelta64(5, "m")
    for a, b in data.segments:
        assert (np.diff(data.timestamps[a:b]) == step).all()  # each run is unbroken
    starts = data.segments[1:, 0]
    assert ((data.timestamps[starts] - data.timestamps[starts - 1]) > step).all()  # a gap between runs
    deg = (data.adjacency > 0).sum(axis=1)
    assert deg.min() >= 9  # self-loop + 8 nearest (more where the graph was symmetrised)
    assert data.lower_bound == 0.0 and data.resolution == 1.0  # bikes: whole, non-negative counts


def test_count_forecasts_are_rounded_to_the_resolution_and_clipped():
    import torch

    scaler = StandardScaler(np.array([2.0]), np.array([1.0]), "graph", floor=0.0, resolution=1.0)
    y = scaler.physical(torch.tensor([[-3.0], [-0.6], [0.4], [1.2]]))  # physical -1.0, 1.4, 2.4, 3.2
    assert y.flatten().tolist() == [0.0, 1.0, 2.0, 3.0]
    assert StandardScaler.from_dict(scaler.to_dict()).resolution == 1.0
    plain = StandardScaler(np.array([2.0]), np.array([1.0]), "graph")
    assert plain.physical(torch.tensor([[0.4]])).item() == pytest.approx(2.4)  # no resolution: untouched


def test_time_slice_clips_runs_and_checks_the_option():
    from sparsest.engine.prepare import parse_time_slice, time_slice

    ts, values = gapped()
    values[150:, 3] = np.nan  # sensor 3 unobserved after row 150
    data = SpatioTemporalData(values, "graph", timestamps=ts, segments=segments_from_timestamps(ts),
                              sensor_ids=list("abcd")).validate()
    assert parse_time_slice("-100:", 300) == (200, 300)
    cut = time_slice(data, "100:300")
    assert cut.n_steps == 200 and cut.segments.tolist() == [[0, 20], [20, 80], [80, 200]]
    late = time_slice(data, "-100:")
    assert late.n_nodes == 3 and late.sensor_ids == ["a", "b", "c"]  # no reading of d: dropped, said in notes
    assert any("dropped" in n for n in late.notes)
    for bad in ("abc", "1:2:3", "10:5", "x:"):
        with pytest.raises(ConfigError, match="--time-slice"):
            parse_time_slice(bad, 300)
