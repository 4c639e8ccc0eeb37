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
"""

from __future__ import annotations

import copy
import warnings

import torch
from torch import nn


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


__all__ = ["to_torchscript", "XOnly"]
