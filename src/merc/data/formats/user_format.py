"""Our documented format for users' data: an utterance table plus an optional feature file.

``conversations.csv`` (or ``.jsonl``, one JSON object per line), one row per utterance:

==============  ========  ===============================================================
column          required  meaning
==============  ========  ===============================================================
dialogue_id     yes       rows sharing it form one dialogue, in file order
speaker         yes       speaker name
utterance_id    no        defaults to ``0..L-1`` within the dialogue
text            no        transcript
label           no        class name (blank = unlabelled)
split           no        ``train`` / ``dev`` / ``test`` (one per dialogue)
audio, video    no        media paths, relative to the table's folder or absolute
==============  ========  ===============================================================

``conversations.npz`` next to it (same stem; optional) holds the features, row-aligned with
the table: ``features__<m>`` ``[N, d_m]`` for modality ``m`` in ``t``/``a``/``v``; optional
``sequences__<m>`` ``[ΣT, d]`` with ``sequence_lengths__<m>`` ``[N]``; per-utterance extras
``meta__<key>`` ``[N]``; and ``__header__``, a JSON string with the label order, splits and
provenance. :func:`save_user_dataset` writes both files so any dataset round-trips exactly
(only ``source`` changes: a loaded dataset's source is the table it was read from).
The ``.npz`` is read with ``allow_pickle=False``.
"""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from merc.data.formats.common import feature_matrix
from merc.data.formats.transcripts import read_table
from merc.data.labels import LABEL_SETS, encode_labels
from merc.data.schema import MODALITIES, SPLITS, Dialogue, DialogueDataset
from merc.errors import DataError
from merc.io_utils import atomic_path, atomic_write_text, load_npz_bounded, parse_json, read_text_bounded

REQUIRED_COLUMNS = ("dialogue_id", "speaker")
OPTIONAL_COLUMNS = ("utterance_id", "text", "label", "split", "audio", "video")
MEDIA_COLUMNS = {"a": "audio", "v": "video"}
HEADER_KEY = "__header__"


def features_path_for(path: str | Path) -> Path:
    """The feature file belonging to an utterance table: same folder and stem, ``.npz``."""
    return Path(path).with_suffix(".npz")


# -- reading ---------------------------------------------------------------------------------
def _read_rows(path: Path) -> tuple[dict[str, list[str]], list[int]]:
    if path.suffix.lower() != ".jsonl":
        table = read_table(path, REQUIRED_COLUMNS)
        return table.columns, table.lines
    lines = read_text_bounded(path, "utf-8-sig").splitlines()
    columns: dict[str, list[str]] = {c: [] for c in REQUIRED_COLUMNS + OPTIONAL_COLUMNS}
    numbers = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = parse_json(line, path)
        except DataError as exc:
            raise DataError(path, f"line {number} {exc.problem}", fix="write one JSON object per line") from None
        if not isinstance(record, dict):
            raise DataError(path, f"line {number} is not a JSON object", fix="write one JSON object per line")
        for column in REQUIRED_COLUMNS:
            if record.get(column) in (None, ""):
                raise DataError(path, f"line {number} lacks '{column}'", field=column,
                                fix=f"every utterance needs {', '.join(REQUIRED_COLUMNS)}")
        for column in columns:
            value = record.get(column)
            if isinstance(value, (dict, list)):
                raise DataError(path, f"line {number}: '{column}' must be a string or number", field=column)
            columns[column].append("" if value is None else str(value))
        numbers.append(number)
    present = {c for c in OPTIONAL_COLUMNS if any(columns[c])}
    return {c: v for c, v in columns.items() if c in REQUIRED_COLUMNS or c in present}, numbers


def _header(value: np.ndarray, path: Path) -> dict[str, Any]:
    try:
        header = decode_json(json.loads(str(value)))
    except (json.JSONDecodeError, TypeError, ValueError, KeyError, RecursionError):
        header = None
    if not isinstance(header, dict):
        raise DataError(path, "has an unreadable header", field=HEADER_KEY,
                        fix="re-create the file with save_user_dataset, or delete the __header__ entry")
    return header


