"""Adjacency weights and sensor coordinates out of their range are refused, naming the file."""

import numpy as np
import pytest

from sparsest.data.readers import read_adjacency, read_locations
from sparsest.errors import DataError


def test_negative_or_nan_weights_are_refused(tmp_path):
    a = np.eye(3)
    a[0, 1] = -0.5
    np.savetxt(tmp_path / "neg.csv", a, delimiter=",")
    with pytest.raises(DataError, match=r"neg.csv: 1 edge weight\(s\) are negative \(first -0.5 at row 0, column 1\)"):
        read_adjacency(tmp_path / "neg.csv", None, 3)
    a[0, 1] = np.nan
    np.save(tmp_path / "nan.npy", a)
    with pytest.raises(DataError, match="nan.npy: adjacency holds 1 NaN"):
        read_adjacency(tmp_path / "nan.npy", None, 3)


def test_latitude_and_longitude_ranges(tmp_path):
    (tmp_path / "loc.csv").write_text("sensor_id,latitude,longitude\na,10,20\nb,95,20\n")
    with pytest.raises(DataError, match="loc.csv: column 'latitude': 95 on line 3 is outside"):
        read_locations(tmp_path / "loc.csv", ["a", "b"])
    (tmp_path / "loc.csv").write_text("sensor_id,latitude,longitude\na,10,200\nb,45,20\n")
    with pytest.raises(DataError, match="longitude"):
        read_locations(tmp_path / "loc.csv", ["a", "b"])
    (tmp_path / "loc.csv").write_text("sensor_id,latitude,longitude\na,10,20\nb,-45,-120\n")
    lat, lon = read_locations(tmp_path / "loc.csv", ["b", "a"])
    assert lat.tolist() == [-45, 10] and lon.tolist() == [-120, 20]
