"""Restricted unpickling: plain numeric numpy arrays and plain containers only.

Threat model
------------
A dataset pickle (DeepMind's glassy_dynamics files) is downloaded from elsewhere; whoever made or altered
the file controls every byte of it. ``pickle.load`` runs whatever callable the stream names, so a pickle is
a program. Refusing unknown globals (what this module did first) is not enough: the allowed numpy globals
are themselves powerful. ``numpy.dtype`` plus the BUILD opcode (``dtype.__setstate__``) let a file declare
an object field with the ``hasobject`` flag cleared, or a field offset beyond the item, and
``_frombuffer`` then reads raw file bytes as object pointers (a 214-byte pickle handed back the builtin
``len`` from an address the file carried) or reads memory out of bounds. ``bytearray(n)`` allocated
2 GiB from a 55-byte file. The attacker's goals are therefore: running code, forging object pointers or
reading memory (crashes, leaks), and denial of service (memory, time, deep recursion in later code).

What this loader guarantees for any input bytes:

- It is the pure-Python unpickler (``pickle._Unpickler``) with its dispatch table edited, so that every
  opcode that calls something or mutates an object goes through checks here: REDUCE calls only the
  constructors below; BUILD is accepted only on a dtype or array that one of them just made and only with
  the state numpy itself writes for plain numeric data; NEWOBJ, INST, OBJ, extension codes, persistent
  ids and out-of-band buffers (protocol 5 NEXT_BUFFER / READONLY_BUFFER) are refused; APPEND(S),
  SETITEM(S) and ADDITEMS act only on lists, dicts and sets. Dict keys and set elements (from SETITEM(S),
  DICT, ADDITEMS, FROZENSET and the set / frozenset / OrderedDict constructors) must be strings, bytes,
  None, booleans or integers below 2**61, whose hashes cannot be made to collide (colliding keys would
  make building a dict quadratic in the file's size).
- dtypes are plain numeric (kinds b, i, u, f, c; either byte order): no fields, names, subarrays, objects,
  void, strings or datetimes; each one is a fresh copy, so a BUILD cannot alter numpy's shared dtypes.
- Arrays are built only from bytes of exactly ``size * itemsize`` (``_reconstruct`` + BUILD, ``_frombuffer``,
  ``scalar``), never from a Python list of objects; the allowed builtins accept only their harmless forms
  (``bytearray(bytes)``, never ``bytearray(n)``; ``_codecs.encode(str, 'latin1')`` only).
- What the constructors allocate, summed, is at most ``ALLOCATION_FACTOR * len(data) + ALLOCATION_SLACK``
  bytes, and so is the result's logical size (arrays by their bytes, strings by their length, containers
  by their elements, counting a shared object at every place it is referenced, as ``np.asarray`` of a
  nested list would). Nesting is at most :data:`MAX_DEPTH` deep and cycle-free. Then every array of the
  result is checked again: plain numeric dtype, no object, bytes consistent with what it was built from.
- Every refusal raises :class:`UnsafePickleError`, and every other failure (truncated, corrupt, foreign
  stream) :class:`CorruptPickleError`; both are ``pickle.UnpicklingError`` and name the file. Nothing else
  escapes :func:`load_bytes`.

Not covered: the *values* (NaN, huge or negative numbers, wrong shapes) are whatever the file says; the
importers check them. Work is linear in the file size.

Usage::

    data = load_bytes(path.read_bytes(), name=str(path))
"""

from __future__ import annotations

import io
import math
import pickle
import pickletools
import re
from collections import OrderedDict

import numpy as np