def _label_names(values: list[str], labels: str | Sequence[str] | None, header: dict[str, Any]) -> list[str]:
    if header.get("label_names"):
        return list(header["label_names"])
    if isinstance(labels, str):
        if labels in LABEL_SETS:
            return list(LABEL_SETS[labels])
        return [x.strip() for x in labels.split(",") if x.strip()]
    if labels is not None:
        return [str(x) for x in labels]
    used = sorted({v.strip() for v in values if v.strip()})
    for known in LABEL_SETS.values():
        if used and set(used) <= set(known):
            return list(known)
    return used


def read_user_dataset(path: str | Path, features: str | Path | None = None, labels: str | Sequence[str] | None = None,
                      name: str | None = None) -> DialogueDataset:
    """Read a user utterance table (CSV/JSONL) and its optional ``.npz`` features.

    Args:
        path: the ``.csv`` or ``.jsonl`` table.
        features: the feature file (default: same stem with ``.npz``, used when it exists).
        labels: label order — a label set name (``meld-7``), a comma-separated list, or a list.
            Default: the order stored in the feature file, else a known label set containing
            every label used, else the sorted label names.
        name: dataset name (default: the file stem).
    """
    p = Path(path)
    columns, lines = _read_rows(p)
    n = len(lines)
    if n == 0:
        raise DataError(p, "holds no utterances", fix="add one row per utterance")
    npz_path = Path(features) if features is not None else features_path_for(p)
    arrays = load_npz_bounded(npz_path) if (features is not None or npz_path.is_file()) else {}
    header = _header(arrays.pop(HEADER_KEY), npz_path) if HEADER_KEY in arrays else {}
    for column in REQUIRED_COLUMNS:
        blank = [lines[k] for k, v in enumerate(columns[column]) if not v.strip()]
        if blank:
            raise DataError(p, f"empty {column} at line {blank[0]}", field=column,
                            fix=f"every utterance needs a {column}")

    rows_of: dict[str, list[int]] = {}
    for k, did in enumerate(columns["dialogue_id"]):
        rows_of.setdefault(did.strip(), []).append(k)
    label_names = _label_names(columns.get("label", []), labels, header)
    label_index = (encode_labels(columns["label"], label_names, p, "label", lines, allow_blank=True)
                   if "label" in columns else None)
    feats = {m: feature_matrix(arrays[f"features__{m}"], npz_path, f"features__{m}", n)
             for m in MODALITIES if f"features__{m}" in arrays}
    sequences = {m: _split_sequences(arrays, m, n, npz_path) for m in MODALITIES if f"sequences__{m}" in arrays}
    meta_arrays = {k[len("meta__"):]: v for k, v in arrays.items() if k.startswith("meta__")}
    for key, value in meta_arrays.items():
        if value.shape[:1] != (n,):
            raise DataError(npz_path, f"has {value.shape[:1]} rows for {n} utterances", field=f"meta__{key}",
                            fix="store one value per utterance")
    dialogue_meta = header.get("dialogue_meta", {})
    no_labels, no_texts = set(header.get("no_labels", [])), set(header.get("no_texts", []))
    base = p.parent

    dialogues, split_of = [], {}
    for did, rows in rows_of.items():
        idx = np.asarray(rows)
        uids = [columns["utterance_id"][r] for r in rows] if "utterance_id" in columns else None
        media = {m: [_resolve(columns[col][r], base) for r in rows]
                 for m, col in MEDIA_COLUMNS.items() if col in columns}
        meta = {**dialogue_meta.get(did, {}), **{k: v[idx] for k, v in meta_arrays.items()}}
        dialogues.append(Dialogue(
            did, [columns["speaker"][r].strip() for r in rows], {m: x[idx] for m, x in feats.items()},
            None if label_index is None or did in no_labels else label_index[idx],
            None if "text" not in columns or did in no_texts else [columns["text"][r] for r in rows],
            uids, meta, {m: [s[r] for r in rows] for m, s in sequences.items()}, media))
        if "split" in columns:
            split_of[did] = _dialogue_split(columns["split"], rows, lines, p, did)
    splits = header.get("splits") or _splits_from(split_of, list(rows_of))
    meta = header["meta"] if "meta" in header else {"format": "utterances"}
    return DialogueDataset(name or header.get("name") or p.stem, dialogues, label_names, splits, str(p), meta)


