"""Property-based hostile-input suite over every data loader.

Each generated input must either load into a valid dataset or raise a one-line
:class:`~merc.errors.MercError`; any other exception (a raw ``KeyError``, ``ValueError``,
``IndexError``, numpy/torch error ...) is a bug. Budget: fixed, derandomised examples, so CI
is fast and repeatable.
"""

from __future__ import annotations

import functools
import io
import pickle
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from merc.config import DataConfig
from merc.data.formats import read_dataset
from merc.data.loading import load_dataset
from merc.data.schema import DialogueDataset
from merc.errors import MercError

BUDGET = settings(max_examples=60, deadline=None, derandomize=True, database=None,
                  suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

FIELDS = ("speaker", "label", "text", "audio", "visual", "sentence")
IDS = ("d0", "d1", "d2", "d3", "d4")


def valid_fields(seed: int = 0) -> dict[str, Any]:
    """Per-dialogue fields of a small valid IEMOCAP-style dataset (5 dialogues, dims 5/4/3)."""
    rng = np.random.default_rng(seed)
    lengths = {d: 3 + i for i, d in enumerate(IDS)}
    vec = lambda d, dim: [rng.normal(size=dim).astype(np.float32) for _ in range(lengths[d])]  # noqa: E731
    return {"ids": {d: [f"{d}_{j}" for j in range(n)] for d, n in lengths.items()},
            "speaker": {d: ["MF"[j % 2] for j in range(n)] for d, n in lengths.items()},
            "label": {d: [int(x) for x in rng.integers(0, 6, n)] for d, n in lengths.items()},
            "text": {d: vec(d, 5) for d in IDS}, "audio": {d: vec(d, 4) for d in IDS},
            "visual": {d: vec(d, 3) for d in IDS},
            "sentence": {d: [f"utterance {j}" for j in range(n)] for d, n in lengths.items()},
            "trainVid": list(IDS[:4]), "testVid": [IDS[4]]}


def as_dict_layout(f: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in f.items() if k != "ids"}


def as_tuple_layout(f: dict[str, Any]) -> tuple:
    return tuple(f.get(k, {}) for k in ("ids", "speaker", "label", "text", "audio", "visual", "sentence",
                                        "trainVid", "testVid"))


def outcome(call, *args: Any, **kwargs: Any) -> str:
    """``"ok"`` or ``"error"`` (a one-line MercError); anything else propagates and fails the test."""
    try:
        result = call(*args, **kwargs)
    except MercError as exc:
        message = str(exc)
        assert message and "\n" not in message, f"error message is not one line: {message!r}"
        return "error"
    assert isinstance(result, DialogueDataset)
    return "ok"


# -- hostile values -----------------------------------------------------------------------
hostile_scalar = st.one_of(
    st.none(), st.integers(-10**12, 10**12), st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=5),
    st.binary(max_size=6), st.just(b"\xff\xfe\xc3("), st.booleans())
hostile_array = st.one_of(
    st.builds(lambda: np.float32(np.nan)), st.builds(lambda: np.zeros((0,), np.float32)),
    st.builds(lambda: np.zeros((2, 2, 2), np.float32)), st.builds(lambda: np.full((7,), np.inf, np.float32)),
    st.builds(lambda: np.array(["a", "b"])), st.builds(lambda: np.zeros((3, 0), np.float64)),
    st.builds(lambda: np.zeros((4,), np.complex64)), st.builds(lambda: np.array([object()], dtype=object)[:0]))
hostile_value = st.one_of(hostile_scalar, hostile_array, st.lists(hostile_scalar, max_size=4), st.just({}),
                          st.just([]), st.dictionaries(st.text(max_size=3), hostile_scalar, max_size=2))