# A file may make the loader allocate, and may describe a result whose logical size is, at most this many
# times its own size plus the slack. Real pickles need about 1x (each array's bytes are in the file once; a
# latin-1 string and the bytes made from it are 2x); 4 leaves room, and blocks amplification (a shared array
# referenced a million times, bytearray(2**31) from 55 bytes).
ALLOCATION_FACTOR = 4
ALLOCATION_SLACK = 1 << 20
# Nesting depth of containers in the result; DeepMind files are 3 deep (dict -> list -> list -> array).
MAX_DEPTH = 32
# numpy's own limit on array dimensions is 64 (32 before numpy 2); data arrays have a few.
MAX_NDIM = 32
_PLAIN_KINDS = "biufc"
# numpy's pickled dtype state for plain numeric dtypes: (version, byte order, subarray, names, fields, elsize,
# alignment, flags). Only the byte order may vary.
_PLAIN_DTYPE_STATE = (3, None, None, None, None, -1, -1, 0)
# A dtype spec as numpy pickles it ('f8', 'i4', 'b1', 'c16', ...) or a one-letter code (b'b' in _reconstruct),
# with an optional byte order; np.dtype's result is checked again (kind, fields, subarray).
_DTYPE_SPEC = re.compile(r"[<>=|]?(?:[biufc][0-9]{1,2}|[?bBhHiIlLqQpPefdgFDG])")
_LATIN1 = ("latin1", "latin-1", "iso-8859-1", "iso8859-1", "l1")
# A hashable key / set element must be of these types; ints only below this bound (hash(k) == k there).
_KEY_INT_BOUND = 1 << 61


class UnsafePickleError(pickle.UnpicklingError):
    """The pickle asked for something a dataset file never needs (a global, a dtype or a size outside what
    is allowed); the load stopped there. The message names the file and what was refused."""


class CorruptPickleError(pickle.UnpicklingError):
    """The bytes are not a readable pickle (truncated, corrupt or of another kind); names the file."""


class _Global:
    """What ``find_class`` returns for an allowed global: a name and the checked constructor behind it.

    REDUCE calls ``construct(*args)``; nothing else can call it. ``construct`` None marks a global that may
    only be passed as an argument (``numpy.ndarray``, the subtype argument of ``_reconstruct``).
    """

    __slots__ = ("name", "construct")

    def __init__(self, name: str, construct):
        self.name = name
        self.construct = construct

    def __repr__(self):
        return f"<allowed global {self.name}>"


def _nbytes(shape: tuple, itemsize: int) -> int:
    return math.prod(shape) * itemsize  # Python ints: no overflow whatever the shape


