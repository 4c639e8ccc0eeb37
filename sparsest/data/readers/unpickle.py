"""A restricted unpickler for pickled adjacency files such as DCRNN's ``adj_mx.pkl``."""

from __future__ import annotations

import _compat_pickle
import importlib
import pickle
from pathlib import Path

from ...errors import DataError
from ._common import PathLike, _error, _existing, _oneline

__all__ = ["safe_load_pickle"]

_PICKLE_BUILTINS = (
    *("list", "dict", "tuple", "set", "frozenset", "slice"),
    *("str", "bytes", "int", "float", "bool", "complex"),
)
_PICKLE_ALLOWED = frozenset(
    {("builtins", name) for name in _PICKLE_BUILTINS}
    | {
        ("collections", "OrderedDict"),
        # Python 3 writes bytes (e.g. an array's buffer) as _codecs.encode(str, "latin1")
        # in protocols 0-2; it only re-encodes text (torch's weights_only loader allows it too).
        ("_codecs", "encode"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        # protocol-5 pickles of arrays
        ("numpy.core.numeric", "_frombuffer"),
        ("numpy._core.numeric", "_frombuffer"),
    }
)


def _pickle_global_allowed(module: str, name: str) -> bool:
    if (module, name) in _PICKLE_ALLOWED:
        return True
    return module == "numpy.dtypes" and name.endswith("DType")  # numpy >= 1.25 dtype classes


def _import_global(module: str, name: str) -> object:
    """``module.name``; ``numpy.core.*`` is read from ``numpy._core`` where that exists
    (numpy >= 2 deprecates the old path)."""
    if module.startswith("numpy.core."):
        try:
            new_module = "numpy._core." + module[len("numpy.core.") :]
            return getattr(importlib.import_module(new_module), name)
        except (ImportError, AttributeError):
            pass
    return getattr(importlib.import_module(module), name)


class _SafeUnpickler(pickle.Unpickler):
    """An unpickler that resolves only plain containers, scalars and numpy arrays."""

    def __init__(self, file, path: Path) -> None:
        super().__init__(file, encoding="latin1")
        self._path = path

    def find_class(self, module: str, name: str) -> object:
        # Python-2 names (``__builtin__.set``); the keys are not Python-3 module names.
        module, name = _compat_pickle.NAME_MAPPING.get((module, name), (module, name))
        module = _compat_pickle.IMPORT_MAPPING.get(module, module)
        if not _pickle_global_allowed(module, name):
            raise _error(
                self._path,
                f"pickle refers to {module}.{name}, which is not allowed "
                "(only plain containers and numpy arrays are read)",
            )
        return _import_global(module, name)


def safe_load_pickle(path: PathLike) -> object:
    """Load a pickle that may hold only plain containers, scalars and numpy arrays.

    A pickle can run arbitrary code when loaded; this one refuses every global other than
    the builtin containers/scalars (list, dict, tuple, set, frozenset, str, bytes, int,
    float, bool, complex, slice), ``collections.OrderedDict``, numpy arrays, dtypes and
    scalars (and ``_codecs.encode``, which Python 3 uses for bytes in protocols 0-2), so a
    malicious file raises before anything runs. Strings of Python-2 pickles are decoded
    with ``encoding="latin1"``, as the DCRNN ``adj_mx.pkl`` requires.

    Args:
        path: the pickle file, e.g. DCRNN's ``data/sensor_graph/adj_mx.pkl``
            (github.com/liyaguang/DCRNN).

    Returns:
        The unpickled object.

    Raises:
        DataError: the file is missing, corrupt, or refers to a disallowed global.
    """
    p = _existing(path)
    try:
        with open(p, "rb") as fh:
            return _SafeUnpickler(fh, p).load()
    except DataError:
        raise
    except Exception as exc:  # a corrupt pickle can fail in many ways
        raise _error(p, f"not a readable pickle ({type(exc).__name__}: {_oneline(exc)})") from None
