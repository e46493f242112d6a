"""The restricted unpickler (glasspipe.importers.safe_pickle) against crafted pickles.

Every crafted stream below uses only globals the loader allows (numpy.dtype, _frombuffer, _reconstruct,
bytearray, ...), which is what made them dangerous: the first is the proof of concept from issue 18, a
214-byte pickle that handed back the builtin ``len`` from an address the file carried. Each must be refused
with an error naming the file. They are loaded in a child interpreter (one for all cases, restarted after
any case that kills it), so a regression that crashes or exhausts memory fails its test instead of killing
pytest. Legitimate pickles (what numpy and Python write, protocols 0-5, and DeepMind's sample) must load
exactly as ``pickle.loads`` would load them.
"""

from __future__ import annotations

import collections
import json
import pickle
import struct
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from conftest import REPO

from glasspipe.importers import DatasetError, load
from glasspipe.importers.safe_pickle import CorruptPickleError, UnsafePickleError, load_bytes

DEEPMIND_FILE = "deepmind_test_small.pickle"
CHILD_TIMEOUT_S = 300  # all crafted cases together take about a second


# ------------------------------------------------------------------------------ a tiny pickle assembler
def g(module: str, name: str) -> bytes:
    """GLOBAL module.name (protocol 0 opcode, valid in every protocol)."""
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def s(text: str) -> bytes:
    data = text.encode()
    return b"X" + struct.pack("<I", len(data)) + data


def i(value: int) -> bytes:
    return b"J" + struct.pack("<i", value)


