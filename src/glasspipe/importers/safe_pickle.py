"""Restricted unpickling: numpy arrays and plain containers only, never arbitrary code.

``pickle.load`` executes whatever callable the stream names (``os.system``, ``subprocess.Popen``, ...), so a
downloaded pickle is a program. :class:`RestrictedUnpickler` resolves a global only when it is on a fixed
allow-list of what numpy needs to rebuild arrays, dtypes and scalars (``_reconstruct``, ``ndarray``,
``dtype``, ``scalar``, ``_frombuffer``) plus a few harmless builtins (``set``, ``frozenset``, ``complex``,
``bytearray``, ``slice``, ``collections.OrderedDict``, ``_codecs.encode`` used by protocol-2 bytes). Dicts,
lists, tuples, strings, numbers, booleans and None need no global at all. Any other global stops the load
with :class:`UnsafePickleError`, which names the file and the refused global, before the global is ever
imported or called.

Usage::

    data = load_bytes(path.read_bytes(), name=str(path))
"""

from __future__ import annotations

import importlib
import io
import pickle

# (module, name) pairs a pickle may reference. numpy >= 2 moved numpy.core to numpy._core; files written
# with either name are accepted and resolved to the installed numpy's object.
_NUMPY_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): ("multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"): ("multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"): ("multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"): ("multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"): ("numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"): ("numeric", "_frombuffer"),
}
_PLAIN_GLOBALS = {
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("builtins", "set"),
    ("builtins", "frozenset"),
    ("builtins", "complex"),
    ("builtins", "bytearray"),
    ("builtins", "slice"),
    ("collections", "OrderedDict"),
    ("_codecs", "encode"),
}
ALLOWED_GLOBALS = frozenset(_NUMPY_GLOBALS) | frozenset(_PLAIN_GLOBALS)


class UnsafePickleError(pickle.UnpicklingError):
    """A pickle referenced a global outside the allow-list; nothing from it was imported or run."""


def _numpy_core(submodule: str):
    for prefix in ("numpy._core", "numpy.core"):
        try:
            return importlib.import_module(f"{prefix}.{submodule}")
        except ImportError:
            continue
    raise ImportError(f"numpy has neither numpy._core.{submodule} nor numpy.core.{submodule}")


class RestrictedUnpickler(pickle.Unpickler):
    """A ``pickle.Unpickler`` whose ``find_class`` resolves only :data:`ALLOWED_GLOBALS`.

    ``name`` (the file name) goes into every error message. Persistent ids are refused too.
    """

    def __init__(self, file, name: str = "<pickle>", **kwargs):
        kwargs.setdefault("encoding", "latin1")  # Python 2 pickles of numpy arrays carry latin-1 str buffers
        super().__init__(file, **kwargs)
        self.name = name

    def find_class(self, module: str, name: str):
        key = (module, name)
        if key in _NUMPY_GLOBALS:
            submodule, attribute = _NUMPY_GLOBALS[key]
            return getattr(_numpy_core(submodule), attribute)
        if key in _PLAIN_GLOBALS:
            return getattr(importlib.import_module(module), name)
        raise UnsafePickleError(
            f"{self.name}: refused to load the global '{module}.{name}': only numpy arrays, dtypes, scalars and "
            "plain containers are allowed in a dataset pickle (a pickle naming other callables can run code)"
        )

    def persistent_load(self, pid):
        raise UnsafePickleError(f"{self.name}: refused a persistent id {pid!r}; dataset pickles carry none")


def load_bytes(data: bytes, name: str = "<pickle>"):
    """Unpickle ``data`` with :class:`RestrictedUnpickler`; ``name`` labels errors.

    Raises UnsafePickleError for a forbidden global, and pickle.UnpicklingError / EOFError / ValueError
    (from the pickle machinery) for a truncated or foreign stream.
    """
    return RestrictedUnpickler(io.BytesIO(data), name=name).load()
