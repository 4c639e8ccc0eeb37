"""Which input entries belong to which sensor (DynST's stream morph, Sec. 5.1).

Graph data: sensor i is node i; a per-sensor value multiplies ``x[:, :, i, :]`` for all
T steps and C channels. Grid data: the H x W field is cut into ``p x p`` patches (border
patches are smaller when p does not divide H or W); sensor j is patch j in row-major order
and its value multiplies every pixel of the patch, all steps and channels.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn


class SensorLayout(nn.Module):
    """Maps a per-sensor vector ``[N_s]`` onto the input layout.

    Args:
        kind: ``"graph"`` or ``"grid"``.
        n_nodes: graph N (ignored for grids).
        grid_shape: (H, W) for grids.
        patch_size: p, patch side in pixels (grids only).

    Attributes:
        n_sensors: N_s (graph: N; grid: ceil(H/p) * ceil(W/p)).
    """

    def __init__(self, kind: str, n_nodes: int = 0, grid_shape: tuple[int, int] | None = None, patch_size: int = 4):
        super().__init__()
        self.kind = kind
        if kind == "graph":
            self.n_sensors = n_nodes
            self.register_buffer("pixel_to_sensor", torch.zeros(0, dtype=torch.long))
            self.patch_size = 0
        else:
            H, W = grid_shape
            p = patch_size
            self.patch_size = p
            self.grid_shape = (H, W)
            self.patches = (math.ceil(H / p), math.ceil(W / p))
            self.n_sensors = self.patches[0] * self.patches[1]
            rows = torch.arange(H) // p
            cols = torch.arange(W) // p
            self.register_buffer("pixel_to_sensor", rows[:, None] * self.patches[1] + cols[None, :])  # [H, W]

    def expand(self, v: torch.Tensor) -> torch.Tensor:
        """Broadcastable multiplier for the input.

        Shapes: ``v`` ``[N_s]`` -> graph ``[N, 1]`` (for ``x`` ``[B, T, N, C]``) or grid
        ``[1, H, W]`` (for ``x`` ``[B, T, C, H, W]``).
        """
        if self.kind == "graph":
            return v[:, None]
        return v[self.pixel_to_sensor][None]

    def node_mask(self, keep: torch.Tensor) -> torch.Tensor:
        """Per-output-location bool mask: graph ``[N, 1]``, grid ``[1, H, W]``."""
        return self.expand(keep)

    def sensor_coordinates(self, latitude: np.ndarray | None, longitude: np.ndarray | None):
        """Latitude and longitude ``[N_s]`` of each sensor (grid: patch centre), or Nones."""
        if latitude is None or longitude is None:
            return None, None
        if self.kind == "graph":
            return np.asarray(latitude, float), np.asarray(longitude, float)
        idx = self.pixel_to_sensor.numpy()
        lat = np.asarray(latitude, float)[:, None] * np.ones(self.grid_shape)
        lon = np.ones(self.grid_shape) * np.asarray(longitude, float)[None, :]
        counts = np.bincount(idx.ravel(), minlength=self.n_sensors)
        return (
            np.bincount(idx.ravel(), lat.ravel(), self.n_sensors) / counts,
            np.bincount(idx.ravel(), lon.ravel(), self.n_sensors) / counts,
        )
