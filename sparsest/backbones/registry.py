"""One registry and one factory for forecasting backbones (timm style).

A backbone entry is a small function decorated with :func:`register_backbone` that takes a
:class:`DataSpec` and keyword options and returns an ``nn.Module`` whose forward is
``forward(x, tod, dow) -> y_hat``:

- graph backbones: ``x`` ``[B, T, N, C]`` -> ``y_hat`` ``[B, S, N, C]``;
- grid backbones: ``x`` ``[B, T, C, H, W]`` -> ``y_hat`` ``[B, S, C, H, W]``;
- ``tod`` / ``dow``: ``[B, T + S]`` int64 time-of-day slot and day of week of every input
  and target step (backbones that do not use time features ignore them).

Inputs and outputs are in scaled (z-score) units.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
from torch import nn

from ..errors import ConfigError


@dataclass(frozen=True)
class DataSpec:
    """What a backbone needs to know about the data.

    Attributes:
        kind: ``"graph"`` or ``"grid"``.
        window: T, input steps.
        horizon: S, forecast steps.
        n_channels: C.
        n_nodes: N (graph) or H * W (grid).
        height, width: H, W (grid only, else 0).
        steps_per_day: size of the time-of-day vocabulary.
        adjacency: ``[N, N]`` edge weights or ``None`` (graph only).
        patch_size: p, side of the square patches that are the sensors of grid data
            (patch-token backbones such as ViT use it as their patch size).
    """

    kind: str
    window: int
    horizon: int
    n_channels: int
    n_nodes: int
    height: int = 0
    width: int = 0
    steps_per_day: int = 1
    adjacency: np.ndarray | None = field(default=None, compare=False, repr=False)
    patch_size: int = 4

    def graph_args(self, *extra: str) -> dict:
        """The constructor arguments every graph backbone shares (``n_nodes, window, horizon,
        input_size``) plus the named ``extra`` fields of this spec (e.g. ``"adjacency"``)."""
        args = {"n_nodes": self.n_nodes, "window": self.window, "horizon": self.horizon, "input_size": self.n_channels}
        return {**args, **{name: getattr(self, name) for name in extra}}


@dataclass(frozen=True)
class BackboneEntry:
    name: str
    kind: str  # "graph", "grid" or "any"
    fn: Callable[..., nn.Module]
    summary: str
    trainable: bool = True


_REGISTRY: dict[str, BackboneEntry] = {}


def register_backbone(name: str, kind: str, summary: str, trainable: bool = True):
    """Decorator registering ``fn(spec, **kwargs) -> nn.Module`` under ``name``."""

    def deco(fn):
        if name in _REGISTRY:
            raise ValueError(f"backbone {name!r} registered twice")
        _REGISTRY[name] = BackboneEntry(name, kind, fn, summary, trainable)
        return fn

    return deco


def list_backbones(kind: str | None = None, trainable: bool | None = None) -> list[str]:
    """Registered backbone names, optionally only those for ``kind`` / trainable ones."""
    return sorted(
        n
        for n, e in _REGISTRY.items()
        if (kind is None or e.kind in (kind, "any")) and (trainable is None or e.trainable == trainable)
    )


def get_backbone_entry(name: str) -> BackboneEntry:
    """The registry entry of ``name``.

    Raises:
        ConfigError: unknown name (the message lists the known ones).
    """
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ConfigError(
            f"--backbone: unknown backbone {name!r}; known: {', '.join(list_backbones())}"
        ) from None


def create_backbone(name: str, spec: DataSpec, **kwargs) -> nn.Module:
    """Build backbone ``name`` for data described by ``spec``; ``None`` kwargs are dropped.

    Raises:
        ConfigError: unknown backbone, or a graph backbone asked for grid data (or the
            reverse).
    """
    entry = get_backbone_entry(name)
    if entry.kind not in (spec.kind, "any"):
        raise ConfigError(
            f"--backbone: {name} is a {entry.kind} backbone but the data are a {spec.kind}; "
            f"{spec.kind} backbones: {', '.join(list_backbones(spec.kind, trainable=True))}"
        )
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    return entry.fn(spec, **kwargs)
