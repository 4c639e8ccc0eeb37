"""One registry and one factory for forecasting backbones (timm style).

A backbone entry is a small function decorated with :func:`register_backbone` that takes a
:class:`DataSpec` and keyword options and returns an ``nn.Module`` whose forward is
``forward(x, tod, dow) -> y_hat``:

- graph backbones: ``x`` ``[B, T, N, C]`` -> ``y_hat`` ``[B, S, N, C]``;
- grid backbones: ``x`` ``[B, T, C, H, W]`` -> ``y_hat`` ``[B, S, C, H, W]``;
- ``tod`` / ``dow``: ``[B, T + S]`` int64 time-of-day slot and day of week of every input
  and target step (backbones that do not use time features ignore them).

Inputs and outputs are in scaled (z-score) units.

The options a backbone takes (``create_backbone(name, spec, **options)``, the
``backbone_options`` of a run) are the keyword parameters of its entry function; an entry
that forwards ``**kwargs`` to a model class named by its return annotation
(``def simvp(spec, **kwargs) -> SimVP``) takes that class's constructor parameters, less the
ones filled from the :class:`DataSpec` (:data:`DATA_ARGS`). Every backbone names the shared
ones alike: ``input_size`` (C), ``hidden_size`` (model width), ``window`` (T), ``horizon``
(S), ``n_nodes`` (N).
"""

from __future__ import annotations

import difflib
import inspect
import numbers
import types
import typing
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


# Constructor parameters that backbone entries fill from the DataSpec; never options.
DATA_ARGS = frozenset({"n_nodes", "window", "horizon", "input_size", "height", "width", "adjacency", "steps_per_day"})


def register_backbone(name: str, kind: str, summary: str, trainable: bool = True):
    """Decorator registering ``fn(spec, **kwargs) -> nn.Module`` under ``name``.

    ``summary`` is one line (``sparsest backbones`` prints ``name kind summary``).

    Raises:
        ValueError: ``name`` is already registered, or ``summary`` holds a line break.
    """

    def deco(fn):
        if name in _REGISTRY:
            raise ValueError(f"backbone {name!r} registered twice")
        if "\n" in summary or "\r" in summary:
            raise ValueError(f"backbone {name!r}: summary must be one line")
        _REGISTRY[name] = BackboneEntry(name, kind, fn, summary, trainable)
        return fn

    return deco


_LOADED = False
BUILTIN_MODULES = ("baselines", "graph.gwn", "graph.staeformer", "graph.stgcn", "graph.stid", "grid.convlstm", "grid.simvp",
                   "grid.tau", "grid.vit")


def _load_builtin() -> None:
    """Import the built-in backbone modules (they register themselves) on first use."""
    global _LOADED
    if _LOADED:
        return
    _LOADED = True
    import importlib

    for mod in BUILTIN_MODULES:
        importlib.import_module(f"sparsest.backbones.{mod}")


def list_backbones(kind: str | None = None, trainable: bool | None = None) -> list[str]:
    """Registered backbone names, optionally only those for ``kind`` / trainable ones."""
    _load_builtin()
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
    _load_builtin()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ConfigError(
            f"--backbone: unknown backbone {name!r}; known: {', '.join(list_backbones())}"
        ) from None


def _keyword_params(sig: inspect.Signature, skip: int = 0) -> dict[str, inspect.Parameter]:
    params = list(sig.parameters.values())[skip:]
    return {p.name: p for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}


def _hints(fn) -> dict:
    try:
        return typing.get_type_hints(fn)
    except Exception:  # unresolvable annotation: no kind checks
        return {}


def get_backbone_options(name: str) -> dict[str, inspect.Parameter] | None:
    """The options backbone ``name`` takes, ``{option: inspect.Parameter}`` in signature
    order (``Parameter.annotation`` resolved to a type where it can be), or ``None`` when they
    cannot be known (an entry taking ``**kwargs`` without a model class as its return
    annotation, or a class whose constructor takes ``**kwargs``).

    Raises:
        ConfigError: unknown name.
    """
    _load_builtin()
    fn = get_backbone_entry(name).fn
    sig = inspect.signature(fn)
    hints = _hints(fn)
    options = {n: p.replace(annotation=hints.get(n, p.annotation)) for n, p in _keyword_params(sig, skip=1).items()}
    if not any(p.kind == p.VAR_KEYWORD for p in sig.parameters.values()):
        return options
    cls = hints.get("return")
    if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
        return None
    csig = inspect.signature(cls)
    if any(p.kind == p.VAR_KEYWORD for p in csig.parameters.values()):
        return None
    chints = _hints(cls.__init__)
    for n, p in _keyword_params(csig).items():
        if n not in DATA_ARGS and n not in options:
            options[n] = p.replace(annotation=chints.get(n, p.annotation))
    return options