@st.composite
def mutation(draw: st.DrawFn) -> tuple[str, Any]:
    kind = draw(st.sampled_from(["replace_field", "replace_dialogue", "replace_utterance", "drop_key", "nan",
                                 "label_range", "shorten", "ragged", "empty_dialogue", "unknown_speaker",
                                 "split_unknown_id", "empty_splits", "non_utf8_text", "duplicate_split"]))
    return kind, (draw(st.sampled_from(FIELDS)), draw(st.sampled_from(IDS)), draw(st.integers(0, 2)),
                  draw(hostile_value), draw(st.sampled_from([np.nan, np.inf, -np.inf])),
                  draw(st.sampled_from([6, 99, -2, 2**40])))


def mutate(f: dict[str, Any], kind: str, args: tuple) -> None:
    key, did, j, value, bad_float, bad_label = args
    if kind == "replace_field":
        f[key] = value
    elif kind == "replace_dialogue":
        f[key][did] = value
    elif kind == "replace_utterance":
        f[key][did][j] = value
    elif kind == "drop_key":
        f.pop(key, None)
    elif kind == "nan":
        f["text"][did][j] = f["text"][did][j].copy()
        f["text"][did][j][0] = bad_float
    elif kind == "label_range":
        f["label"][did][j] = bad_label
    elif kind == "shorten":
        f[key][did] = f[key][did][:-1]
    elif kind == "ragged":
        f["audio"][did][j] = np.ones(9, np.float32)
    elif kind == "empty_dialogue":
        for name in FIELDS + ("ids",):
            f[name][did] = []
    elif kind == "unknown_speaker":
        f["speaker"][did][j] = "Zed"
    elif kind == "split_unknown_id":
        f["trainVid"] = f["trainVid"] + ["no_such_dialogue"]
    elif kind == "empty_splits":
        f["trainVid"], f["testVid"] = [], []
    elif kind == "non_utf8_text":
        f["sentence"][did][j] = b"\xff\xfe caf\xe9"
    elif kind == "duplicate_split":
        f["testVid"] = f["testVid"] + [f["trainVid"][0]]


def write_pickle(path: Path, obj: Any, protocol: int) -> Path:
    path.write_bytes(pickle.dumps(obj, protocol=protocol))
    return path


@BUDGET
@given(mutations=st.lists(mutation(), min_size=1, max_size=3), layout=st.sampled_from(["dict", "tuple"]),
       protocol=st.sampled_from([2, 4, 5]), clean=st.booleans())
def test_structurally_hostile_pickles(tmp_path_factory, mutations, layout, protocol, clean):
    fields = valid_fields()
    for kind, args in mutations:
        try:
            mutate(fields, kind, args)
        except (TypeError, KeyError, IndexError, AttributeError):
            pass  # an earlier mutation already replaced the container: keep what we have
    obj = as_dict_layout(fields) if layout == "dict" else as_tuple_layout(fields)
    try:
        path = write_pickle(tmp_path_factory.mktemp("p") / "data.pkl", obj, protocol)
    except (pickle.PicklingError, TypeError, AttributeError):
        return  # not picklable at all: nothing a user could hand us
    outcome(read_dataset, path)
    outcome(load_dataset, DataConfig(dataset=str(path), clean=clean))


@BUDGET
@given(data=st.data(), layout=st.sampled_from(["dict", "tuple"]))
def test_truncated_and_corrupted_pickles(tmp_path_factory, data, layout):
    fields = valid_fields()
    blob = pickle.dumps(as_dict_layout(fields) if layout == "dict" else as_tuple_layout(fields), protocol=2)
    how = data.draw(st.sampled_from(["truncate", "flip", "splice"]))
    if how == "truncate":
        blob = blob[: data.draw(st.integers(0, len(blob) - 1))]
    elif how == "flip":
        for _ in range(data.draw(st.integers(1, 8))):
            i = data.draw(st.integers(0, len(blob) - 1))
            blob = blob[:i] + bytes([data.draw(st.integers(0, 255))]) + blob[i + 1:]
    else:
        i = data.draw(st.integers(0, len(blob)))
        blob = blob[:i] + data.draw(st.binary(min_size=1, max_size=32)) + blob[i:]
    path = tmp_path_factory.mktemp("c") / "data.pkl"
    path.write_bytes(blob)
    outcome(load_dataset, DataConfig(dataset=str(path)))


