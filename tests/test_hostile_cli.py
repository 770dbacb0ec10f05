"""Hostile inputs through the CLI: each case is one ``error:`` line, exit code 2, nothing written;
``--debug`` shows the traceback instead. Also: corrupted model directories for ``merc evaluate``."""

from __future__ import annotations

import builtins
import pickle
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from merc.cli import main
from merc.errors import MercError

from test_hostile_loaders import as_dict_layout, as_tuple_layout, valid_fields  # noqa: E402


def _pickle(obj) -> Callable[[Path], Path]:
    def make(root: Path) -> Path:
        path = root / "data.pkl"
        path.write_bytes(pickle.dumps(obj, protocol=2))
        return path
    return make


def _fields(**changes) -> dict:
    f = valid_fields()
    for key, edit in changes.items():
        edit(f)
    return f


def _bytes(name: str, data: bytes) -> Callable[[Path], Path]:
    def make(root: Path) -> Path:
        (root / name).write_bytes(data)
        return root / name
    return make


def _nan(f):
    f["audio"]["d1"][0] = np.full(4, np.nan, np.float32)


def _with_npz(table: Path) -> Path:
    np.savez(table.with_suffix(".npz"), features__t=np.ones((3, 4), np.float32))
    return table


def _folder(root: Path) -> Path:
    (root / "folder").mkdir()
    (root / "folder" / "notes.txt").write_text("nothing here")
    return root / "folder"