_KIND_NAMES = {bool: "a bool", int: "an int", float: "a number", str: "a string"}


def _kind_ok(value, hint) -> bool | None:
    """Whether ``value`` fits ``hint`` (bool, int, float, str, a ``Literal`` of choices, or
    unions of them and None); ``None`` when the hint is anything else (not checked)."""
    if typing.get_origin(hint) is typing.Literal:
        return any(isinstance(value, type(a)) and value == a for a in typing.get_args(hint))
    args = typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, types.UnionType) else (hint,)
    args = tuple(a for a in args if a is not type(None))
    if not args or any(a not in _KIND_NAMES for a in args):
        return None
    is_bool = isinstance(value, (bool, np.bool_))
    for a in args:
        if (
            (a is bool and is_bool)
            or (a is int and isinstance(value, numbers.Integral) and not is_bool)
            or (a is float and isinstance(value, numbers.Real) and not is_bool)
            or (a is str and isinstance(value, str))
        ):
            return True
    return False


def check_backbone_options(name: str, options: dict) -> None:
    """Raise :class:`ConfigError` naming the first option ``name`` does not take, or whose
    value is of the wrong kind (checked for bool / int / float / str annotations only).
    Nothing is checked when the options cannot be known (see :func:`get_backbone_options`)."""
    known = get_backbone_options(name)
    if known is None:
        return
    takes = f"it takes: {', '.join(known)}" if known else "it takes none"
    for key, value in options.items():
        if key not in known:
            if key in DATA_ARGS:
                raise ConfigError(f"--backbone-options: {name} sets {key!r} from the data, not as an option; {takes}")
            close = difflib.get_close_matches(key, list(known), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(f"--backbone-options: {name} has no option {key!r}{hint}; {takes}")
        ann = known[key].annotation
        if typing.get_origin(ann) is typing.Literal and _kind_ok(value, ann) is False:
            raise ConfigError(f"--backbone-options: {name} option {key!r} takes one of "
                              f"{', '.join(map(repr, typing.get_args(ann)))}, got {value!r}")
        if _kind_ok(value, ann) is False:
            want = " or ".join(_KIND_NAMES[a] for a in (typing.get_args(ann) or (ann,)) if a in _KIND_NAMES)
            raise ConfigError(
                f"--backbone-options: {name} option {key!r} takes {want}, got {value!r} ({type(value).__name__})"
            )


def preset_options(name: str, presets: dict[str, dict], preset: str, **given) -> dict:
    """The size options of backbone ``name``: preset ``preset``'s values (``presets[preset]``)
    overridden by the ``given`` ones that are not ``None``.

    Raises:
        ConfigError: unknown preset (the message lists the known ones).
    """
    if not isinstance(preset, str) or preset not in presets:
        raise ConfigError(f"--backbone-options: {name} option 'preset' takes one of "
                          f"{', '.join(map(repr, presets))}, got {preset!r}")
    return {**presets[preset], **{k: v for k, v in given.items() if v is not None}}


def create_backbone(name: str, spec: DataSpec, **kwargs) -> nn.Module:
    """Build backbone ``name`` for data described by ``spec``; ``None`` kwargs are dropped.

    Raises:
        ConfigError: unknown backbone, a graph backbone asked for grid data (or the
            reverse), an option the backbone does not take or a value of the wrong kind
            (see :func:`check_backbone_options`).
    """
    _load_builtin()
    entry = get_backbone_entry(name)
    if entry.kind not in (spec.kind, "any"):
        raise ConfigError(
            f"--backbone: {name} is a {entry.kind} backbone but the data are a {spec.kind}; "
            f"{spec.kind} backbones: {', '.join(list_backbones(spec.kind, trainable=True))}"
        )
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    check_backbone_options(name, kwargs)
    return entry.fn(spec, **kwargs)