DANGEROUS = [("os", "system"), ("posix", "system"), ("subprocess", "Popen"), ("builtins", "eval"),
             ("builtins", "exec"), ("builtins", "__import__"), ("builtins", "getattr"), ("builtins", "open"),
             ("shutil", "rmtree"), ("importlib", "import_module"), ("numpy", "load"), ("numpy.testing", "assert_"),
             ("torch", "load"), ("pickle", "loads"), ("runpy", "run_path"), ("webbrowser", "open"),
             ("numpy.core.multiarray", "system"), ("collections", "os")]


@BUDGET
@given(target=st.one_of(st.sampled_from(DANGEROUS),
                        st.tuples(st.from_regex(r"[a-z_]{1,8}(\.[a-z_]{1,6})?", fullmatch=True),
                                  st.from_regex(r"[A-Za-z_]{1,10}", fullmatch=True))),
       protocol=st.sampled_from([0, 2, 4]), nested=st.booleans())
def test_pickles_naming_disallowed_globals_are_refused_before_running(tmp_path_factory, target, protocol, nested):
    from merc.data.unpickle import ALLOWED_GLOBALS

    module, name = target
    if (module, name) in ALLOWED_GLOBALS:
        return
    tmp = tmp_path_factory.mktemp("g")
    marker = tmp / "executed"
    payload = _call_opcodes(module, name, f"touch {marker}", protocol)
    if nested and protocol:  # hide the call deep inside an otherwise valid dict pickle
        fields = as_dict_layout(valid_fields())
        fields["sentence"]["d2"][1] = PLACEHOLDER
        blob = pickle.dumps(fields, protocol=protocol)
        encoded = _string_opcode(PLACEHOLDER, protocol)
        assert blob.count(encoded) == 1
        blob = blob.replace(encoded, payload)
    else:
        blob = (b"" if protocol == 0 else bytes([0x80, protocol])) + payload + b"."
    path = tmp / "evil.pkl"
    path.write_bytes(blob)
    with pytest.raises(MercError, match=r"(?i)global|refus|pickle"):
        read_dataset(path)
    assert not marker.exists(), "the payload ran"


PLACEHOLDER = "@@payload@@"


def _string_opcode(text: str, protocol: int) -> bytes:
    raw = text.encode()
    if protocol >= 4:
        return b"\x8c" + bytes([len(raw)]) + raw  # SHORT_BINUNICODE
    return b"X" + len(raw).to_bytes(4, "little") + raw  # BINUNICODE


def _call_opcodes(module: str, name: str, arg: str, protocol: int) -> bytes:
    """Opcodes leaving ``module.name(arg)`` on the stack (GLOBAL or STACK_GLOBAL, then REDUCE)."""
    if protocol == 0:
        return f"c{module}\n{name}\n(V{arg}\ntR".encode()
    if protocol >= 4:
        glob = _string_opcode(module, 4) + _string_opcode(name, 4) + b"\x93"  # STACK_GLOBAL
    else:
        glob = b"c" + module.encode() + b"\n" + name.encode() + b"\n"  # GLOBAL
    return glob + _string_opcode(arg, protocol) + b"\x85R"  # TUPLE1, REDUCE


# -- the user format (CSV/JSONL table + .npz) ------------------------------------------------
@functools.lru_cache(maxsize=1)
def user_files() -> dict[str, bytes]:
    """The bytes of a valid user-format dataset (6 synthetic dialogues) as CSV, JSONL and NPZ."""
    from merc.data.formats import save_user_dataset

    ds = load_dataset(DataConfig(dataset="synthetic-small"))
    ds = ds.subset([d.id for d in ds.dialogues[:6]])
    with tempfile.TemporaryDirectory() as tmp:
        table, npz = save_user_dataset(ds, Path(tmp) / "data.csv")
        jsonl, _ = save_user_dataset(ds, Path(tmp) / "j" / "data.jsonl")
        out = {"csv": table.read_bytes(), "jsonl": jsonl.read_bytes()}
        if npz is not None:
            out["npz"] = npz.read_bytes()
    return out