class RestrictedUnpickler(pickle._Unpickler):
    """The pure-Python unpickler with every object-making opcode checked (see the module docstring).

    ``name`` (the file name) goes into every error message; ``size`` (the file's length in bytes) sets the
    allocation budget.
    """

    # pickle._Unpickler is CPython's pure-Python unpickler: private, but unchanged in interface since Python
    # 3.0, and the only one whose opcodes can be intercepted (the C unpickler calls __setstate__, appends and
    # inserts itself). Its dispatch table is replaced below the class.
    dispatch: dict = {}

    def __init__(self, file, name: str = "<pickle>", size: int = 0):
        # Python 2 pickles of numpy arrays carry their bytes as latin-1 str
        super().__init__(file, encoding="latin1")
        self.name = name
        self.budget = ALLOCATION_FACTOR * size + ALLOCATION_SLACK
        self.allocated = 0
        self._dtypes: dict[int, list] = {}  # id -> [dtype, built?]: the dtypes this load made
        self._arrays: dict[int, list] = {}  # id -> [array, nbytes, built?]: the arrays this load made
        self._globals = self._make_globals()

    # --- errors and bookkeeping -------------------------------------------------------------------
    def refuse(self, what: str) -> UnsafePickleError:
        return UnsafePickleError(f"{self.name}: refused: {what} (a dataset pickle holds plain numeric arrays)")

    def charge(self, nbytes: int, what: str) -> None:
        self.allocated += nbytes
        if self.allocated > self.budget:
            raise self.refuse(
                f"{what} would take the allocations past {self.budget} bytes ({ALLOCATION_FACTOR} times the "
                f"file's size plus {ALLOCATION_SLACK}); a real file's arrays are all in its own bytes"
            )

    def _dtype(self, value, where: str) -> np.dtype:
        if id(value) not in self._dtypes or self._dtypes[id(value)][0] is not value:
            raise self.refuse(f"{where} is a {type(value).__name__}, not a dtype made by numpy.dtype in this file")
        return value

    def _shape(self, value, where: str) -> tuple:
        shape = (value,) if type(value) is int else value
        if type(shape) not in (tuple, list) or len(shape) > MAX_NDIM:
            raise self.refuse(f"{where}: shape {_brief(value)} is not a tuple of at most {MAX_NDIM} sizes")
        if not all(type(s) is int and s >= 0 for s in shape):
            raise self.refuse(f"{where}: shape {_brief(value)} holds entries that are not sizes >= 0")
        return tuple(shape)

    def _raw(self, value, where: str) -> bytes | bytearray:
        if type(value) is str:  # Python 2 pickles: the bytes as a latin-1 str
            try:
                return value.encode("latin1")
            except UnicodeEncodeError as err:
                raise self.refuse(f"{where}: a str with characters beyond latin-1 cannot be array bytes") from err
        if type(value) not in (bytes, bytearray):
            raise self.refuse(f"{where}: array data is a {type(value).__name__}, not bytes")
        return value

    def _record(self, array: np.ndarray, nbytes: int, built: bool) -> np.ndarray:
        self._arrays[id(array)] = [array, nbytes, built]
        return array

    # --- the allowed globals ------------------------------------------------------------------------
    def _make_globals(self) -> dict:
        ndarray = _Global("numpy.ndarray", None)
        self._ndarray = ndarray
        reconstruct = _Global("numpy.core.multiarray._reconstruct", self._reconstruct)
        scalar = _Global("numpy.core.multiarray.scalar", self._scalar)
        frombuffer = _Global("numpy.core.numeric._frombuffer", self._frombuffer)
        table = {
            ("numpy", "ndarray"): ndarray,
            ("numpy", "dtype"): _Global("numpy.dtype", self._make_dtype),
            ("_codecs", "encode"): _Global("_codecs.encode", self._encode),
            ("collections", "OrderedDict"): _Global("collections.OrderedDict", self._ordered_dict),
        }
        # numpy >= 2 moved numpy.core to numpy._core; files written with either name are accepted.
        for core in ("numpy.core", "numpy._core"):
            table[(f"{core}.multiarray", "_reconstruct")] = reconstruct
            table[(f"{core}.multiarray", "scalar")] = scalar
            table[(f"{core}.numeric", "_frombuffer")] = frombuffer
        builtins = {
            "set": self._set,
            "frozenset": self._frozenset,
            "complex": self._complex,
            "bytearray": self._bytearray,
            "bytes": self._bytes,
            "slice": self._slice,
        }
        # Protocol 0-2 pickles name the builtins module as Python 2 did ('__builtin__').
        for module in ("builtins", "__builtin__"):
            for name, construct in builtins.items():
                table[(module, name)] = _Global(f"builtins.{name}", construct)
        return table

    def _make_dtype(self, spec=None, align=False, copy=True, *extra):
        """numpy.dtype(spec, align, copy) for a plain numeric spec only; always a fresh copy."""
        if extra or type(align) not in (bool, int) or type(copy) not in (bool, int):
            raise self.refuse("numpy.dtype called with arguments other than (spec, align, copy)")
        return self._plain_dtype(spec, "numpy.dtype")

    def _plain_dtype(self, spec, where: str) -> np.dtype:
        if type(spec) is bytes:
            spec = spec.decode("latin1")
        if type(spec) is not str or not _DTYPE_SPEC.fullmatch(spec):
            raise self.refuse(
                f"{where}: dtype {_brief(spec)}; only plain numeric dtypes (bool, int, uint, float, complex) are "
                "allowed, no fields, objects, void, strings, datetimes or subarrays"
            )
        try:
            # copy=True: a BUILD may change the byte order of the dtype, never numpy's shared one
            dtype = np.dtype(spec, copy=True)
        except TypeError as err:
            raise self.refuse(f"{where}: dtype {spec!r} is not a numpy dtype ({err})") from err
        if (
            dtype.kind not in _PLAIN_KINDS
            or dtype.hasobject
            or dtype.names is not None
            or dtype.subdtype is not None
            or dtype.metadata is not None
        ):
            raise self.refuse(f"{where}: dtype {spec!r} is not a plain numeric dtype")
        self._dtypes[id(dtype)] = [dtype, False]
        return dtype

    def _reconstruct(self, subtype=None, shape=None, typecode=None, *extra):
        """numpy's ``_reconstruct(ndarray, shape, typecode)``: an empty array that BUILD then fills."""
        if extra or subtype is not self._ndarray:
            raise self.refuse("_reconstruct is called only as _reconstruct(numpy.ndarray, shape, typecode)")
        dtype = self._plain_dtype(typecode, "_reconstruct")
        shape = self._shape(shape, "_reconstruct")
        nbytes = _nbytes(shape, dtype.itemsize)
        self.charge(nbytes, f"_reconstruct of shape {shape}")
        return self._record(np.empty(shape, dtype=dtype), nbytes, built=False)

    def _frombuffer(self, buf=None, dtype=None, shape=None, order=None, axis_order=None, *extra):
        """numpy's ``_frombuffer(buf, dtype, shape, order[, axis_order])`` (protocol 5, in-band buffers)."""
        if extra:
            raise self.refuse("_frombuffer called with more than 5 arguments")
        if type(buf) not in (bytes, bytearray):
            raise self.refuse(f"_frombuffer: the buffer is a {type(buf).__name__}, not in-band bytes")
        dtype = self._dtype(dtype, "_frombuffer's dtype")
        shape = self._shape(shape, "_frombuffer")
        nbytes = _nbytes(shape, dtype.itemsize)
        if nbytes != len(buf):
            raise self.refuse(f"_frombuffer: {len(buf)} bytes for shape {shape} of {dtype} ({nbytes} bytes)")
        if order not in ("C", "F", "K", "A"):
            raise self.refuse(f"_frombuffer: order {_brief(order)}")
        array = np.frombuffer(buf, dtype=dtype)
        if order == "K" and axis_order is not None:
            axes = self._shape(axis_order, "_frombuffer's axis order")
            if sorted(axes) != list(range(len(shape))):
                raise self.refuse(f"_frombuffer: axis order {axes} is not a permutation of {len(shape)} axes")
            array = array.reshape(shape, order="C").transpose(axes)
        else:
            array = array.reshape(shape, order="F" if order == "F" else "C")
        return self._record(array, nbytes, built=True)

    def _scalar(self, dtype=None, data=None, *extra):
        """numpy's ``scalar(dtype, bytes)``: one plain numeric value from exactly itemsize bytes."""
        if extra:
            raise self.refuse("scalar called with more than 2 arguments")
        dtype = self._dtype(dtype, "scalar's dtype")
        data = self._raw(data, "scalar")
        if len(data) != dtype.itemsize:
            raise self.refuse(f"scalar: {len(data)} bytes for one {dtype} ({dtype.itemsize} bytes)")
        self.charge(dtype.itemsize, "scalar")
        return np.frombuffer(bytes(data), dtype=dtype)[0]

    def _encode(self, text=None, encoding="utf-8", *extra):
        """``_codecs.encode(str, 'latin1')``, the form protocol 0-2 pickles of bytes take; no other codec
        (others expand or decompress: hex, base64, zlib ...)."""
        if extra or type(text) is not str or type(encoding) is not str or encoding.lower() not in _LATIN1:
            raise self.refuse("_codecs.encode is allowed only as encode(str, 'latin1')")
        self.charge(len(text), "_codecs.encode")
        try:
            return text.encode("latin1")
        except UnicodeEncodeError as err:
            raise self.refuse("_codecs.encode of a str with characters beyond latin-1") from err

    def _bytearray(self, *args):
        """``bytearray()``, ``bytearray(bytes)`` or ``bytearray(str, 'latin1')``; never ``bytearray(n)``."""
        if not args:
            return bytearray()
        if len(args) == 1 and type(args[0]) in (bytes, bytearray):
            self.charge(len(args[0]), "bytearray")
            return bytearray(args[0])
        if len(args) == 2 and type(args[0]) is str and type(args[1]) is str and args[1].lower() in _LATIN1:
            self.charge(len(args[0]), "bytearray")
            return bytearray(self._encode(args[0], "latin1"))
        kinds = ", ".join(type(a).__name__ for a in args)
        raise self.refuse(f"bytearray({kinds}); only bytearray(bytes) or bytearray(str, 'latin1') are allowed")

    def _bytes(self, *args):
        """``bytes()``: how protocol 0-2 pickles write an empty bytes object."""
        if args:
            raise self.refuse("bytes(...) with arguments; only bytes() is allowed")
        return b""

    def _elements(self, items, what: str) -> list:
        if type(items) not in (list, tuple, set, frozenset):
            raise self.refuse(f"{what} of a {type(items).__name__}; expected a list of values")
        self.charge(8 * len(items), what)
        for item in items:
            self._check_key(item, what)
        return list(items)

    def _set(self, items=(), *extra):
        if extra:
            raise self.refuse("set called with more than one argument")
        return set(self._elements(items, "set"))

    def _frozenset(self, items=(), *extra):
        if extra:
            raise self.refuse("frozenset called with more than one argument")
        return frozenset(self._elements(items, "frozenset"))

    def _complex(self, *args):
        numbers = (int, float, bool)
        if len(args) <= 2 and all(type(a) in numbers for a in args):
            return complex(*args)
        if len(args) == 1 and type(args[0]) is str and len(args[0]) <= 64:
            return complex(args[0])
        raise self.refuse("complex called with arguments other than one or two numbers or a short str")

    def _slice(self, *args):
        if 1 <= len(args) <= 3 and all(a is None or type(a) is int for a in args):
            return slice(*args)
        raise self.refuse("slice called with arguments other than 1 to 3 ints or None")

    def _ordered_dict(self, items=(), *extra):
        if extra or type(items) not in (list, tuple):
            raise self.refuse("collections.OrderedDict called with arguments other than a list of pairs")
        self.charge(16 * len(items), "collections.OrderedDict")
        result = OrderedDict()
        for pair in items:
            if type(pair) not in (list, tuple) or len(pair) != 2:
                raise self.refuse("collections.OrderedDict of items that are not (key, value) pairs")
            self._check_key(pair[0], "collections.OrderedDict")
            result[pair[0]] = pair[1]
        return result

    def _check_key(self, key, where: str) -> None:
        """Dict keys and set elements: str, bytes, None, bool, or an int below 2**61 (hashes cannot collide,
        so building the dict stays linear; any other hashable could be crafted to collide)."""
        kind = type(key)
        if kind in (str, bytes, bool) or key is None:
            return
        if kind is int and -_KEY_INT_BOUND < key < _KEY_INT_BOUND:
            return
        raise self.refuse(f"{where}: a key or set element of type {kind.__name__}")

    # --- opcodes --------------------------------------------------------------------------------------
    def find_class(self, module: str, name: str):
        found = self._globals.get((module, name))
        if found is None:
            raise UnsafePickleError(
                f"{self.name}: refused to load the global '{module}.{name}': only numpy arrays, dtypes, scalars "
                "and plain containers are allowed in a dataset pickle (a pickle naming other callables can run code)"
            )
        return found

    def persistent_load(self, pid):
        raise UnsafePickleError(f"{self.name}: refused a persistent id; dataset pickles carry none")

    def _load_reduce(self):
        stack = self.stack
        args = stack.pop()
        func = stack[-1]
        if type(func) is not _Global:
            raise self.refuse(f"REDUCE on a {type(func).__name__}; only the allowed globals may be called")
        if func.construct is None:
            raise self.refuse(f"{func.name} may appear only as the first argument of _reconstruct, not be called")
        if type(args) is not tuple:
            raise self.refuse(f"REDUCE with arguments of type {type(args).__name__}")
        stack[-1] = func.construct(*args)

    def _load_build(self):
        stack = self.stack
        state = stack.pop()
        inst = stack[-1]
        key = id(inst)
        if type(inst) is not np.ndarray and key in self._dtypes and self._dtypes[key][0] is inst:
            self._build_dtype(inst, state)
        elif type(inst) is np.ndarray and key in self._arrays and self._arrays[key][0] is inst:
            self._build_array(inst, state)
        else:
            raise self.refuse(f"BUILD (setting the state) of a {type(inst).__name__}")

    def _build_dtype(self, dtype: np.dtype, state) -> None:
        """Accept exactly numpy's state for a plain numeric dtype: (3, byte order, None, None, None, -1, -1, 0)."""
        entry = self._dtypes[id(dtype)]
        if entry[1]:
            raise self.refuse("a second BUILD of the same dtype")
        single = dtype.itemsize == 1
        ok = (
            type(state) is tuple
            and len(state) == len(_PLAIN_DTYPE_STATE)
            and all(
                (type(s) is int and s == p) if isinstance(p, int) else s is None
                for i, (s, p) in enumerate(zip(state, _PLAIN_DTYPE_STATE, strict=True))
                if i != 1
            )
            and type(state[1]) is str
            and state[1] in (("|",) if single else ("<", ">", "="))
        )
        if not ok:
            raise self.refuse(
                f"dtype state {_brief(state)} for {dtype}: only (3, byte order, None, None, None, -1, -1, 0), "
                "the state of a plain numeric dtype, is allowed (no fields, names, subarray, size or flags)"
            )
        entry[1] = True
        dtype.__setstate__(state)  # changes only the byte order (the rest is the plain state checked above)

    def _build_array(self, array: np.ndarray, state) -> None:
        """Accept numpy's array state (1, shape, dtype, is_fortran, bytes) with bytes of exactly the size."""
        entry = self._arrays[id(array)]
        if entry[2]:
            raise self.refuse("a second BUILD of the same array")
        if type(state) is not tuple or len(state) != 5 or type(state[0]) is not int or state[0] != 1:
            raise self.refuse(f"array state of type {type(state).__name__}; expected (1, shape, dtype, fortran, bytes)")
        _, shape, dtype, fortran, data = state
        shape = self._shape(shape, "array state")
        dtype = self._dtype(dtype, "array state's dtype")
        if type(fortran) not in (bool, int) or fortran not in (0, 1):
            raise self.refuse(f"array state: fortran flag {_brief(fortran)}")
        data = self._raw(data, "array state")
        nbytes = _nbytes(shape, dtype.itemsize)
        if len(data) != nbytes:
            raise self.refuse(f"array state: {len(data)} bytes for shape {shape} of {dtype} ({nbytes} bytes)")
        self.charge(nbytes, f"array of shape {shape}")
        array.__setstate__((1, shape, dtype, bool(fortran), bytes(data)))
        entry[1], entry[2] = nbytes, True

    def _load_append(self):
        value = self.stack.pop()
        target = self.stack[-1]
        if type(target) is not list:
            raise self.refuse(f"APPEND to a {type(target).__name__}")
        target.append(value)

    def _load_appends(self):
        items = self.pop_mark()
        target = self.stack[-1]
        if type(target) is not list:
            raise self.refuse(f"APPENDS to a {type(target).__name__}")
        target.extend(items)

    def _load_setitem(self):
        stack = self.stack
        value = stack.pop()
        key = stack.pop()
        self._set_items(stack[-1], [key, value], "SETITEM")

    def _load_setitems(self):
        items = self.pop_mark()
        self._set_items(self.stack[-1], items, "SETITEMS")

    def _load_dict(self):
        items = self.pop_mark()
        result: dict = {}
        self._set_items(result, items, "DICT")
        self.append(result)

    def _set_items(self, target, items: list, what: str) -> None:
        if type(target) not in (dict, OrderedDict):
            raise self.refuse(f"{what} on a {type(target).__name__}")
        if len(items) % 2:
            raise pickle.UnpicklingError(f"{what} with an odd number of keys and values")
        for i in range(0, len(items), 2):
            self._check_key(items[i], "dict")
            target[items[i]] = items[i + 1]

    def _load_additems(self):
        items = self.pop_mark()
        target = self.stack[-1]
        if type(target) is not set:
            raise self.refuse(f"ADDITEMS on a {type(target).__name__}")
        for item in items:
            self._check_key(item, "set")
        target.update(items)

    def _load_frozenset(self):
        items = self.pop_mark()
        for item in items:
            self._check_key(item, "frozenset")
        self.append(frozenset(items))

    # --- the result -------------------------------------------------------------------------------------
    def check_result(self, root) -> None:
        """Walk the result once (iteratively: no recursion however deep the file nests): allowed types only,
        nesting <= MAX_DEPTH, no cycles, every array plain numeric with the bytes it was built from, and a
        logical size (shared objects counted at each reference) within the budget."""
        leaves = (type(None), bool, int, float, complex, str, bytes, bytearray)
        sizes: dict[int, int] = {}  # id -> logical size of a finished container
        on_path: set[int] = set()
        stack = [(root, 0, False)]

        def size_of(obj) -> int:
            kind = type(obj)
            if kind in (str, bytes, bytearray):
                return len(obj) + 1
            if kind is np.ndarray:
                return obj.nbytes + 1
            if kind in leaves or isinstance(obj, np.generic):
                return 8
            return sizes[id(obj)]

        while stack:
            obj, depth, finished = stack.pop()
            kind = type(obj)
            if finished:
                children = _children(obj)
                total = 1 + sum(size_of(child) for child in children)
                on_path.discard(id(obj))
                sizes[id(obj)] = total
                if total > self.budget:
                    raise self.refuse(
                        f"the data's logical size exceeds {self.budget} (shared objects repeated; "
                        f"{ALLOCATION_FACTOR} times the file's size plus {ALLOCATION_SLACK})"
                    )
                continue
            if kind in leaves:
                continue
            if kind is np.ndarray:
                self._check_array(obj)
                continue
            if isinstance(obj, np.generic):
                if obj.dtype.kind not in _PLAIN_KINDS or type(obj).__module__ != "numpy":
                    raise self.refuse(f"a numpy scalar of dtype {obj.dtype}")
                continue
            if kind not in (dict, OrderedDict, list, tuple, set, frozenset, slice):
                raise self.refuse(f"the data holds a {kind.__name__}")
            if id(obj) in on_path:
                raise self.refuse("a container holds itself (a cycle)")
            if id(obj) in sizes:
                continue
            if depth >= MAX_DEPTH:
                raise self.refuse(f"containers nested more than {MAX_DEPTH} deep")
            on_path.add(id(obj))
            stack.append((obj, depth, True))
            stack.extend((child, depth + 1, False) for child in _children(obj))

    def _check_array(self, array: np.ndarray) -> None:
        entry = self._arrays.get(id(array))
        dtype = array.dtype
        if entry is None or entry[0] is not array:
            raise self.refuse("an array this loader did not build")
        if (
            dtype.kind not in _PLAIN_KINDS
            or dtype.hasobject
            or dtype.names is not None
            or dtype.subdtype is not None
            or array.nbytes != array.size * dtype.itemsize
            or array.nbytes != entry[1]
        ):
            raise self.refuse(f"an array of dtype {dtype} and shape {array.shape} that is not plain numeric data")


