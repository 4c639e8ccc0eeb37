"""TorchScript export of a Dyna-Pruner model (the static compact model of ``sparsest compress``).

``torch.jit.script`` cannot compile :class:`~.wrapper.DynaPruner` (Python-only constructs:
f-strings in its errors, ``try`` blocks, a dict of the last masks, numpy index lists in the
gated path), so
:func:`to_torchscript` tries it first, records why it failed, and then *traces* the model
in its batched ``"masked"`` mode (the mode the compact model runs at batch size > 1: removed
units never computed, per-sample masks on the kept ones). The trace records the mask
generator, the top-k data mask, the unit importance and threshold comparison and the
sliced convolutions as tensor operations, so masks still change with each input window.
The weight / softmax caches of the eager model are bypassed while tracing
(``torch.jit.is_tracing()``), otherwise they would be frozen into the trace.

The traced module takes ``x`` only: the grid backbones here ignore ``tod`` / ``dow``.
What a trace cannot follow (Python control flow on values) is checked by comparing the
traced and eager outputs on the example batch and on a batch of another size; a mismatch
makes the export fail (reported, nothing returned).

Safe eager export (:func:`save_compact` / :func:`load_compact`): the compact model as a
plain state dict (``compact_weights.pt``, tensors only, ``torch.load(...,
weights_only=True)``) plus ``compact_config.json``, everything needed to rebuild the same
module: backbone name and options, the :class:`~sparsest.backbones.DataSpec`, the
:class:`~.wrapper.DynaPruner` constructor arguments and the compaction (the units each gate
keeps). Loading never unpickles code (no ``weights_only=False``). The compaction is stored
as the kept indices per gate rather than ``(usage, min_usage)``: it is what
:meth:`~.wrapper.DynaPruner.compact` leaves on the gates (``GatedConv2d.keep``; the weights
themselves are not sliced, the kept units are selected at run time) and it also covers
static keep sets that did not come from usage (e.g. :func:`~.baselines.l1_prune_gates` on a
"DP only" model).
"""

from __future__ import annotations

import copy
import dataclasses
import json
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ...backbones import DataSpec, create_backbone
from ...errors import ConfigError, DataError
from .gating import find_prunable_convs
from .wrapper import DynaPruner


class XOnly(nn.Module):
    """``forward(x) = model(x, None, None)``: the traceable signature of a grid forecaster.

    Shapes: ``[B, T, C, H, W]`` -> ``[B, S, C, H, W]`` (scaled units).
    """

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x, None, None)


def _reason(e: Exception) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0][:200]}" if text else type(e).__name__


def to_torchscript(model: nn.Module, example_x: torch.Tensor, atol: float = 1e-5) -> tuple[torch.jit.ScriptModule | None, dict]:
    """TorchScript version of a (Dyna-Pruner or plain) grid forecaster, by ``torch.jit.script``
    if it compiles, else by ``torch.jit.trace`` (module doc). Never raises for a model that
    cannot be exported: the reason is returned instead.

    Args:
        model: ``forward(x, tod, dow)``, ``[B, T, C, H, W]`` -> ``[B, S, C, H, W]``; a copy
            is exported in eval mode (a :class:`~.wrapper.DynaPruner` in ``"masked"`` mode),
            the model itself is not changed.
        example_x: ``[B, T, C, H, W]`` example input (scaled units); B >= 1.
        atol: largest accepted absolute difference between traced and eager outputs.

    Returns:
        ``(module, info)``. ``module`` takes ``x`` only (``torch.jit.load(path)(x)``) or is
        None; ``info`` has ``method`` (``"script"`` / ``"trace"``), ``script_error`` (why
        scripting failed), ``max_abs_diff`` and ``checked_batch_sizes`` on success, or
        ``error`` on failure.
    """
    m = copy.deepcopy(model).eval()
    if hasattr(m, "mode"):
        m.mode = "masked"
    for mod in m.modules():  # drop caches made by eager calls (they would be constants)
        for attr in ("_wcache", "_pi", "_pi_key"):
            if attr in mod.__dict__:
                setattr(mod, attr, None)
    info: dict = {}
    wrapped = XOnly(m).eval()
    module = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # deprecation and TracerWarnings: checked numerically below
        try:
            module = torch.jit.script(wrapped)
            info["method"] = "script"
        except Exception as e:  # noqa: BLE001 - any failure: fall back to tracing
            info["script_error"] = _reason(e)
        if module is None:
            try:
                with torch.no_grad():
                    module = torch.jit.trace(wrapped, (example_x,), check_trace=False)
                info["method"] = "trace"
            except Exception as e:  # noqa: BLE001
                return None, {**info, "error": f"trace failed: {_reason(e)}"}
    sizes = sorted({int(example_x.shape[0]), 1 if example_x.shape[0] > 1 else 2})
    diff = 0.0
    g = torch.Generator().manual_seed(0)
    try:
        with torch.no_grad():
            for b in sizes:
                x = example_x if b == example_x.shape[0] else torch.randn((b, *example_x.shape[1:]), generator=g, dtype=example_x.dtype)
                diff = max(diff, float((module(x) - m(x, None, None)).abs().max()))
    except Exception as e:  # noqa: BLE001
        return None, {**info, "error": f"{info.get('method')} module does not run: {_reason(e)}"}
    if not diff <= atol:
        return None, {**info, "error": f"{info['method']} output differs from the eager model by {diff:.3g} (> {atol:g})"}
    return module, {**info, "max_abs_diff": diff, "checked_batch_sizes": sizes}


