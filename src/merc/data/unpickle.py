"""A restricted unpickler: the only way ``merc`` reads pickle files.

Loading a pickle can execute arbitrary code: every ``GLOBAL``/``STACK_GLOBAL`` opcode names a
callable that the unpickler imports and calls. The feature pickles of the field (DialogueRNN,
DialogueGCN, MMGCN, COGMEN, DnR, COSMIC ...) only need builtin containers and scalars plus
numpy arrays and dtypes, so :class:`RestrictedUnpickler` resolves exactly those globals and
refuses any other one *before* it is imported or called, naming it
(``refusing global os.system``).

Python-2 pickles (``IEMOCAP_features.pkl``) store numpy buffers as byte strings, which must
be decoded with ``encoding="latin1"``; that is the default here and harmless for Python-3
pickles (their text is stored as UTF-8 regardless).
"""

from __future__ import annotations

import _compat_pickle
import codecs
import collections
import importlib
import io
import pickle
from pathlib import Path
from typing import Any, Callable

import numpy as np

from merc.errors import DataError

# Builtins that only build containers and scalars.
_SAFE_BUILTINS = ("list", "dict", "tuple", "set", "frozenset", "bytearray", "bytes", "str", "int", "float",
                  "complex", "bool", "slice", "range")

# numpy names, each reachable under numpy.core (numpy 1.x) and numpy._core (numpy 2.x).
_NUMPY_CORE_NAMES = (("multiarray", "_reconstruct"), ("multiarray", "scalar"), ("numeric", "_frombuffer"))

_LATIN1 = {"latin1", "latin-1", "iso-8859-1", "iso8859-1", "l1"}


def _codecs_encode_latin1(obj: str, encoding: str = "utf-8", errors: str = "strict") -> bytes:
    """``_codecs.encode`` restricted to latin-1: how protocol-2 pickles of Python 3 store bytes."""
    if not isinstance(obj, str) or encoding.lower() not in _LATIN1:
        raise pickle.UnpicklingError(f"refusing global _codecs.encode with encoding {encoding!r}")
    return codecs.encode(obj, "latin1", errors)


def _numpy_core(submodule: str, name: str) -> Any:
    for package in ("numpy._core", "numpy.core"):
        try:
            module = importlib.import_module(f"{package}.{submodule}")
        except ImportError:
            continue
        if hasattr(module, name):
            return getattr(module, name)
    raise pickle.UnpicklingError(f"numpy has no {submodule}.{name}")


def _allowed() -> dict[tuple[str, str], Callable[[], Any]]:
    table: dict[tuple[str, str], Callable[[], Any]] = {}
    for name in _SAFE_BUILTINS:
        table[("builtins", name)] = lambda name=name: getattr(__import__("builtins"), name)
    table[("collections", "OrderedDict")] = lambda: collections.OrderedDict
    table[("collections", "defaultdict")] = lambda: collections.defaultdict
    table[("_codecs", "encode")] = lambda: _codecs_encode_latin1
    table[("numpy", "ndarray")] = lambda: np.ndarray
    table[("numpy", "dtype")] = lambda: np.dtype
    for package in ("numpy.core", "numpy._core"):
        for sub, name in _NUMPY_CORE_NAMES:
            table[(f"{package}.{sub}", name)] = lambda sub=sub, name=name: _numpy_core(sub, name)
    # numpy ≥ 1.25 pickles dtypes of builtin scalar types through numpy.dtypes.*DType classes.
    for name in ("Float16DType", "Float32DType", "Float64DType", "Int8DType", "Int16DType", "Int32DType",
                 "Int64DType", "UInt8DType", "UInt16DType", "UInt32DType", "UInt64DType", "BoolDType",
                 "StrDType", "BytesDType"):
        table[("numpy.dtypes", name)] = lambda name=name: getattr(importlib.import_module("numpy.dtypes"), name)
    return table


ALLOWED_GLOBALS: dict[tuple[str, str], Callable[[], Any]] = _allowed()
"""``(module, name)`` → resolver, for every global a pickle may name."""


class RefusedGlobal(pickle.UnpicklingError):
    """A pickle named a global outside :data:`ALLOWED_GLOBALS`."""

    def __init__(self, module: str, name: str) -> None:
        self.global_name = f"{module}.{name}"
        super().__init__(f"refusing global {self.global_name}")


class RestrictedUnpickler(pickle.Unpickler):
    """``pickle.Unpickler`` resolving only :data:`ALLOWED_GLOBALS`; anything else raises
    :class:`RefusedGlobal` without importing the named module."""

    def find_class(self, module: str, name: str) -> Any:
        # Python-2 names (__builtin__.set, copy_reg...) are renamed the way pickle itself would.
        if (module, name) in _compat_pickle.NAME_MAPPING:
            module, name = _compat_pickle.NAME_MAPPING[(module, name)]
        elif module in _compat_pickle.IMPORT_MAPPING:
            module = _compat_pickle.IMPORT_MAPPING[module]
        resolver = ALLOWED_GLOBALS.get((module, name))
        if resolver is None:
            raise RefusedGlobal(module, name)
        return resolver()

    def persistent_load(self, pid: Any) -> Any:
        raise pickle.UnpicklingError("refusing persistent id")


def loads_restricted(data: bytes, source: str | Path = "<bytes>", encoding: str = "latin1") -> Any:
    """Unpickle ``data`` with :class:`RestrictedUnpickler`; every failure is a one-line DataError."""
    try:
        return RestrictedUnpickler(io.BytesIO(data), encoding=encoding).load()
    except RefusedGlobal as exc:
        raise DataError(source, f"{exc}: pickles may only hold builtin containers/scalars and numpy arrays",
                        field="pickle", fix="re-save the data with plain lists/dicts/numpy arrays, or convert it to "
                        "the merc user format (docs/formats.md)") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError,
            UnicodeDecodeError, OverflowError, MemoryError, RecursionError) as exc:
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(source, f"is not a readable pickle (truncated or corrupted: {detail})", field="pickle",
                        fix="re-download or re-create the file") from None


def load_pickle(path: str | Path, encoding: str = "latin1") -> Any:
    """Read a pickle file safely (see module docs). Missing files, non-regular files (FIFOs,
    devices) and files over the read limit raise DataError too (:mod:`merc.io_utils`)."""
    from merc.io_utils import read_bytes_bounded

    p = Path(path)
    return loads_restricted(read_bytes_bounded(p), p, encoding)
