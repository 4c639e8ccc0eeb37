"""Edge-list adjacency CSVs: the endpoint column pairs from,to / source,target / src,dst and
the weight columns cost / distance (Gaussian kernel) and weight (as is)."""

from __future__ import annotations

import numpy as np
import pytest

from sparsest.data.readers import read_adjacency

from .test_readers import raises_about, write

EDGES = [(0, 1), (1, 2), (2, 3), (3, 0)]
DISTANCES = [100.0, 250.0, 400.0, 900.0]


def _csv(tmp_path, name: str, header: str, values=DISTANCES):
    rows = "".join(f"{a},{b},{v}\n" for (a, b), v in zip(EDGES, values))
    return write(tmp_path / name, header + "\n" + rows)


def _kernel(d: np.ndarray) -> np.ndarray:
    w = np.exp(-((d / d.std()) ** 2))
    w[w < 0.1] = 0
    return w


def test_source_target_weight_is_used_as_is(tmp_path):
    path = write(tmp_path / "nx.csv", "source,target,weight\n0,1,0.5\n1,2,2.0\n3,1,0.25\n")
    expected = np.zeros((4, 4), np.float32)
    for a, b, w in [(0, 1, 0.5), (1, 2, 2.0), (3, 1, 0.25)]:
        expected[a, b] = expected[b, a] = w
    np.testing.assert_array_equal(read_adjacency(path), expected)


@pytest.mark.parametrize("header", ["src,dst,distance", "Source,Target,Distance", "SRC,DST,COST"])
def test_distances_give_the_same_gaussian_weights_for_every_pair(tmp_path, header):
    reference = read_adjacency(_csv(tmp_path, "ref.csv", "from,to,distance"), n_nodes=4)
    adj = read_adjacency(_csv(tmp_path, "other.csv", header), n_nodes=4)
    np.testing.assert_array_equal(adj, reference)
    w = _kernel(np.array(DISTANCES))
    assert w[-1] == 0 and w[0] > 0.1  # the kernel really ran: not the raw distances
    for (a, b), wi in zip(EDGES, w):
        assert adj[a, b] == adj[b, a] == pytest.approx(wi, rel=1e-6)


def test_src_dst_with_sensor_ids(tmp_path):
    path = write(tmp_path / "e.csv", "src,dst,weight\n317842,318711,0.9\n318711,312123,0.4\n")
    adj = read_adjacency(path, sensor_ids=["312123", "317842", "318711"])
    assert adj[1, 2] == adj[2, 1] == pytest.approx(0.9)
    assert adj[0, 2] == adj[2, 0] == pytest.approx(0.4) and adj[0, 1] == 0


def test_endpoint_errors_name_the_column(tmp_path):
    oor = write(tmp_path / "oor.csv", "source,target,weight\n0,9,1.0\n")
    with raises_about(oor, "column 'target'", "'9'", "below 3"):
        read_adjacency(oor, n_nodes=3)
    empty = write(tmp_path / "empty.csv", "src,dst,weight\n0,,1.0\n")
    with raises_about(empty, "empty 'src' or 'dst' cell"):
        read_adjacency(empty)


def test_half_a_pair_or_no_pair_is_refused(tmp_path):
    half = write(tmp_path / "half.csv", "source,to,weight\n0,1,1.0\n")
    with raises_about(half, "'to' without 'from' and 'source' without 'target'", "'src'/'dst'"):
        read_adjacency(half)
    none = write(tmp_path / "none.csv", "a,b,weight\n0,1,1.0\n")
    with raises_about(none, "'from'/'to'", "'source'/'target'", "'src'/'dst'", "columns: a, b, weight"):
        read_adjacency(none)


def test_endpoints_only_give_unit_weights_and_unknown_columns_are_refused(tmp_path):
    path = write(tmp_path / "u.csv", "source,target\n0,1\n2,1\n")
    expected = np.array([[0, 1, 0], [1, 0, 1], [0, 1, 0]], np.float32)
    np.testing.assert_array_equal(read_adjacency(path), expected)
    misnamed = write(tmp_path / "m.csv", "source,target,wieght\n0,1,0.3\n")
    with raises_about(misnamed, "no 'cost', 'distance' or 'weight' column", "wieght"):
        read_adjacency(misnamed)