@BUDGET
@given(data=st.data(), kind=st.sampled_from(["csv", "jsonl"]))
def test_hostile_user_tables(tmp_path_factory, data, kind):
    files = user_files()
    blob = files[kind]
    how = data.draw(st.sampled_from(["truncate", "insert", "drop_line", "non_utf8", "flip", "empty", "swap_cols"]))
    lines = blob.split(b"\n")
    if how == "truncate":
        blob = blob[: data.draw(st.integers(0, len(blob)))]
    elif how == "insert":
        i = data.draw(st.integers(0, len(blob)))
        blob = blob[:i] + data.draw(st.binary(min_size=1, max_size=16)) + blob[i:]
    elif how == "drop_line":
        del lines[data.draw(st.integers(0, len(lines) - 1))]
        blob = b"\n".join(lines)
    elif how == "non_utf8":
        i = data.draw(st.integers(0, len(blob)))
        blob = blob[:i] + b"\xff\xfe\xfd" + blob[i:]
    elif how == "flip":
        i = data.draw(st.integers(0, len(blob) - 1))
        blob = blob[:i] + bytes([data.draw(st.integers(0, 255))]) + blob[i + 1:]
    elif how == "empty":
        blob = b""
    else:
        lines[0] = b",".join(reversed(lines[0].split(b",")))
        blob = b"\n".join(lines)
    root = tmp_path_factory.mktemp("u")
    path = root / f"data.{kind}"
    path.write_bytes(blob)
    if "npz" in files:
        npz = files["npz"]
        if data.draw(st.booleans()):
            npz = npz[: data.draw(st.integers(0, len(npz)))]
        (root / "data.npz").write_bytes(npz)
    outcome(load_dataset, DataConfig(dataset=str(path)))


@BUDGET
@given(data=st.data())
def test_hostile_npz_members(tmp_path_factory, data):
    files = user_files()
    members = dict(np.load(io.BytesIO(files["npz"]), allow_pickle=False))
    name = data.draw(st.sampled_from(sorted(members)))
    original = members[name]
    rows = original.shape[0] if original.ndim else 1
    members[name] = data.draw(st.sampled_from([
        np.zeros((0,), np.float32), np.full((3, 2), np.nan, np.float32), np.zeros((2, 2, 2, 2), np.float32),
        np.array(["x"]), np.zeros((rows + 1,) + original.shape[1:], original.dtype), original[:-1] if original.ndim
        else original, np.array(b"\xff\xfe"), np.zeros((1, 3), np.int64), np.array('{"splits": 3}'),
        np.array("not json")]))
    if data.draw(st.booleans()):
        members.pop(data.draw(st.sampled_from(sorted(members))), None)
    root = tmp_path_factory.mktemp("n")
    (root / "data.csv").write_bytes(files["csv"])
    with zipfile.ZipFile(root / "data.npz", "w") as zf:
        for key, value in members.items():
            buf = io.BytesIO()
            np.save(buf, value, allow_pickle=False)
            zf.writestr(f"{key}.npy", buf.getvalue())
    outcome(load_dataset, DataConfig(dataset=str(root / "data.csv")))


@BUDGET
@given(text=st.binary(max_size=200), name=st.sampled_from(["train_sent_emo.csv", "emorynlp_train_final.csv"]))
def test_hostile_transcript_csvs(tmp_path_factory, text, name):
    root = tmp_path_factory.mktemp("t")
    (root / name).write_bytes(text)
    outcome(load_dataset, DataConfig(dataset=str(root)))
