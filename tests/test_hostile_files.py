"""Hostile files (issue 13, items 10-12): devices, FIFOs, huge claims, deep nesting, wrong shapes,
NaN weights and mistyped metadata. Each is a one-line ``error:``, exit 2, nothing written — within
seconds (an alarm fails the test instead of hanging) — except a long CSV field, which is accepted."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import struct
import zipfile
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import pytest
import torch
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors.torch import load_file, save_file

import merc.training.experiment  # noqa: F401  (heavy imports happen here, outside the deadlines)
from merc.cli import main
from merc.data.formats import read_dataset
from merc.errors import DataError
from merc.io_utils import MAX_FILE_BYTES_ENV, load_npz_bounded, read_bytes_bounded

from test_hostile_cli import model_dir  # noqa: E402,F401  (a tiny trained model directory)

TABLE = b"dialogue_id,speaker,label,split\nd0,A,joy,train\nd0,B,sadness,train\nd1,A,joy,test\nd2,A,joy,train\n"
DEEP = 100_000


@contextlib.contextmanager
def deadline(seconds: int = 30) -> Iterator[None]:
    """Fail (instead of hanging the suite) if the body blocks."""
    def expired(signum, frame):  # type: ignore[no-untyped-def]
        raise AssertionError(f"blocked for more than {seconds} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def one_line_exit_2(argv: list[str], capsys, out: Path | None = None) -> str:
    with deadline():
        code = main(argv)
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert len(err.splitlines()) == 1 and err.startswith("error: ") and "Traceback" not in err, err
    if out is not None:
        assert not out.exists(), "nothing is written"
    return err


def train_argv(path: Path, out: Path) -> list[str]:
    return ["train", "--dataset", str(path), "--epochs", "1", "--no-progress", "--threads", "1", "--out", str(out)]


def _npy_header(shape: tuple[int, ...]) -> bytes:
    header = repr({"descr": "<f4", "fortran_order": False, "shape": shape}).encode()
    header += b" " * (63 - (10 + len(header)) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header


def _npz(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, blob in members.items():
            archive.writestr(f"{name}.npy", blob)
    return path


# -- data files ---------------------------------------------------------------------------
def _fifo(root: Path) -> Path:
    os.mkfifo(root / "data.csv")
    return root / "data.csv"


def _link(name: str, target: str = "/dev/zero") -> Callable[[Path], Path]:
    def make(root: Path) -> Path:
        (root / name).symlink_to(target)
        return root / name
    return make


def _table_with(npz: Callable[[Path], None]) -> Callable[[Path], Path]:
    def make(root: Path) -> Path:
        (root / "data.csv").write_bytes(TABLE)
        npz(root / "data.npz")
        return root / "data.csv"
    return make


def _meld_with_dev_zero(root: Path) -> Path:
    (root / "meld").mkdir()
    (root / "meld" / "test_sent_emo.csv").write_text("Sr No.,Utterance,Speaker,Emotion\n")
    return _link("meld/train_sent_emo.csv")(root).parent


def _jsonl_deep(root: Path) -> Path:
    (root / "data.jsonl").write_text("[" * DEEP + "]" * DEEP + "\n")
    return root / "data.jsonl"


DATA_CASES: dict[str, tuple[Callable[[Path], Path], str]] = {
    "FIFO as data file": (_fifo, "FIFO"),
    ".pkl symlink to /dev/zero": (_link("data.pkl"), "character device"),
    ".csv symlink to /dev/zero": (_link("data.csv"), "character device"),
    "MELD folder whose train CSV is /dev/zero": (_meld_with_dev_zero, "character device"),
    "JSONL line nested 100k deep": (_jsonl_deep, "nested too deeply"),
    ".npz header nested 100k deep": (_table_with(lambda p: np.savez(
        p, features__t=np.ones((4, 3), np.float32), __header__=np.asarray("[" * DEEP + "]" * DEEP))), "header"),
    ".npz member claiming shape (2^40, 8)": (_table_with(lambda p: _npz(p, {"features__t": _npy_header((2**40, 8))})),
                                             "claims shape"),
}


@pytest.mark.parametrize("case", list(DATA_CASES))
def test_hostile_data_file(case, tmp_path, capsys):
    make, expect = DATA_CASES[case]
    path = make(tmp_path)
    out = tmp_path / "out"
    err = one_line_exit_2(train_argv(path, out), capsys, out)
    assert expect.lower() in err.lower(), err


def test_file_over_the_read_limit_names_the_variable_and_raising_it_reads(tmp_path, monkeypatch):
    path = tmp_path / "data.csv"
    path.write_bytes(TABLE)
    monkeypatch.setenv(MAX_FILE_BYTES_ENV, "40")
    with pytest.raises(DataError, match=f"over the 40-byte read limit.*{MAX_FILE_BYTES_ENV}"):
        read_bytes_bounded(path)
    monkeypatch.setenv(MAX_FILE_BYTES_ENV, str(len(TABLE)))
    assert read_bytes_bounded(path) == TABLE
    monkeypatch.setenv(MAX_FILE_BYTES_ENV, "lots")
    with pytest.raises(Exception, match="positive number of bytes"):
        read_bytes_bounded(path)


def test_npz_unpacking_past_the_limit_is_refused(tmp_path, monkeypatch):
    path = tmp_path / "bomb.npz"
    np.savez_compressed(path, x=np.zeros(1_000_000, np.float32))  # 4 MB unpacked, a few KB packed
    monkeypatch.setenv(MAX_FILE_BYTES_ENV, str(1_000_000))
    with pytest.raises(DataError, match="unpacks to more than"):
        load_npz_bounded(path)


def test_csv_field_longer_than_131072_characters_is_accepted(tmp_path):
    text = "really " * 30_000  # 210k characters: a long but benign utterance
    (tmp_path / "data.csv").write_text("dialogue_id,speaker,text,label,split\n"
                                       f'd0,A,"{text}",joy,train\nd0,B,hi,sadness,train\nd1,A,ok,joy,test\n')
    dataset = read_dataset(tmp_path / "data.csv")
    assert dataset.dialogues[0].texts[0] == text


# -- model directories --------------------------------------------------------------------
def _copy(model_dir: Path, root: Path) -> Path:
    copy = root / "seed_0"
    shutil.copytree(model_dir, copy, ignore=shutil.ignore_patterns("logs", "eval_*"))
    return copy


def _edit_yaml(edit: Callable[[dict], None]) -> Callable[[Path], None]:
    def apply(d: Path) -> None:
        raw = yaml.safe_load((d / "config.yaml").read_text())
        edit(raw)
        (d / "config.yaml").write_text(yaml.safe_dump(raw))
    return apply


def _edit_weights(edit: Callable[[dict], None]) -> Callable[[Path], None]:
    def apply(d: Path) -> None:
        state = load_file(str(d / "model.safetensors"))
        edit(state)
        save_file(state, str(d / "model.safetensors"))
    return apply


def _wrong_shapes(state: dict) -> None:
    for key, tensor in state.items():
        if tensor.ndim == 2:
            state[key] = torch.zeros(tensor.shape[0] + 1, tensor.shape[1])
            return


def _nan_weight(state: dict) -> None:
    key = next(k for k, v in state.items() if v.is_floating_point())
    state[key] = torch.full_like(state[key], float("nan"))


def _write(name: str, text: str) -> Callable[[Path], None]:
    return lambda d: (d / name).write_text(text)


MODEL_CASES: dict[str, tuple[Callable[[Path], None], str]] = {
    "right names, wrong shapes": (_edit_weights(_wrong_shapes), "shape"),
    "NaN weights": (_edit_weights(_nan_weight), "NaN/inf weights"),
    "inf weights": (_edit_weights(lambda s: s.update({k: v * float("inf") for k, v in s.items()
                                                       if v.is_floating_point()})), "NaN/inf weights"),
    "config.yaml input dim 2^31": (_edit_yaml(lambda r: r["architecture"]["input_dims"].update(t=2**31)), "shape"),
    "config.yaml input dim a string": (_edit_yaml(lambda r: r["architecture"]["input_dims"].update(t="big")),
                                       "input_dims"),
    "config.yaml nested 100k deep": (_write("config.yaml", "[" * DEEP + "]" * DEEP), "nested too deeply"),
    "labels.json nested 100k deep": (_write("labels.json", "[" * DEEP + "]" * DEEP), "nested too deeply"),
    "info.json nested 100k deep": (_write("info.json", "[" * DEEP + "]" * DEEP), "nested too deeply"),
    "labels.json a string": (_write("labels.json", json.dumps("hapsad")), "list of class names"),
    "labels.json wrong count": (_write("labels.json", json.dumps(["a", "b"])), "classes"),
    "labels.json a repeated name": (lambda d: (d / "labels.json").write_text(json.dumps(
        ["x"] * len(json.loads((d / "labels.json").read_text())))), "twice"),
    "info.json a list": (_write("info.json", "[1, 2]"), "not a JSON object"),
    "model.safetensors symlink to /dev/zero": (lambda d: (d / "model.safetensors").unlink()
                                               or (d / "model.safetensors").symlink_to("/dev/zero"), "device"),
    "config.yaml a FIFO": (lambda d: (d / "config.yaml").unlink() or os.mkfifo(d / "config.yaml"), "FIFO"),
}


@pytest.mark.parametrize("case", list(MODEL_CASES))
def test_hostile_model_directory(case, model_dir, tmp_path, capsys):
    edit, expect = MODEL_CASES[case]
    copy = _copy(model_dir, tmp_path)
    edit(copy)
    out = tmp_path / "eval"
    err = one_line_exit_2(["evaluate", str(copy), "--out", str(out)], capsys, out)
    assert expect.lower() in err.lower(), err


def test_a_folder_that_never_was_a_model_directory(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("hello")
    err = one_line_exit_2(["evaluate", str(tmp_path)], capsys)
    assert "is not a model directory" in err and "incomplete" not in err


def test_a_partly_copied_model_directory_is_incomplete(model_dir, tmp_path, capsys):
    copy = _copy(model_dir, tmp_path)
    (copy / "info.json").unlink()
    assert "incomplete model directory, missing info.json" in one_line_exit_2(["evaluate", str(copy)], capsys)


# -- property: any non-regular or over-limit file, any loader --------------------------------
@settings(max_examples=30, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kind=st.sampled_from(["fifo", "dev-zero", "dev-null", "folder", "over-limit", "dangling"]),
       suffix=st.sampled_from([".pkl", ".csv", ".jsonl", ".npz", ".pickle"]))
def test_non_regular_or_oversized_files_are_refused_by_every_loader(tmp_path_factory, monkeypatch, kind, suffix):
    root = tmp_path_factory.mktemp("f")
    path = root / f"data{suffix}"
    if suffix == ".npz":
        (root / "data.csv").write_bytes(TABLE)
    if kind == "fifo":
        os.mkfifo(path)
    elif kind in ("dev-zero", "dev-null", "dangling"):
        path.symlink_to({"dev-zero": "/dev/zero", "dev-null": "/dev/null", "dangling": str(root / "gone")}[kind])
    elif kind == "folder":
        path.mkdir()
    else:
        path.write_bytes(TABLE * 4)
        monkeypatch.setenv(MAX_FILE_BYTES_ENV, "64")
    target = root / "data.csv" if suffix == ".npz" else path
    with deadline(10), pytest.raises(DataError) as info:
        read_dataset(target, **({"features": path} if suffix == ".npz" else {}))
    assert "\n" not in str(info.value)
    monkeypatch.delenv(MAX_FILE_BYTES_ENV, raising=False)


@settings(max_examples=16, deadline=None, derandomize=True, database=None)
@given(depth=st.integers(1, 200_000), opener=st.sampled_from(["[", "{\"a\":"]),
       kind=st.sampled_from(["json", "yaml", "jsonl", "npz-header"]))
def test_nesting_at_any_depth_loads_or_is_one_line(tmp_path_factory, depth, opener, kind):
    from merc.errors import MercError
    from merc.io_utils import load_json_file, load_yaml_file

    closer = "]" if opener == "[" else "}"
    text = opener * depth + "1" + closer * depth
    root = tmp_path_factory.mktemp("n")
    try:
        if kind in ("json", "yaml"):
            (root / f"x.{kind}").write_text(text)
            (load_json_file if kind == "json" else load_yaml_file)(root / f"x.{kind}")
        elif kind == "jsonl":
            (root / "x.jsonl").write_text(text + "\n")
            read_dataset(root / "x.jsonl")
        else:
            (root / "x.csv").write_bytes(TABLE)
            np.savez(root / "x.npz", __header__=np.asarray(text))
            read_dataset(root / "x.csv")
    except MercError as exc:
        assert "\n" not in str(exc)


@settings(max_examples=12, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), how=st.sampled_from(["nan", "inf", "-inf", "grow", "shrink", "flatten", "drop", "extra"]))
def test_any_forged_weight_is_refused(model_dir, tmp_path_factory, capsys, data, how):
    copy = _copy(model_dir, tmp_path_factory.mktemp("w"))
    state = load_file(str(copy / "model.safetensors"))
    floats = sorted(k for k, v in state.items() if v.is_floating_point() and v.numel() > 1)
    key = data.draw(st.sampled_from(floats))
    tensor = state[key]
    if how in ("nan", "inf", "-inf"):
        flat = tensor.clone().reshape(-1)
        flat[data.draw(st.integers(0, flat.numel() - 1))] = float(how)
        state[key] = flat.reshape(tensor.shape)
    elif how == "grow":
        state[key] = torch.zeros(tensor.shape[0] + 1, *tensor.shape[1:])
    elif how == "shrink":
        state[key] = tensor[:-1].clone()
    elif how == "flatten":
        state[key] = tensor.reshape(-1).clone() if tensor.ndim > 1 else tensor.reshape(1, -1).clone()
    elif how == "drop":
        del state[key]
    else:
        state["unexpected.weight"] = torch.zeros(2)
    save_file(state, str(copy / "model.safetensors"))
    out = copy.parent / "eval"
    one_line_exit_2(["evaluate", str(copy), "--out", str(out)], capsys, out)