WEIGHTS_FILE = "compact_weights.pt"
CONFIG_FILE = "compact_config.json"
FORMAT = "sparsest.dynapruner.compact"
FORMAT_VERSION = 1


def _min_channels(model: DynaPruner) -> int:
    """The ``min_channels`` that gates exactly ``model.gate_names``: the smallest
    ``min(in, out)`` channels among the gated convolutions (``find_prunable_convs`` gates
    every eligible conv with ``min(in, out) >= min_channels``, so any threshold between the
    original and this value selects the same set; checked again on load)."""
    stored = getattr(model, "min_channels", None)
    if stored is not None:
        return int(stored)
    return int(min(min(g.conv.in_channels, g.conv.out_channels) for g in model.gates))


def _spec_fields(spec: DataSpec) -> dict:
    out = {}
    for f in dataclasses.fields(spec):
        v = getattr(spec, f.name)
        if f.name == "adjacency":
            v = None if v is None else {"dtype": str(np.asarray(v).dtype), "values": np.asarray(v).tolist()}
        out[f.name] = v
    return out


def _spec_from(fields: dict) -> DataSpec:
    fields = dict(fields)
    adj = fields.get("adjacency")
    if adj is not None:
        fields["adjacency"] = np.asarray(adj["values"], dtype=adj["dtype"])
    return DataSpec(**fields)


