"""A sensor graph from coordinates: Gaussian kernel of the haversine distance over the k
nearest sensors.

DCRNN (Li et al., ICLR 2018, Eq. 10 and its ``gen_adj_mx.py``) builds the METR-LA road graph
as ``W_ij = exp(-(d_ij / sigma)^2)`` with ``sigma`` the standard deviation of the distances,
keeping only the strongest links. Without road distances we use the great-circle
(haversine) distance and keep each sensor's ``k`` nearest neighbours.
"""

from __future__ import annotations

import numpy as np

from ..errors import DataError

EARTH_RADIUS_KM = 6371.0088  # mean Earth radius (IUGG)
DEFAULT_KNN = 8


def haversine_km(lat1, lon1, lat2, lon2) -> np.ndarray:
    """Great-circle distance [km] between points given in degrees (broadcasting)."""
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dp, dl = p2 - p1, np.radians(lon2) - np.radians(lon1)
    a = np.sin(dp / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))


def knn_graph(latitude: np.ndarray, longitude: np.ndarray, k: int = DEFAULT_KNN, source: str = "locations") -> np.ndarray:
    """Weighted adjacency ``[N, N]`` over each sensor's ``k`` nearest sensors.

    ``W_ij = exp(-(d_ij / sigma)^2)`` for j among the k nearest of i (haversine distance
    ``d`` in km, ``sigma`` = standard deviation of all those k-NN distances), made symmetric
    by ``max(W_ij, W_ji)``, with self-loops ``W_ii = 1`` as in DCRNN's ``adj_mx``. Sensors
    without coordinates (NaN latitude or longitude) have no place on the map: they get only
    their self-loop (isolated nodes; a backbone's adaptive adjacency, if any, can still link
    them). Memory ``O(N^2)`` (float32), computed in row blocks.

    Args:
        latitude, longitude: ``[N]`` degrees (NaN = unknown).
        k: neighbours per sensor, >= 1 (capped at the number of located sensors - 1).
        source: name used in error messages.

    Returns:
        float32 ``[N, N]`` non-negative weights.

    Raises:
        DataError: ``k`` < 1, lengths differ, or fewer than two sensors have coordinates.
    """
    lat = np.asarray(latitude, dtype=np.float64)
    lon = np.asarray(longitude, dtype=np.float64)
    if lat.shape != lon.shape or lat.ndim != 1:
        raise DataError(f"{source}: latitude and longitude must be two [N] arrays of the same length")
    if int(k) < 1:
        raise DataError(f"--knn: must be >= 1, got {k}")
    n = lat.size
    located = np.flatnonzero(np.isfinite(lat) & np.isfinite(lon))
    if located.size < 2:
        raise DataError(f"{source}: fewer than two sensors have coordinates; cannot build a distance graph")
    k = min(int(k), located.size - 1)
    la, lo = lat[located], lon[located]
    nbr = np.empty((located.size, k), dtype=np.int64)
    dist = np.empty((located.size, k), dtype=np.float64)
    block = max(1, 2_000_000 // located.size)
    for s in range(0, located.size, block):
        d = haversine_km(la[s : s + block, None], lo[s : s + block, None], la[None], lo[None])  # [b, M]
        rows = np.arange(d.shape[0])
        d[rows, s + rows] = np.inf  # not its own neighbour
        part = np.argpartition(d, k - 1, axis=1)[:, :k]
        nbr[s : s + block] = part
        dist[s : s + block] = np.take_along_axis(d, part, axis=1)
    sigma = float(np.std(dist))
    if not sigma > 0:
        sigma = float(np.mean(dist)) or 1.0  # all neighbours equally far
    w = np.exp(-((dist / sigma) ** 2))
    adj = np.zeros((n, n), dtype=np.float32)
    rows = np.repeat(located, k)
    cols = located[nbr.ravel()]
    adj[rows, cols] = w.ravel()
    adj = np.maximum(adj, adj.T)
    adj[np.arange(n), np.arange(n)] = 1.0
    return adj
