"""MELD and EmoryNLP transcript CSVs (text, speakers, labels, official splits; no features).

- MELD: ``{train,dev,test}_sent_emo.csv`` with columns ``Utterance, Speaker, Emotion,
  Sentiment, Dialogue_ID, Utterance_ID`` (others ignored). Dialogues are ``Dialogue_ID``
  within a split, ids ``<split>_dia<Dialogue_ID>``; labels MELD-7 emotion (or MELD-3
  sentiment with ``labels="meld-3"``; the other one is kept in ``meta``).
- EmoryNLP: ``emorynlp_{train,dev,test}_final.csv`` with ``Utterance, Speaker, Emotion,
  Scene_ID, Utterance_ID, Season, Episode``. Dialogues are scenes ``(Season, Episode,
  Scene_ID)``, ids ``<split>_s<season>e<episode>c<scene>``; ``Speaker`` is a list literal
  (``"['Monica Geller']"``) parsed without evaluation; several speakers are joined with " & ".

The CSVs are read with the ``csv`` module, decoded as UTF-8 with a cp1252/latin-1 fallback,
and mis-encoded characters (``"\\x92"``, ``"â€™"``) are repaired. Features are added later by
the extractors (``merc features``); until then ``Dialogue.features`` is empty.
"""

from __future__ import annotations

import ast
import csv
import io
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from merc.data.formats.common import decode_bytes, repair_text
from merc.data.labels import encode_labels, label_set
from merc.data.schema import SPLITS, Dialogue, DialogueDataset
from merc.errors import DataError
from merc.io_utils import read_bytes_bounded

MELD_FILES = {s: f"{s}_sent_emo.csv" for s in SPLITS}
EMORYNLP_FILES = {s: f"emorynlp_{s}_final.csv" for s in SPLITS}
MELD_COLUMNS = ("Utterance", "Speaker", "Emotion", "Sentiment", "Dialogue_ID", "Utterance_ID")
EMORYNLP_COLUMNS = ("Utterance", "Speaker", "Emotion", "Scene_ID", "Utterance_ID", "Season", "Episode")


class Table:
    """Columns of a CSV file as lists of strings, with the file line of each row."""

    def __init__(self, path: Path, columns: dict[str, list[str]], lines: list[int]) -> None:
        self.path = path
        self.columns = columns
        self.lines = lines

    def __len__(self) -> int:
        return len(self.lines)

    def ints(self, column: str) -> np.ndarray:
        """A column parsed as integers; a non-integer cell is a DataError naming its line."""
        values = self.columns[column]
        try:
            return np.asarray(values, dtype=np.int64)
        except ValueError:
            for k, v in enumerate(values):
                try:
                    int(v)
                except ValueError:
                    raise DataError(self.path, f"'{v}' at line {self.lines[k]} is not an integer", field=column,
                                    fix="fix or remove that row") from None
            raise


def read_table(path: str | Path, required: Sequence[str], hint: str = "") -> Table:
    """Read a CSV with a header row; missing files or columns are DataErrors."""
    p = Path(path)
    text = decode_bytes(read_bytes_bounded(p))
    # a field may be as long as the file (long utterances are benign); the csv default is 131072
    csv.field_size_limit(max(csv.field_size_limit(), len(text) + 1))
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, None)
    if not header:
        raise DataError(p, "is empty (no header row)", fix=f"expected columns {', '.join(required)}")
    header = [h.strip() for h in header]
    missing = [c for c in required if c not in header]
    if missing:
        raise DataError(p, f"missing column(s) {', '.join(missing)}", field=missing[0],
                        fix=f"the file needs columns {', '.join(required)}")
    rows, lines = [], []
    for row in reader:
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            raise DataError(p, f"line {reader.line_num} has {len(row)} fields, the header has {len(header)}",
                            fix="quote fields that contain commas")
        rows.append(row)
        lines.append(reader.line_num)
    columns = {name: [r[i] for r in rows] for i, name in enumerate(header)} if rows else {h: [] for h in header}
    return Table(p, columns, lines)


def parse_speaker_list(cell: str, path: Path, line: int) -> str:
    """``"['Monica Geller', 'Ross Geller']"`` → ``"Monica Geller & Ross Geller"`` (no eval)."""
    text = cell.strip()
    if not text.startswith("["):
        return repair_text(text)
    try:
        names = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        raise DataError(path, f"cannot parse speaker list {cell!r} at line {line}", field="Speaker",
                        fix="write speakers like ['Monica Geller']") from None
    if not isinstance(names, (list, tuple)) or not names or not all(isinstance(n, str) for n in names):
        raise DataError(path, f"speaker list {cell!r} at line {line} must hold at least one name", field="Speaker",
                        fix="write speakers like ['Monica Geller']")
    return " & ".join(repair_text(n.strip()) for n in names)


