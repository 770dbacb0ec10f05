"""Restricted unpickler and the tuple/dict feature-pickle readers."""

from __future__ import annotations

import io
import os
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest

from merc.data.formats import read_dataset, read_dict_pickle, read_tuple_pickle, replace_text_features
from merc.data.unpickle import load_pickle, loads_restricted
from merc.errors import DataError


class Py2Pickler(pickle._Pickler):
    """Writes what Python 2 wrote: byte strings (``str``) as BINSTRING and numpy under ``numpy.core``."""

    dispatch = dict(pickle._Pickler.dispatch)

    def save_str8(self, obj: str | bytes) -> None:
        data = obj if isinstance(obj, bytes) else obj.encode("utf-8")
        if len(data) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(data)]) + data)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(data)) + data)
        self.memoize(obj)

    dispatch[bytes] = save_str8
    dispatch[str] = save_str8

    def save_global(self, obj: object, name: str | None = None) -> None:
        module = obj.__module__.replace("numpy._core", "numpy.core").replace("builtins", "__builtin__")
        self.write(pickle.GLOBAL + f"{module}\n{name or obj.__qualname__}\n".encode())
        self.memoize(obj)


def py2_dump(obj: object, path: Path) -> Path:
    buffer = io.BytesIO()
    Py2Pickler(buffer, protocol=2).dump(obj)
    path.write_bytes(buffer.getvalue())
    return path


def make_content(seed: int = 0, n_dialogues: int = 4, dims: tuple[int, int, int] = (5, 4, 3)):
    """Per-dialogue fields of a small IEMOCAP-like dataset."""
    rng = np.random.default_rng(seed)
    ids = [f"Ses0{i}F_impro0{i}" for i in range(n_dialogues)]
    lengths = {d: int(rng.integers(2, 6)) for d in ids}
    speakers = {d: [("M", "F")[k % 2] for k in range(n)] for d, n in lengths.items()}
    labels = {d: [int(x) for x in rng.integers(0, 6, n)] for d, n in lengths.items()}
    feats = {m: {d: [rng.standard_normal(dim).astype(np.float32) for _ in range(n)] for d, n in lengths.items()}
             for m, dim in zip("tav", dims)}
    sentences = {d: [f"utterance {k} of {d} it’s" for k in range(n)] for d, n in lengths.items()}
    return ids, speakers, labels, feats, sentences


def tuple_obj(content, utterance_ids=True):
    ids, speakers, labels, feats, sentences = content
    vids = {d: [str(k) for k in range(len(speakers[d]))] for d in ids} if utterance_ids else None
    return (vids, speakers, labels, feats["t"], feats["a"], feats["v"], sentences, ids[:3], ids[3:])


def dict_obj(content):
    ids, speakers, labels, feats, sentences = content
    return {"trainVid": ids[:3], "testVid": ids[3:], "speaker": speakers, "label": labels, "text": feats["t"],
            "audio": feats["a"], "visual": feats["v"], "sentence": sentences}


def test_tuple_latin1_and_dict_pickles_load_to_identical_dialogues(tmp_path: Path) -> None:
    content = make_content()
    tup = read_dataset(py2_dump(tuple_obj(content), tmp_path / "IEMOCAP_features.pkl"))
    dict_path = tmp_path / "iemocap.pkl"
    dict_path.write_bytes(pickle.dumps(dict_obj(content), protocol=4))
    dic = read_dataset(dict_path)
    assert tup.meta["format"] == "tuple-pickle" and dic.meta["format"] == "dict-pickle"
    assert tup.label_names == dic.label_names == ["hap", "sad", "neu", "ang", "exc", "fru"]
    assert tup.splits == dic.splits == {"train": content[0][:3], "test": content[0][3:]}
    assert len(tup.dialogues) == len(dic.dialogues) == 4
    for a, b in zip(tup.dialogues, dic.dialogues):
        assert a.id == b.id and a.speakers == b.speakers and a.utterance_ids == b.utterance_ids
        assert a.texts == b.texts and a.texts[0].endswith("it’s")  # py2 utf-8 bytes repaired
        np.testing.assert_array_equal(a.labels, b.labels)
        assert set(a.features) == set(b.features) == {"t", "a", "v"}
        for m in "tav":
            assert a.features[m].dtype == np.float32
            np.testing.assert_array_equal(a.features[m], b.features[m])
    np.testing.assert_array_equal(tup.dialogues[0].features["t"], np.stack(content[3]["t"][content[0][0]]))


def test_meld_tuple_one_hot_speakers_and_labels(tmp_path: Path) -> None:
    eye = np.eye(9, dtype=np.float32)
    speakers = {0: [eye[3], eye[0], eye[3]], 1: [eye[1], eye[2]]}
    labels = {0: [6, 0, 4], 1: [1, 2]}
    text = {k: np.ones((len(v), 6), np.float32) for k, v in labels.items()}
    obj = ({0: ["0_0", "0_1", "0_2"], 1: ["1_0", "1_1"]}, speakers, labels, text, text, text, {0: ["a", "b", "c"], 1: ["d", "e"]},
           [0], [1], None)
    ds = read_tuple_pickle(py2_dump(obj, tmp_path / "MELD_features_raw1.pkl"))
    assert ds.label_names[6] == "anger" and ds.label_names[0] == "neutral"
    assert ds["0"].speakers == ["speaker_3", "speaker_0", "speaker_3"] and ds["1"].utterance_ids == ["1_0", "1_1"]
    assert ds.splits == {"train": ["0"], "test": ["1"]}
    assert ds.meta["label_set"] == "meld-7"