def save_compact(model: DynaPruner, directory: str | Path, backbone_name: str, backbone_options: dict, spec: DataSpec) -> dict:
    """Save a (compact) Dyna-Pruner model as weights plus a rebuild config, no pickled code.

    Dyna-Pruner (Zhang et al., arXiv:2606.15346): the static compact model of ``sparsest
    compress`` (``DynaPruner.compact(usage, min_usage)``: removed units never computed,
    per-sample masks on the kept ones). Any :class:`~.wrapper.DynaPruner` can be saved; a
    gate without a ``keep`` set is stored as keeping all its units.

    Writes (``directory`` is created if needed; existing files are replaced):

    - ``compact_weights.pt``: ``model.state_dict()`` on CPU as a plain ``dict[str, Tensor]``
      (includes each gate's ``keep`` buffer); ``torch.load(path, weights_only=True)``.
    - ``compact_config.json`` (written last): ``format``/``version``, ``backbone``
      (``name``, ``options``), ``spec`` (the DataSpec fields; ``adjacency`` null for grids),
      ``dynapruner`` (constructor arguments: ``data_sparsity``, ``model_sparsity``,
      ``policy``, ``fill``, ``min_channels``, ``regions``, ``temperature``, ``lambda_d``,
      ``lambda_w``, ``lambda_target``, ``gen_hidden``), ``state`` (``mode``,
      ``mask_failure``) and ``compaction`` (``gates``: gate names in order, ``sizes``: units
      per gate, ``keep``: ``{gate: [kept unit indices] or null}``).

    Args:
        model: the model to save (not changed).
        directory: output folder.
        backbone_name, backbone_options: what ``create_backbone(name, spec, **options)``
            was called with to build ``model.backbone`` (options must be JSON values).
        spec: the data's :class:`~sparsest.backbones.DataSpec`.

    Returns:
        ``{"weights": "compact_weights.pt", "config": "compact_config.json", "format": ...,
        "version": 1, "kept": int, "total": int}`` (file names relative to ``directory``).

    Raises:
        ConfigError: ``backbone_options`` not JSON-serialisable.
    """
    directory = Path(directory)
    gen = getattr(model, "generator", None)
    keep = {name: (None if g.keep is None else [int(i) for i in g.keep.tolist()]) for name, g in zip(model.gate_names, model.gates)}
    config = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "source": "Dyna-Pruner, Zhang et al., arXiv:2606.15346; rebuild with sparsest.pruning.adaptive.load_compact",
        "backbone": {"name": backbone_name, "options": dict(backbone_options or {})},
        "spec": _spec_fields(spec),
        "dynapruner": {
            "data_sparsity": model.data_sparsity, "model_sparsity": model.model_sparsity,
            "policy": model.policy, "fill": model.fill, "min_channels": _min_channels(model),
            "regions": list(model.regions), "temperature": model.temperature,
            "lambda_d": model.lambda_d, "lambda_w": model.lambda_w, "lambda_target": model.lambda_target,
            "gen_hidden": 16 if gen is None else int(gen.net[0].out_channels),
            "reading": model.reading, "tiles": list(model.tiles), "hard_from": model.hard_from,
        },
        "state": {"mode": model.mode, "mask_failure": float(model.mask_failure)},
        "compaction": {"gates": list(model.gate_names), "sizes": [int(n) for n in model.sizes], "keep": keep},
    }
    try:
        text = json.dumps(config, indent=1, allow_nan=False)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"backbone_options: not JSON-serialisable for {CONFIG_FILE} ({_reason(e)})") from None
    directory.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    torch.save(state, directory / WEIGHTS_FILE)
    (directory / CONFIG_FILE).write_text(text)
    kept = sum(n if k is None else len(k) for n, k in zip(model.sizes, keep.values()))
    return {"weights": WEIGHTS_FILE, "config": CONFIG_FILE, "format": FORMAT, "version": FORMAT_VERSION,
            "kept": int(kept), "total": int(sum(model.sizes))}


def _read_config(path: Path) -> dict:
    try:
        config = json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: missing (write it with sparsest.pruning.adaptive.save_compact)") from None
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise ConfigError(f"{path}: not a readable JSON file ({_reason(e)})") from None
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise ConfigError(f"{path}: not a Dyna-Pruner compact config (format {config.get('format') if isinstance(config, dict) else None!r}, expected {FORMAT!r})")
    if config.get("version") != FORMAT_VERSION:
        raise ConfigError(f"{path}: version {config.get('version')!r} is not supported (expected {FORMAT_VERSION})")
    for key in ("backbone", "spec", "dynapruner", "compaction"):
        if not isinstance(config.get(key), dict):
            raise ConfigError(f"{path}: missing or invalid section {key!r}")
    return config