def _split_sequences(arrays: dict[str, np.ndarray], m: str, n: int, path: Path) -> list[np.ndarray]:
    flat, lengths = arrays[f"sequences__{m}"], arrays.get(f"sequence_lengths__{m}")
    if lengths is None or lengths.shape != (n,) or int(lengths.sum()) != flat.shape[0]:
        raise DataError(path, "sequence lengths do not match the sequence rows", field=f"sequence_lengths__{m}",
                        fix="store one length per utterance summing to the rows of sequences__" + m)
    return np.split(flat, np.cumsum(lengths)[:-1])


def _resolve(value: str, base: Path) -> str:
    return value if not value or os.path.isabs(value) else str(base / value)


def _dialogue_split(values: list[str], rows: list[int], lines: list[int], path: Path, did: str) -> str:
    found = {values[r].strip() for r in rows}
    if len(found) != 1:
        raise DataError(path, f"dialogue '{did}' has rows in several splits ({', '.join(sorted(found))})",
                        field="split", fix="give all utterances of a dialogue the same split")
    split = found.pop()
    if split not in SPLITS:
        raise DataError(path, f"unknown split '{split}' at line {lines[rows[0]]}", field="split",
                        fix=f"use one of: {', '.join(SPLITS)}")
    return split


def _splits_from(split_of: dict[str, str], order: list[str]) -> dict[str, list[str]]:
    if not split_of:
        return {"train": order}
    return {s: [d for d in order if split_of[d] == s] for s in SPLITS if s in split_of.values()}


# -- writing ---------------------------------------------------------------------------------
def save_user_dataset(dataset: DialogueDataset, path: str | Path) -> tuple[Path, Path | None]:
    """Write ``dataset`` as an utterance table (``.csv`` or ``.jsonl`` by suffix) plus ``.npz``.

    Both files are written atomically. Returns ``(table_path, npz_path or None)``; the
    ``.npz`` is always written (it carries the label order and splits).
    """
    p = Path(path)
    if p.suffix.lower() not in (".csv", ".jsonl"):
        raise DataError(p, "unsupported suffix", field="path", fix="write to a .csv or .jsonl file")
    dialogues = dataset.dialogues
    if not dialogues:
        raise DataError(dataset.name, "has no dialogues to write", fix="write a non-empty dataset")
    split_of = {d: s for s, ids in dataset.splits.items() for d in ids}
    has = {"text": any(d.texts is not None for d in dialogues), "label": any(d.labels is not None for d in dialogues),
           "split": bool(split_of)}
    media_cols = [(m, col) for m, col in MEDIA_COLUMNS.items() if any(m in d.media for d in dialogues)]
    columns = ["dialogue_id", "utterance_id", "speaker"] + [c for c in ("text", "label", "split") if has[c]] \
        + [col for _, col in media_cols]
    base = p.parent.resolve()
    records = []
    for d in dialogues:
        for i in range(len(d)):
            record = {"dialogue_id": d.id, "utterance_id": d.utterance_ids[i], "speaker": d.speakers[i]}
            if has["text"]:
                record["text"] = d.texts[i] if d.texts is not None else ""
            if has["label"]:
                record["label"] = dataset.label_names[d.labels[i]] if d.labels is not None and d.labels[i] >= 0 else ""
            if has["split"]:
                record["split"] = split_of.get(d.id, "")
            for m, col in media_cols:
                record[col] = _relative(d.media[m][i], base) if m in d.media else ""
            records.append(record)
    if p.suffix.lower() == ".jsonl":
        text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    else:
        buffer = io.StringIO(newline="")
        writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(records)
        text = buffer.getvalue()
    arrays = _feature_arrays(dataset)
    npz = features_path_for(p)
    with atomic_path(npz) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, **arrays)
    atomic_write_text(p, text)
    return p, npz


def _relative(value: str, base: Path) -> str:
    if not value:
        return value
    try:
        return str(Path(value).resolve().relative_to(base))
    except ValueError:
        return value