def test_cosmic_roberta_pickle_as_text_source(tmp_path: Path) -> None:
    content = make_content()
    ids, speakers, labels, _, sentences = content
    rng = np.random.default_rng(1)
    layers = [{d: rng.standard_normal((len(speakers[d]), 8)).astype(np.float32) for d in ids} for _ in range(4)]
    cosmic = (speakers, labels, *layers, sentences, ids[:2], ids[3:], ids[2:3])
    path = tmp_path / "iemocap_features_roberta.pkl"
    path.write_bytes(pickle.dumps(cosmic, protocol=2))
    ds = read_dataset(path, roberta="mean")
    assert ds.meta["layout"] == "cosmic-iemocap" and ds.splits["dev"] == ids[2:3]
    np.testing.assert_allclose(ds[ids[0]].features["t"], np.mean([layer[ids[0]] for layer in layers], axis=0))
    assert read_tuple_pickle(path, roberta="concat")[ids[0]].features["t"].shape[1] == 32
    base = read_dataset(py2_dump(tuple_obj(content), tmp_path / "IEMOCAP_features.pkl"))
    mixed = replace_text_features(base, ds)
    assert mixed.dims == {"t": 8, "a": 4, "v": 3}
    np.testing.assert_array_equal(mixed[ids[1]].features["a"], base[ids[1]].features["a"])


class _Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # noqa: ANN204
        return (os.system, (f"touch {self.marker}",))


def test_disallowed_global_is_refused_and_never_runs(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"trainVid": [_Payload(marker)]}, protocol=2))
    with pytest.raises(DataError, match=r"refusing global (os|posix)\.system") as info:
        read_dataset(path)
    assert "evil.pkl" in str(info.value) and "\n" not in str(info.value)
    assert not marker.exists()


@pytest.mark.parametrize("payload", [b"cbuiltins\neval\n(S'1'\ntR.", b"ccopy_reg\n_reconstructor\n(tR.",
                                     b"c__builtin__\ngetattr\n(tR."])
def test_other_dangerous_globals_refused(payload: bytes) -> None:
    with pytest.raises(DataError, match="refusing global"):
        loads_restricted(payload)


def test_py2_builtin_names_and_numpy_scalars_allowed() -> None:
    obj = {"s": {1, 2}, "x": np.float32(2.5), "y": np.arange(3), "f": frozenset({"a"})}
    for data in (pickle.dumps(obj, protocol=2), pickle.dumps(obj, protocol=5)):
        out = loads_restricted(data)
        assert out["s"] == {1, 2} and out["x"] == np.float32(2.5) and out["f"] == frozenset({"a"})
        np.testing.assert_array_equal(out["y"], np.arange(3))
    assert loads_restricted(b"c__builtin__\nset\n((lp0\nI1\natp1\nRp2\n.") == {1}


def test_truncated_and_garbage_pickles_are_one_line_errors(tmp_path: Path) -> None:
    path = tmp_path / "cut.pkl"
    path.write_bytes(pickle.dumps(dict_obj(make_content()), protocol=4)[:200])
    with pytest.raises(DataError, match="truncated or corrupted") as info:
        load_pickle(path)
    assert "\n" not in str(info.value)
    path.write_bytes(b"this is not a pickle")
    with pytest.raises(DataError, match="cut.pkl"):
        read_dataset(path)


def _dump(tmp_path: Path, obj: object, name: str = "bad.pkl") -> Path:
    path = tmp_path / name
    path.write_bytes(pickle.dumps(obj, protocol=4))
    return path


def test_malformed_dict_pickles(tmp_path: Path) -> None:
    content = make_content()
    ids = content[0]
    good = dict_obj(content)

    def fails(obj: dict, pattern: str) -> None:
        with pytest.raises(DataError, match=pattern):
            read_dict_pickle(_dump(tmp_path, obj))

    fails({k: v for k, v in good.items() if k != "label"}, r"missing key\(s\) label")
    fails({**good, "label": {**good["label"], ids[0]: good["label"][ids[0]] + [1]}}, r"labels for")
    ragged = {**good["text"], ids[0]: [np.zeros(5), np.zeros(4)] + good["text"][ids[0]][2:]}
    fails({**good, "text": ragged}, r"ragged")
    fails({**good, "label": {**good["label"], ids[0]: ["hap"] * len(good["label"][ids[0]])}}, r"integers")
    fails({**good, "label": {**good["label"], ids[0]: [7] * len(good["label"][ids[0]])}}, r"label index 7 .*iemocap-6")
    fails({**good, "speaker": {**good["speaker"], ids[0]: []}}, r"is empty")
    fails({**good, "audio": {**good["audio"], ids[0]: [["x"] * 4] * len(good["label"][ids[0]])}}, r"not numeric")
    fails({**good, "trainVid": ids[:3] + ["nope"]}, r"no entry for dialogue 'nope'")
    fails({**good, "testVid": ids[2:]}, r"more than one split")


def test_unknown_tuple_layout(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="tuple of length 3"):
        read_dataset(_dump(tmp_path, (1, 2, 3)))