def load_compact(directory: str | Path, map_location: str | torch.device = "cpu") -> DynaPruner:
    """Rebuild the model saved by :func:`save_compact`, without unpickling code.

    Dyna-Pruner (Zhang et al., arXiv:2606.15346). Steps: read ``compact_config.json``;
    ``create_backbone(name, DataSpec(**spec), **options)``; wrap it in
    :class:`~.wrapper.DynaPruner` with the stored constructor arguments (the global RNG is
    left untouched: the random initial weights are drawn in a forked RNG and then
    overwritten); check the gates are the stored ones; set each gate's ``keep`` to the
    stored indices (the compaction replayed); load ``compact_weights.pt`` with
    ``weights_only=True`` (strict) and check its ``keep`` buffers agree with the config.

    Args:
        directory: the folder :func:`save_compact` wrote.
        map_location: device for the weights (default CPU).

    Returns:
        The :class:`~.wrapper.DynaPruner` in eval mode, in the stored ``mode`` (normally
        ``"masked"``; set ``model.mode = "gated"`` for batch-1 gated execution). Shapes as
        the saved model: ``[B, T, C, H, W]`` -> ``[B, S, C, H, W]``.

    Raises:
        ConfigError: the config is missing, not JSON, not this format, lacks a field, names
            an unknown backbone / bad option, or does not match the rebuilt gates.
        DataError: the weights file is missing, unreadable with ``weights_only=True``, or
            does not fit the rebuilt model.
    """
    directory = Path(directory)
    cpath, wpath = directory / CONFIG_FILE, directory / WEIGHTS_FILE
    config = _read_config(cpath)
    bb, dp, comp = config["backbone"], config["dynapruner"], config["compaction"]
    try:
        spec = _spec_from(config["spec"])
        name, options = bb["name"], dict(bb.get("options") or {})
        gates, sizes, keep = list(comp["gates"]), list(comp["sizes"]), dict(comp["keep"])
        kwargs = {k: dp[k] for k in ("data_sparsity", "model_sparsity", "policy", "fill", "min_channels",
                                     "temperature", "lambda_d", "lambda_w", "lambda_target", "gen_hidden")}
        kwargs["regions"] = tuple(dp["regions"])
        kwargs["reading"] = dp.get("reading", "channels-hard")  # files written before the readings existed
        kwargs["tiles"] = tuple(dp.get("tiles", (8, 8)))
        kwargs["hard_from"] = float(dp.get("hard_from", 0.6))
    except KeyError as e:
        raise ConfigError(f"{cpath}: missing field {e.args[0]!r}") from None
    except (TypeError, ValueError, AttributeError) as e:
        raise ConfigError(f"{cpath}: invalid field ({_reason(e)})") from None
    try:
        with torch.random.fork_rng(devices=[]):
            backbone = create_backbone(name, spec, **options)
            if find_prunable_convs(backbone, int(kwargs["min_channels"])) != gates:
                raise ConfigError(f"{cpath}: the rebuilt {name} does not have the stored gates {gates} (backbone code or options changed?)")
            model = DynaPruner(backbone, spec, **kwargs)
    except ConfigError as e:
        msg = str(e)
        raise ConfigError(msg if msg.startswith(str(cpath)) else f"{cpath}: {msg}") from None
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{cpath}: cannot rebuild the model ({_reason(e)})") from None
    if list(model.sizes) != sizes or set(keep) != set(gates):
        raise ConfigError(f"{cpath}: gate sizes or keep entries do not match the rebuilt model")
    for gname, g, n in zip(gates, model.gates, sizes):
        k = keep[gname]
        if k is None:
            continue
        idx = torch.as_tensor(k, dtype=torch.long)
        if idx.numel() == 0 or idx.min() < 0 or idx.max() >= n or idx.unique().numel() != idx.numel():
            raise ConfigError(f"{cpath}: compaction.keep[{gname!r}] must be distinct indices in [0, {n}), non-empty")
        g.keep = idx.to(model.layer_of.device)
    try:
        state = torch.load(wpath, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise DataError(f"{wpath}: missing (written by save_compact beside {CONFIG_FILE})") from None
    except Exception as e:  # noqa: BLE001 - corrupt file, foreign pickle refused by weights_only
        raise DataError(f"{wpath}: cannot be read with torch.load(weights_only=True) ({_reason(e)})") from None
    if not isinstance(state, dict):
        raise DataError(f"{wpath}: not a state dict (got {type(state).__name__})")
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise DataError(f"{wpath}: does not fit the model rebuilt from {CONFIG_FILE} ({_reason(e)})") from None
    for gname, g in zip(gates, model.gates):
        want = keep[gname]
        have = None if g.keep is None else g.keep.tolist()
        if have != want:
            raise DataError(f"{wpath}: keep indices of gate {gname!r} disagree with {CONFIG_FILE}")
    model.to(map_location)
    state_cfg = config.get("state") or {}
    model.mode = state_cfg.get("mode", "masked")
    model.mask_failure = float(state_cfg.get("mask_failure", 0.0))
    return model.eval()


__all__ = ["to_torchscript", "XOnly", "save_compact", "load_compact", "WEIGHTS_FILE", "CONFIG_FILE"]