def _feature_arrays(dataset: DialogueDataset) -> dict[str, np.ndarray]:
    dialogues = dataset.dialogues
    arrays: dict[str, np.ndarray] = {}
    for m in MODALITIES:
        have = [m in d.features for d in dialogues]
        if any(have) and not all(have):
            raise DataError(dataset.name, f"modality {m} is present in some dialogues only", field=f"features[{m}]",
                            fix="extract it for every dialogue or drop it with with_modalities")
        if all(have):
            arrays[f"features__{m}"] = np.concatenate([d.features[m] for d in dialogues]).astype(np.float32)
        if all(m in d.sequences for d in dialogues):
            seqs = [np.asarray(x, dtype=np.float32) for d in dialogues for x in d.sequences[m]]
            arrays[f"sequences__{m}"] = np.concatenate(seqs)
            arrays[f"sequence_lengths__{m}"] = np.asarray([s.shape[0] for s in seqs], dtype=np.int64)
    per_utterance = [k for k in dialogues[0].meta
                     if all(isinstance(d.meta.get(k), np.ndarray) and d.meta[k].dtype != object
                            and d.meta[k].shape[:1] == (len(d),) for d in dialogues)]
    for key in per_utterance:
        arrays[f"meta__{key}"] = np.concatenate([d.meta[key] for d in dialogues])
    dialogue_meta = {d.id: {k: v for k, v in d.meta.items() if k not in per_utterance} for d in dialogues}
    header = {"version": 1, "name": dataset.name, "written_from": dataset.source,
              "label_names": list(dataset.label_names),
              "splits": dataset.splits, "meta": dataset.meta,
              "dialogue_meta": {k: v for k, v in dialogue_meta.items() if v},
              "no_labels": [d.id for d in dialogues if d.labels is None],
              "no_texts": [d.id for d in dialogues if d.texts is None]}
    try:
        arrays[HEADER_KEY] = np.asarray(json.dumps(encode_json(header)))
    except TypeError as exc:
        raise DataError(dataset.name, f"meta holds a value the user format cannot store ({exc})", field="meta",
                        fix="keep meta values to numbers, strings, lists, dicts and numpy arrays") from None
    return arrays


def encode_json(obj: Any) -> Any:
    """``obj`` as JSON-safe data that :func:`decode_json` restores exactly (non-string dict keys,
    tuples, numpy scalars and arrays are tagged)."""
    if isinstance(obj, dict):
        if all(isinstance(k, str) and not k.startswith("__") for k in obj):
            return {k: encode_json(v) for k, v in obj.items()}
        return {"__items__": [[encode_json(k), encode_json(v)] for k, v in obj.items()]}
    if isinstance(obj, tuple):
        return {"__tuple__": [encode_json(v) for v in obj]}
    if isinstance(obj, list):
        return [encode_json(v) for v in obj]
    if isinstance(obj, np.ndarray) and obj.dtype != object:
        return {"__array__": obj.tolist(), "dtype": obj.dtype.str}
    if isinstance(obj, np.generic):
        return {"__scalar__": obj.item(), "dtype": obj.dtype.str}
    if isinstance(obj, Path):
        return str(obj)
    if obj is None or isinstance(obj, (str, int, float, bool)):
        return obj
    raise TypeError(f"cannot store {type(obj).__name__}")


def decode_json(obj: Any) -> Any:
    """Inverse of :func:`encode_json`."""
    if isinstance(obj, list):
        return [decode_json(v) for v in obj]
    if not isinstance(obj, dict):
        return obj
    if "__items__" in obj:
        return {_hashable(decode_json(k)): decode_json(v) for k, v in obj["__items__"]}
    if "__tuple__" in obj:
        return tuple(decode_json(v) for v in obj["__tuple__"])
    if "__array__" in obj:
        return np.asarray(obj["__array__"], dtype=np.dtype(obj["dtype"]))
    if "__scalar__" in obj:
        return np.dtype(obj["dtype"]).type(obj["__scalar__"])
    return {k: decode_json(v) for k, v in obj.items()}


def _hashable(key: Any) -> Any:
    return tuple(key) if isinstance(key, list) else key