def _refuse_opcode(what: str):
    """A dispatch entry that refuses its opcode."""

    def load(unpickler):
        raise unpickler.refuse(what)

    return load


def _brief(value) -> str:
    """A short description of an untrusted value for an error message: its repr when it is small and flat,
    else its type and length (a repr of a crafted object could be huge or recurse without end)."""
    flat = (type(None), bool, int, float, str, bytes)
    if type(value) in flat:
        text = repr(value)
    elif type(value) in (tuple, list) and len(value) <= 9 and all(type(v) in flat for v in value):
        text = repr(value)
    else:
        size = f" of length {len(value)}" if type(value) in (tuple, list, dict, set, frozenset) else ""
        return f"<{type(value).__name__}{size}>"
    return text if len(text) <= 120 else text[:117] + "..."


def _children(obj) -> list:
    if type(obj) in (dict, OrderedDict):
        return [*obj.keys(), *obj.values()]
    if type(obj) is slice:
        return [obj.start, obj.stop, obj.step]
    return list(obj)


# The dispatch table, rebuilt: the opcodes below only push data, read the memo or frame the stream, and keep
# pickle's own handlers (GLOBAL and STACK_GLOBAL go through find_class); the ones that call, mutate or fill
# hashed containers get the checked handlers of RestrictedUnpickler; every other opcode is refused, including
# any a later Python adds (reviewed against Python 3.10-3.13, protocols 0-5).
_DATA_OPCODES = frozenset(
    """PROTO FRAME STOP MARK POP POP_MARK DUP NONE NEWTRUE NEWFALSE INT BININT BININT1 BININT2 LONG LONG1 LONG4
    FLOAT BINFLOAT STRING BINSTRING SHORT_BINSTRING BINBYTES SHORT_BINBYTES BINBYTES8 BYTEARRAY8 UNICODE
    BINUNICODE SHORT_BINUNICODE BINUNICODE8 TUPLE EMPTY_TUPLE TUPLE1 TUPLE2 TUPLE3 LIST EMPTY_LIST EMPTY_DICT
    EMPTY_SET GET BINGET LONG_BINGET PUT BINPUT LONG_BINPUT MEMOIZE GLOBAL STACK_GLOBAL""".split()
)
_CHECKED_OPCODES = {
    "REDUCE": RestrictedUnpickler._load_reduce,
    "BUILD": RestrictedUnpickler._load_build,
    "APPEND": RestrictedUnpickler._load_append,
    "APPENDS": RestrictedUnpickler._load_appends,
    "SETITEM": RestrictedUnpickler._load_setitem,
    "SETITEMS": RestrictedUnpickler._load_setitems,
    "DICT": RestrictedUnpickler._load_dict,
    "ADDITEMS": RestrictedUnpickler._load_additems,
    "FROZENSET": RestrictedUnpickler._load_frozenset,
}
_REFUSED_WHY = {
    "NEWOBJ": "NEWOBJ (cls.__new__)",
    "NEWOBJ_EX": "NEWOBJ_EX (cls.__new__)",
    "INST": "INST (calling a class)",
    "OBJ": "OBJ (calling a class)",
    "EXT1": "an extension-registry code",
    "EXT2": "an extension-registry code",
    "EXT4": "an extension-registry code",
    "PERSID": "a persistent id",
    "BINPERSID": "a persistent id",
    "NEXT_BUFFER": "an out-of-band buffer (protocol 5); dataset pickles carry their data in-band",
    "READONLY_BUFFER": "an out-of-band buffer (protocol 5); dataset pickles carry their data in-band",
}