def big(value: int) -> bytes:
    """LONG1: an int of any size."""
    data = value.to_bytes((value.bit_length() + 8) // 8, "little", signed=True)
    return b"\x8a" + bytes([len(data)]) + data


def raw(data: bytes) -> bytes:
    return b"B" + struct.pack("<I", len(data)) + data


def t(*items: bytes) -> bytes:
    return b"(" + b"".join(items) + b"t"


NONE, REDUCE, BUILD, STOP, POP = b"N", b"R", b"b", b".", b"0"
EMPTY_LIST, APPEND, APPENDS, EMPTY_DICT, SETITEM = b"]", b"a", b"e", b"}", b"s"
PROTO2 = b"\x80\x02"


def put(index: int) -> bytes:
    return b"q" + bytes([index])


def get(index: int) -> bytes:
    return b"h" + bytes([index])


def dtype(spec: str, state: bytes | None = None) -> bytes:
    """numpy.dtype(spec, 0, 1), then BUILD with ``state`` when given."""
    made = g("numpy", "dtype") + t(s(spec), i(0), i(1)) + REDUCE
    return made if state is None else made + state + BUILD


def dtype_state(endian: str, names=NONE, fields=NONE, elsize=-1, alignment=-1, flags=0) -> bytes:
    """numpy's dtype state (3, endian, subarray, names, fields, elsize, alignment, flags)."""
    return t(i(3), s(endian), NONE, names, fields, i(elsize), i(alignment), i(flags))


PLAIN_F8 = dtype("f8", dtype_state("<"))


def frombuffer(data: bytes, dtype_ops: bytes, shape: tuple[int, ...]) -> bytes:
    return g("numpy.core.numeric", "_frombuffer") + t(raw(data), dtype_ops, t(*map(i, shape)), s("C")) + REDUCE


def issue_proof_of_concept(address: int) -> bytes:
    """Issue 18: a V8 dtype whose BUILD state declares an object field 'f' at offset 0 with flags 0 (so
    hasobject is False), and _frombuffer reading 8 file bytes (an address) as that field."""
    object_dtype = dtype("O", dtype_state("|", flags=63))
    fields = EMPTY_DICT + s("f") + t(object_dtype, i(0)) + SETITEM
    v8 = dtype("V8", dtype_state("|", names=t(s("f")), fields=fields, elsize=8, alignment=1))
    return PROTO2 + frombuffer(struct.pack("<Q", address), v8, (1,)) + STOP


def nested_lists(depth: int) -> bytes:
    """[[[...]]] ``depth`` deep, built bottom-up without recursion in the pickle."""
    return PROTO2 + EMPTY_LIST * depth + APPEND * (depth - 1) + STOP


def doubling_dag(levels: int) -> bytes:
    """A list holding the same list twice, ``levels`` times over: 2**levels float arrays of 8 KiB each from a
    few hundred bytes (np.asarray of it would allocate 2**levels * 8 KiB)."""
    array = (
        g("numpy.core.multiarray", "_reconstruct")
        + t(g("numpy", "ndarray"), t(i(0)), b"C\x01b")
        + REDUCE
        + t(i(1), t(i(1024)), PLAIN_F8, b"\x89", raw(bytes(8192)))
        + BUILD
    )
    ops = PROTO2 + array + put(0) + POP
    for _ in range(levels):  # memo[0] = [memo[0], memo[0]]
        ops += EMPTY_LIST + b"(" + get(0) + get(0) + APPENDS + put(0) + POP
    return ops + get(0) + STOP


class _Reduce:
    def __init__(self, func, args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def _out_of_band() -> bytes:
    return pickle.dumps(pickle.PickleBuffer(bytearray(64)), protocol=5, buffer_callback=lambda buffer: False)


# name -> (bytes, what the refusal must say). Each must raise UnsafePickleError naming the file.
CRAFTED = {
    # the proof of concept of issue 18 (the dtype 'V8' is refused before its state is read)
    "issue_object_pointer": (issue_proof_of_concept(0x7F00DEADBEEF), "dtype 'V8'"),
    # the same attack on a plain dtype: f8, then a BUILD that declares a field and clears the flags (the field's
    # dtype is f8 here so that the state itself is what gets refused; an 'O' field is refused earlier, below)
    "fields_in_state": (
        PROTO2
        + frombuffer(
            bytes(8),
            dtype(
                "f8",
                dtype_state(
                    "|",
                    names=t(s("f")),
                    fields=EMPTY_DICT + s("f") + t(dtype("f8"), i(0)) + SETITEM,
                    elsize=8,
                    alignment=1,
                ),
            ),
            (1,),
        )
        + STOP,
        "dtype state",
    ),
    # a field offset far outside the item: reading it would read memory out of bounds
    "out_of_range_offset": (
        PROTO2
        + frombuffer(
            bytes(8),
            dtype(
                "f8",
                dtype_state(
                    "<",
                    names=t(s("f")),
                    fields=EMPTY_DICT + s("f") + t(dtype("f8"), i(1 << 30)) + SETITEM,
                    elsize=8,
                ),
            ),
            (1,),
        )
        + STOP,
        "dtype state",
    ),
    "object_dtype": (PROTO2 + dtype("O") + STOP, "dtype 'O'"),
    "object_field_in_state": (
        PROTO2
        + dtype(
            "f8",
            dtype_state(
                "|", names=t(s("f")), fields=EMPTY_DICT + s("f") + t(dtype("O"), i(0)) + SETITEM, elsize=8, alignment=1
            ),
        )
        + STOP,
        "dtype 'O'",
    ),
    "void_dtype": (PROTO2 + dtype("V16") + STOP, "dtype 'V16'"),
    "subarray_dtype": (PROTO2 + dtype("(2,)f8") + STOP, "dtype '(2,)f8'"),
    "datetime_dtype": (PROTO2 + dtype("M8") + STOP, "dtype 'M8'"),
    "string_dtype": (PROTO2 + dtype("U8") + STOP, "dtype 'U8'"),
    "flags_only_state": (PROTO2 + dtype("f8", dtype_state("<", flags=63)) + STOP, "dtype state"),
    "elsize_state": (PROTO2 + dtype("f8", dtype_state("<", elsize=4096)) + STOP, "dtype state"),
    "second_dtype_build": (
        PROTO2 + dtype("f8", dtype_state("<")) + dtype_state(">") + BUILD + STOP,
        "second BUILD",
    ),
    # the 55-byte protocol-4 pickle of issue 18: bytearray(2**31 - 1) allocated 2 GiB
    "huge_bytearray": (pickle.dumps(_Reduce(bytearray, (2**31 - 1,)), protocol=4), "bytearray(int)"),
    "huge_reconstruct_shape": (
        PROTO2
        + g("numpy.core.multiarray", "_reconstruct")
        + t(g("numpy", "ndarray"), t(big(1 << 40)), b"C\x01b")
        # C\x01b: SHORT_BINBYTES b'b', numpy's typecode argument
        + REDUCE
        + STOP,
        "_reconstruct of shape",
    ),
    "array_state_size_mismatch": (
        PROTO2
        + g("numpy.core.multiarray", "_reconstruct")
        + t(g("numpy", "ndarray"), t(i(0)), b"C\x01b")
        + REDUCE
        + t(i(1), t(i(1 << 28)), PLAIN_F8, b"\x89", raw(bytes(8)))
        + BUILD
        + STOP,
        "8 bytes for shape",
    ),
    "frombuffer_size_mismatch": (PROTO2 + frombuffer(bytes(8), PLAIN_F8, (1 << 20,)) + STOP, "8 bytes for shape"),
    "ndarray_called": (
        PROTO2 + g("numpy", "ndarray") + t(t(big(1 << 40)), s("f8")) + REDUCE + STOP,
        "only as the first argument",
    ),
    "codec_expansion": (
        PROTO2 + g("_codecs", "encode") + t(raw(b"ab" * 64), s("hex")) + REDUCE + STOP,
        "encode(str, 'latin1')",
    ),
    "deep_nesting": (nested_lists(200_000), "nested more than"),
    "shared_doubling": (doubling_dag(24), "logical size"),
    "cycle": (PROTO2 + EMPTY_LIST + put(0) + get(0) + APPEND + STOP, "holds itself"),
    "colliding_int_keys": (
        PROTO2 + EMPTY_DICT + big((1 << 61) - 1) + i(0) + SETITEM + big(2 * ((1 << 61) - 1)) + i(1) + SETITEM + STOP,
        "key or set element of type int",
    ),
    "colliding_keys_via_dict_opcode": (
        PROTO2 + b"(" + big((1 << 61) - 1) + i(0) + big(2 * ((1 << 61) - 1)) + i(1) + b"d" + STOP,
        "key or set element of type int",
    ),
    "build_on_dict": (PROTO2 + EMPTY_DICT + EMPTY_DICT + BUILD + STOP, "BUILD"),
    "out_of_band_buffer": (_out_of_band(), "out-of-band"),
    "newobj": (PROTO2 + g("builtins", "set") + b")" + b"\x81" + STOP, "NEWOBJ"),
    "os_system": (pickle.dumps(_Reduce(__import__("os").system, ("true",)), protocol=2), "global 'posix.system'"),
}

CHILD = textwrap.dedent(
    """
    import json, resource, sys
    from pathlib import Path
    from glasspipe.importers import DatasetError, load
    from glasspipe.importers.safe_pickle import load_bytes

    folder = Path(sys.argv[1])
    for name in sys.argv[2:]:
        path = folder / f"{name}.pickle"
        print(json.dumps({"case": name, "started": True}), flush=True)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        outcome = {"case": name}
        try:
            load_bytes(path.read_bytes(), name=str(path))
            outcome["load_bytes"] = ["returned", ""]
        except Exception as err:
            outcome["load_bytes"] = [type(err).__name__, str(err)]
        try:
            load("deepmind", path)
            outcome["importer"] = ["returned", ""]
        except Exception as err:
            outcome["importer"] = [type(err).__name__, str(err)]
        outcome["rss_growth_kib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
        print(json.dumps(outcome), flush=True)
    """
)


@pytest.fixture(scope="module")
def crafted_outcomes(tmp_path_factory) -> dict:
    """Load every crafted pickle in a child interpreter; a case during which the child died is recorded as
    a crash (with its return code) and the child restarted on the remaining cases."""
    folder = tmp_path_factory.mktemp("crafted")
    for name, (data, _) in CRAFTED.items():
        (folder / f"{name}.pickle").write_bytes(data)
    outcomes: dict[str, dict] = {}
    pending = list(CRAFTED)
    while pending:
        try:
            result = subprocess.run(
                [sys.executable, "-c", CHILD, str(folder), *pending],
                capture_output=True,
                timeout=CHILD_TIMEOUT_S,
                cwd=REPO,
            )
            stdout, returncode, stderr = result.stdout, result.returncode, result.stderr
        except subprocess.TimeoutExpired as hung:  # the child was killed: the case it was in hangs
            stdout, returncode, stderr = hung.stdout or b"", f"killed after {CHILD_TIMEOUT_S} s", hung.stderr or b""
        started = None
        for line in stdout.decode().splitlines():
            record = json.loads(line)
            if record.get("started"):
                started = record["case"]
            else:
                outcomes[record["case"]] = record
                started = None
        if started is not None:  # the child died (or hung) inside this case
            outcomes[started] = {"case": started, "crash": (returncode, stderr.decode()[-2000:])}
        elif returncode != 0:
            pytest.fail(f"the child interpreter failed outside any case: {stderr.decode()[-2000:]}")
        pending = [name for name in pending if name not in outcomes]
    return outcomes


@pytest.mark.parametrize("case", list(CRAFTED))
def test_crafted_pickle_refused(crafted_outcomes, case):
    """Expected: load_bytes raises UnsafePickleError whose message names the file and the refusal, and the
    importer raises DatasetError with the same message; no crash, and no allocation beyond 64 MiB (the
    huge-size cases would allocate gigabytes if their sizes were trusted)."""
    outcome = crafted_outcomes[case]
    assert "crash" not in outcome, f"{case} crashed or hung the interpreter: {outcome['crash']}"
    kind, message = outcome["load_bytes"]
    assert kind == "UnsafePickleError", f"{case}: {kind}: {message}"
    assert f"{case}.pickle" in message and CRAFTED[case][1] in message, message
    kind, message = outcome["importer"]
    assert kind == "DatasetError" and f"{case}.pickle" in message, f"{case}: {kind}: {message}"
    assert outcome["rss_growth_kib"] < 64 * 1024


def test_proof_of_concept_is_a_real_attack():
    """Without the restrictions, the proof of concept returns the live object at the address the file
    gives: plain pickle.loads (in a child) of the stream carrying id(len) hands back len itself. This shows
    the refused stream above is the attack of issue 18, not a harmless look-alike."""
    code = textwrap.dedent(
        f"""
        import pickle, sys
        sys.path.insert(0, {str(REPO / "tests")!r})
        from test_safe_pickle import issue_proof_of_concept
        try:
            array = pickle.loads(issue_proof_of_concept(id(len)))
        except Exception as err:  # a numpy that validates dtype states itself
            print("numpy refused:", err)
        else:
            print("returned len:", array["f"][0] is len)
        """
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert result.returncode == 0, result.stderr[-2000:]
    if result.stdout.startswith("numpy refused"):
        pytest.skip(f"this numpy validates dtype states itself ({result.stdout.strip()})")
    assert result.stdout.strip() == "returned len: True"


# ------------------------------------------------------------------------------------ what must still load
LEGITIMATE = [
    np.arange(6.0).reshape(2, 3),
    np.arange(6.0).reshape(2, 3).T,  # Fortran order
    np.arange(12, dtype=">i4")[::2],  # big-endian, not contiguous
    np.arange(4, dtype=">f8"),
    np.zeros((0, 3)),
    np.array(3.0),
    np.ones(5, dtype="f2"),
    np.ones(3, dtype=np.longdouble),
    np.array([1 + 2j], dtype="c8"),
    np.array([True, False]),
    np.arange(5, dtype=np.uint16),
    np.float64(2.5),
    np.int8(-3),
    np.complex64(1 + 2j),
    np.bool_(True),
    {1, 2},
    frozenset({"a"}),
    collections.OrderedDict(a=1),
    bytearray(b"ab"),
    b"",
    b"xyz",
    1 + 2j,
    slice(1, 2, 3),
    {"a": [(1, 2.0, None, "text")], "b": {"c": [1, 2]}},
]


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_what_numpy_and_python_write_loads_unchanged(protocol):
    """Expected: the same value, dtype (byte order included), shape and memory order as pickle.loads gives
    (numpy turns a non-native byte order into native when it unpickles; so must this loader)."""
    for value in LEGITIMATE:
        data = pickle.dumps(value, protocol=protocol)
        expected = pickle.loads(data)
        loaded = load_bytes(data, name="legit.pickle")
        assert type(loaded) is type(expected), (protocol, value)
        if isinstance(expected, np.ndarray):
            assert loaded.dtype == expected.dtype and loaded.dtype.byteorder == expected.dtype.byteorder
            assert loaded.shape == expected.shape and loaded.flags.f_contiguous == expected.flags.f_contiguous
            np.testing.assert_array_equal(loaded, expected)
        elif isinstance(expected, np.generic):
            assert loaded == expected and loaded.dtype == expected.dtype
        else:
            assert loaded == expected
    # numpy's shared dtypes were not altered by the BUILDs of big-endian copies
    assert np.dtype("f8").byteorder == "=" and np.dtype("i4").byteorder == "="


def test_deepmind_sample_loads_as_pickle_would(shared_data):
    """Expected: every key of DeepMind's sample equal to what plain pickle.loads returns (trusted here only
    because it is the project's own vetted sample), arrays with the same dtype."""
    data = (shared_data / DEEPMIND_FILE).read_bytes()
    expected = pickle.loads(data, encoding="latin1")
    loaded = load_bytes(data, name=DEEPMIND_FILE)
    assert sorted(loaded) == sorted(expected)
    for key, value in expected.items():
        if isinstance(value, np.ndarray):
            assert loaded[key].dtype == value.dtype
        np.testing.assert_array_equal(np.asarray(loaded[key]), np.asarray(value))
    assert loaded["metadata"] == {"temperature": 0.44, "pressure": 2.93, "fluid": "Kob Andersen"}


def test_python2_style_pickle_loads():
    """Protocol 2 written as Python 2 numpy did: array bytes as a latin-1 str (BINSTRING), '__builtin__'
    names. Expected: the array [1.0, 2.0]."""
    data = np.array([1.0, 2.0]).tobytes()
    stream = (
        PROTO2
        + g("numpy.core.multiarray", "_reconstruct")
        + t(g("numpy", "ndarray"), t(i(0)), b"U\x01b")  # SHORT_BINSTRING 'b'
        + REDUCE
        + t(i(1), t(i(2)), dtype("f8", dtype_state("<")), b"\x89", b"T" + struct.pack("<i", len(data)) + data)
        + BUILD
        + STOP
    )
    np.testing.assert_array_equal(load_bytes(stream, name="py2.pickle"), [1.0, 2.0])
    assert load_bytes(pickle.dumps({1, 2}, protocol=2), name="set.pickle") == {1, 2}  # '__builtin__ set'


@pytest.mark.parametrize(
    "data", [b"", b"\x80\x03", PROTO2 + EMPTY_LIST + APPEND + STOP, b"\x80\x09.", b"not a pickle at all"]
)
def test_corrupt_stream_named(data):
    """Expected: CorruptPickleError (an UnpicklingError) naming the file, never a bare EOFError/IndexError."""
    with pytest.raises(CorruptPickleError, match="broken.pickle"):
        load_bytes(data, name="broken.pickle")


def test_importer_names_the_file_for_refusals(tmp_path):
    """Expected: the DeepMind importer turns a refusal into DatasetError naming the file."""
    path = tmp_path / "evil.pickle"
    path.write_bytes(CRAFTED["huge_bytearray"][0])
    with pytest.raises(DatasetError, match="evil.pickle(.|\n)*bytearray"):
        load("deepmind", path)
    assert issubclass(UnsafePickleError, pickle.UnpicklingError)