def _group(table: Table, split: str, keys: np.ndarray, order_in: np.ndarray, make_id: Callable[[tuple], str],
           speakers: list[str], texts: list[str], labels: np.ndarray, meta: dict[str, np.ndarray]) -> list[Dialogue]:
    """Rows → dialogues: group by ``keys`` rows (first-appearance order), sort by ``order_in``."""
    if len(table) == 0:
        return []
    _, first, inverse = np.unique(keys, axis=0, return_index=True, return_inverse=True)
    inverse = inverse.reshape(-1)
    ordered = np.lexsort((order_in, inverse))  # rows by group, then by utterance id
    groups = np.split(ordered, np.flatnonzero(np.diff(inverse[ordered])) + 1)
    dialogues = []
    for group in np.argsort(first, kind="stable"):  # groups in order of first appearance
        rows = groups[group]
        uids = order_in[rows]
        did = make_id(tuple(keys[rows[0]]))
        if np.any(uids[1:] == uids[:-1]):
            raise DataError(table.path, f"dialogue {did} repeats an utterance id (line {table.lines[rows[0]]})",
                            field="Utterance_ID", fix="make utterance ids unique within a dialogue")
        dialogues.append(Dialogue(did, [speakers[r] for r in rows], {}, labels[rows], [texts[r] for r in rows],
                                  [str(u) for u in uids], {k: v[rows] for k, v in meta.items()}))
    return dialogues


def _find_files(directory: Path, files: dict[str, str], dataset: str) -> dict[str, Path]:
    if not directory.is_dir():
        raise DataError(directory, f"is not a directory of {dataset} CSVs", field="path",
                        fix=f"run `merc data fetch {dataset}` or pass the folder holding {', '.join(files.values())}")
    paths = {s: directory / f for s, f in files.items()}
    if not paths["train"].exists() or not paths["test"].exists():
        raise DataError(directory, f"lacks {files['train']} or {files['test']}", field="path",
                        fix=f"run `merc data fetch {dataset}` or point path at the folder holding the CSVs")
    return {s: p for s, p in paths.items() if p.exists()}  # read_table refuses non-regular files


def read_meld_csvs(directory: str | Path, labels: str = "meld-7", name: str = "meld") -> DialogueDataset:
    """Read MELD's official split CSVs from ``directory``.

    Args:
        directory: folder holding ``train_sent_emo.csv``, ``dev_sent_emo.csv``, ``test_sent_emo.csv``.
        labels: ``meld-7`` (emotion, default) or ``meld-3`` (sentiment).
        name: dataset name.
    """
    if labels not in ("meld-7", "meld-3"):
        raise DataError("meld", f"unknown MELD label set '{labels}'", field="labels", fix="use meld-7 or meld-3")
    d = Path(directory)
    dialogues, splits = [], {}
    for split, path in _find_files(d, MELD_FILES, "meld").items():
        t = read_table(path, MELD_COLUMNS)
        emotion = encode_labels(t.columns["Emotion"], label_set("meld-7"), path, "Emotion", t.lines)
        sentiment = encode_labels(t.columns["Sentiment"], label_set("meld-3"), path, "Sentiment", t.lines)
        target, other = (emotion, ("sentiment", sentiment)) if labels == "meld-7" else (sentiment, ("emotion", emotion))
        speakers = [repair_text(s.strip()) for s in t.columns["Speaker"]]
        _check_present(speakers, t, "Speaker")
        texts = [repair_text(u) for u in t.columns["Utterance"]]
        keys = t.ints("Dialogue_ID")[:, None]
        part = _group(t, split, keys, t.ints("Utterance_ID"), lambda k, s=split: f"{s}_dia{k[0]}", speakers, texts,
                      target, {other[0]: other[1]})
        dialogues += part
        splits[split] = [x.id for x in part]
    return DialogueDataset(name, dialogues, label_set(labels), splits, str(d),
                           {"format": "meld-csv", "label_set": labels, "dev_from": "official"})


def read_emorynlp_csvs(directory: str | Path, name: str = "emorynlp") -> DialogueDataset:
    """Read EmoryNLP's official split CSVs (labels EmoryNLP-7) from ``directory``."""
    d = Path(directory)
    dialogues, splits = [], {}
    for split, path in _find_files(d, EMORYNLP_FILES, "emorynlp").items():
        t = read_table(path, EMORYNLP_COLUMNS)
        labels = encode_labels(t.columns["Emotion"], label_set("emorynlp-7"), path, "Emotion", t.lines)
        speakers = [parse_speaker_list(c, path, line) for c, line in zip(t.columns["Speaker"], t.lines)]
        _check_present(speakers, t, "Speaker")
        texts = [repair_text(u) for u in t.columns["Utterance"]]
        keys = np.stack([t.ints("Season"), t.ints("Episode"), t.ints("Scene_ID")], axis=1)
        part = _group(t, split, keys, t.ints("Utterance_ID"), lambda k, s=split: f"{s}_s{k[0]}e{k[1]}c{k[2]}",
                      speakers, texts, labels, {})
        dialogues += part
        splits[split] = [x.id for x in part]
    return DialogueDataset(name, dialogues, label_set("emorynlp-7"), splits, str(d),
                           {"format": "emorynlp-csv", "label_set": "emorynlp-7", "dev_from": "official"})


def _check_present(values: list[str], table: Table, column: str) -> None:
    for k, v in enumerate(values):
        if not v:
            raise DataError(table.path, f"empty {column} at line {table.lines[k]}", field=column,
                            fix=f"every utterance needs a {column.lower()}")