def _dispatch_table() -> dict:
    names = {opcode.code.encode("latin1")[0]: opcode.name for opcode in pickletools.opcodes}
    table = {}
    for key, handler in pickle._Unpickler.dispatch.items():
        name = names.get(key, f"opcode {key:#04x}")
        if name in _DATA_OPCODES:
            table[key] = handler
        elif name in _CHECKED_OPCODES:
            table[key] = _CHECKED_OPCODES[name]
        else:
            table[key] = _refuse_opcode(_REFUSED_WHY.get(name, f"the opcode {name}, which dataset pickles never use"))
    return table


RestrictedUnpickler.dispatch = _dispatch_table()


def load_bytes(data: bytes, name: str = "<pickle>"):
    """Unpickle ``data`` (the bytes of the file ``name``) with :class:`RestrictedUnpickler` and check the result.

    Returns the unpickled object: dicts, lists, tuples, sets, strings, numbers, None and plain numeric numpy
    arrays and scalars. Raises :class:`UnsafePickleError` when the stream asks for anything else or more
    memory than its size allows, and :class:`CorruptPickleError` when it is not a readable pickle; both
    messages name the file. No other exception escapes.
    """
    unpickler = RestrictedUnpickler(io.BytesIO(data), name=name, size=len(data))
    try:
        result = unpickler.load()
        unpickler.check_result(result)
    except UnsafePickleError:
        raise
    # Anything else raised while reading attacker-controlled bytes means the stream is unreadable: the pickle
    # machinery and numpy raise many kinds (EOFError, struct.error, KeyError for a missing memo, ValueError,
    # TypeError, UnicodeDecodeError, OverflowError, RecursionError, ...), and callers need one.
    except Exception as err:
        raise CorruptPickleError(
            f"{name}: not a readable pickle ({type(err).__name__}: {str(err)[:200]}); the file is truncated, "
            "corrupt or of another kind"
        ) from err
    return result