CASES: dict[str, tuple[Callable[[Path], Path], str]] = {
    "missing file": (lambda root: root / "nope.pkl", "neither a catalog dataset nor an existing path"),
    "empty file": (_bytes("data.pkl", b""), "pickle"),
    "truncated pickle": (lambda root: _bytes("data.pkl", pickle.dumps(as_dict_layout(valid_fields()), 2)[:300])(root),
                         "pickle"),
    "disallowed global": (_bytes("data.pkl", b"cos\nsystem\n(Vtouch /tmp/merc-pwned\ntR."), "os.system"),
    "not a dataset (a list)": (_pickle([1, 2, 3]), "data.pkl"),
    "wrong types (labels are a string)": (_pickle(as_dict_layout(_fields(label=lambda f: f["label"].update(d0="abc")))),
                                          "label"),
    "ragged features": (_pickle(as_tuple_layout(_fields(text=lambda f: f["text"]["d2"].__setitem__(1, np.ones(9))))),
                        "ragged"),
    "labels/speakers length mismatch": (_pickle(as_dict_layout(_fields(label=lambda f: f["label"]["d3"].pop()))),
                                        "labels"),
    "NaN features": (_pickle(as_dict_layout(_fields(audio=_nan))), "NaN"),
    "label out of range": (_pickle(as_dict_layout(_fields(label=lambda f: f["label"]["d0"].__setitem__(0, 17)))),
                           "label"),
    "empty dialogue": (_pickle(as_dict_layout(_fields(empty=lambda f: [f[k].__setitem__("d1", []) for k in
                                                                       ("speaker", "label", "text", "audio", "visual",
                                                                        "sentence")]))), "empty"),
    "empty dataset": (_pickle(as_dict_layout(_fields(splits=lambda f: f.update(trainVid=[], testVid=[])))),
                      "no dialogues"),
    "unknown dialogue in split": (_pickle(as_dict_layout(_fields(s=lambda f: f["testVid"].append("ghost")))), "ghost"),
    "zero-width features": (_pickle(as_dict_layout(_fields(v=lambda f: f.update(
        visual={d: [np.zeros(0, np.float32)] * len(f["speaker"][d]) for d in f["speaker"]})))), "shape (3, 0)"),
    "non-UTF-8 label name in CSV": (lambda root: _with_npz(_bytes("data.csv", b"dialogue_id,speaker,label,split\n"
                                                                    b"d0,A,joy,train\nd0,B,\xff\xfe,train\n"
                                                                    b"d1,A,joy,test\n")(root)), "unknown label"),
    "unknown label name in CSV": (lambda root: _with_npz(_bytes("data.csv", b"dialogue_id,speaker,label,split\n"
                                                                  b"d0,A,joy,train\nd0,B,zzz,train\nd1,A,joy,test\n"
                                                                  )(root)), "zzz"),  # with labels=meld-7
    "CSV without features": (_bytes("data.csv", b"dialogue_id,speaker,label,split\nd0,A,joy,train\nd1,A,joy,test\n"),
                             "feature"),
    "folder without CSVs": (_folder, "folder"),
    "unknown suffix": (_bytes("data.xyz", b"hello"), "suffix"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_hostile_dataset_is_one_line_exit_2_and_writes_nothing(case, tmp_path, capsys):
    make, expect = CASES[case]
    path = make(tmp_path)
    out = tmp_path / "out"
    extra = ["-o", "data.options.labels=meld-7"] if "label name" in case else []
    code = main(["train", "--dataset", str(path), "--epochs", "1", "--no-progress", "--threads", "1", "--out", str(out),
                 *extra])
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert len(err.splitlines()) == 1 and err.startswith("error: ") and "Traceback" not in err
    assert expect.lower() in err.lower(), err
    assert not out.exists(), "nothing is written"
    assert not Path("/tmp/merc-pwned").exists()


def test_debug_shows_the_traceback(tmp_path):
    path = CASES["truncated pickle"][0](tmp_path)
    with pytest.raises(MercError):
        main(["--debug", "train", "--dataset", str(path), "--out", str(tmp_path / "out")])


def test_unreadable_folder(tmp_path, monkeypatch, capsys):
    """A folder the user may not read (simulated: the test may run as root, which ignores modes)."""
    folder = tmp_path / "meld"
    folder.mkdir()
    for split in ("train", "dev", "test"):
        (folder / f"{split}_sent_emo.csv").write_text("Sr No.,Utterance,Speaker,Emotion\n")
    real_open = builtins.open

    def guarded_open(file, *args, **kwargs):  # type: ignore[no-untyped-def]
        if str(file).startswith(str(folder)):
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", guarded_open)
    monkeypatch.setattr(Path, "read_bytes", lambda self: guarded_open(self).read())
    monkeypatch.setattr(Path, "read_text", lambda self, *a, **k: guarded_open(self).read())
    code = main(["train", "--dataset", str(folder), "--out", str(tmp_path / "out"), "--no-progress"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "ermission denied" in err
    assert not (tmp_path / "out").exists()


# -- corrupted model directories -----------------------------------------------------------
@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("model")
    assert main(["train", "--dataset", "synthetic-small", "--epochs", "1", "--no-progress", "--threads", "1",
                 "-o", "model.backbone_options.hidden=8", "--out", str(out)]) == 0
    return out / "seed_0"


@settings(max_examples=40, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), name=st.sampled_from(["model.safetensors", "config.yaml", "labels.json", "info.json"]))
def test_corrupted_model_directory(model_dir, tmp_path_factory, data, name):
    import shutil

    copy = tmp_path_factory.mktemp("m") / "seed_0"
    shutil.copytree(model_dir, copy, ignore=shutil.ignore_patterns("logs", "eval_*"))
    blob = (copy / name).read_bytes()
    how = data.draw(st.sampled_from(["truncate", "flip", "delete", "garbage"]))
    if how == "truncate":
        (copy / name).write_bytes(blob[: data.draw(st.integers(0, len(blob) - 1))])
    elif how == "flip":
        i = data.draw(st.integers(0, len(blob) - 1))
        (copy / name).write_bytes(blob[:i] + bytes([blob[i] ^ data.draw(st.integers(1, 255))]) + blob[i + 1:])
    elif how == "delete":
        (copy / name).unlink()
    else:
        (copy / name).write_bytes(data.draw(st.binary(max_size=64)))
    out = copy.parent / "eval"
    try:
        code = main(["evaluate", str(copy), "--out", str(out)])
    except SystemExit as exc:  # argparse only
        code = int(exc.code)
    assert code in (0, 2)
    if code == 2:
        assert not out.exists()
