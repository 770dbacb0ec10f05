"""Helpers shared by the format readers: array checks, speaker forms, split ids, text repair.

Every helper raises :class:`~merc.errors.DataError` naming the file and the field on bad
input, so the readers stay short and every malformed file gets a one-line message.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from merc.data.labels import check_label_range
from merc.data.schema import Dialogue, DialogueDataset
from merc.errors import DataError

_MOJIBAKE = re.compile("[\u00c2-\u00f4][\u0080-\u00bf]|\u00e2\u20ac")
_C1 = re.compile("[\u0080-\u009f]")


def repair_text(text: str) -> str:
    """Undo common mis-encodings: UTF-8 read as cp1252/latin-1 ("â€™" → "’") and stray cp1252
    control bytes ("\\x92" → "’"). Clean text is returned unchanged."""
    if _MOJIBAKE.search(text):
        for codec in ("cp1252", "latin1"):
            try:
                text = text.encode(codec).decode("utf-8")
                break
            except (UnicodeEncodeError, UnicodeDecodeError):
                continue
    if _C1.search(text):
        text = _C1.sub(lambda m: bytes([ord(m.group())]).decode("cp1252", errors="ignore"), text)
    return text


def decode_bytes(data: bytes) -> str:
    """Decode file bytes as UTF-8 (BOM allowed), falling back to cp1252 then latin-1."""
    for codec in ("utf-8-sig", "cp1252"):
        try:
            return data.decode(codec)
        except UnicodeDecodeError:
            continue
    return data.decode("latin1")


def feature_matrix(value: Any, source: str | Path, field: str, length: int | None = None) -> np.ndarray:
    """One dialogue's features as ``float32 [L, d]`` from a 2-D array or a list of vectors.

    Ragged rows, non-numeric values and wrong ranks are refused; ``length`` (when given) must
    match ``L``.
    """
    try:
        if isinstance(value, np.ndarray) and value.dtype != object:
            array = value
        else:
            rows = [np.asarray(v).reshape(-1) for v in value]
            sizes = {r.shape[0] for r in rows}
            if len(sizes) > 1:
                raise DataError(source, f"ragged feature vectors (sizes {sorted(sizes)})", field=field,
                                fix="every utterance of a modality needs the same feature size")
            array = np.stack(rows) if rows else np.zeros((0, 0))
        array = np.asarray(array, dtype=np.float32)
    except DataError:
        raise
    except (TypeError, ValueError) as exc:
        raise DataError(source, f"features are not numeric arrays ({exc})", field=field,
                        fix="store one numeric vector per utterance") from None
    if array.ndim == 1 and length is not None and array.shape[0] == length:
        array = array[:, None]
    if array.ndim != 2:
        raise DataError(source, f"features have shape {tuple(array.shape)}, expected [utterances, dim]", field=field,
                        fix="store one vector per utterance")
    if length is not None and array.shape[0] != length:
        raise DataError(source, f"has {array.shape[0]} feature rows for {length} utterances", field=field,
                        fix="give every utterance exactly one feature vector")
    return array


def label_vector(value: Any, source: str | Path, field: str, length: int) -> np.ndarray:
    """Integer labels ``int64 [L]``; non-integers and wrong lengths are refused."""
    try:
        array = np.asarray(value)
    except (TypeError, ValueError):
        raise DataError(source, "labels are not a flat list of integers", field=field,
                        fix="give every utterance one integer label") from None
    if array.ndim != 1 or array.shape[0] != length:
        raise DataError(source, f"has {array.size} labels for {length} utterances", field=field,
                        fix="give every utterance one integer label")
    if array.dtype.kind not in "iub":
        if array.dtype.kind == "f" and np.all(np.isfinite(array)) and np.all(array == np.round(array)):
            return array.astype(np.int64)
        raise DataError(source, f"labels must be integers, got {array.dtype}", field=field,
                        fix="store class indices (see docs/formats.md for the label orders)")
    return array.astype(np.int64)


def speaker_names(value: Any, source: str | Path, field: str) -> list[str]:
    """Speakers as names: strings are kept ('M'/'F'); one-hot vectors → ``speaker_<argmax>``;
    integers → ``speaker_<int>``."""
    try:
        items = list(value)
    except TypeError:
        raise DataError(source, f"speakers must be a list per dialogue, got {type(value).__name__}", field=field,
                        fix="store one speaker per utterance") from None
    if not items:
        return []
    if all(isinstance(s, (str, bytes)) for s in items):
        return [s.decode("latin1") if isinstance(s, bytes) else s for s in items]
    try:
        array = np.asarray(items, dtype=np.float64)
    except (TypeError, ValueError):
        raise DataError(source, "speakers must be names, integer ids or one-hot vectors", field=field,
                        fix="store one speaker per utterance") from None
    if array.ndim == 2 and array.shape[1] > 0:
        return [f"speaker_{i}" for i in np.argmax(array, axis=1)]
    if array.ndim == 1 and np.all(np.isfinite(array)) and np.all(array == np.round(array)):
        return [f"speaker_{i}" for i in array.astype(np.int64)]
    raise DataError(source, f"speakers have shape {array.shape}", field=field,
                    fix="store one name, integer id or one-hot vector per utterance")


def looks_like_mf(value: Any) -> bool:
    """True when a per-dialogue speaker mapping holds IEMOCAP's 'M'/'F' strings."""
    if not isinstance(value, Mapping) or not value:
        return False
    first = next(iter(value.values()))
    try:
        items = list(first)
    except TypeError:
        return False
    return bool(items) and all(isinstance(s, (str, bytes)) and s in ("M", "F", b"M", b"F") for s in items)


def id_list(value: Any, source: str | Path, field: str) -> list[str]:
    """Dialogue ids of a split as strings; sets (unordered) are sorted for determinism."""
    if value is None:
        return []
    if isinstance(value, (set, frozenset)):
        items = sorted(value, key=str)
    elif isinstance(value, Mapping):
        items = list(value)
    elif isinstance(value, (list, tuple, np.ndarray)):
        items = list(value)
    else:
        raise DataError(source, f"split ids must be a list or set, got {type(value).__name__}", field=field,
                        fix="store the dialogue ids of each split as a list")
    return [str(i) for i in items]


def per_dialogue(mapping: Any, source: str | Path, field: str) -> dict[str, Any]:
    """A ``dialogue id → value`` mapping with string keys."""
    if not isinstance(mapping, Mapping):
        raise DataError(source, f"expected a mapping dialogue id → per-utterance values, got {type(mapping).__name__}",
                        field=field, fix="check the file layout (docs/formats.md)")
    return {str(k): v for k, v in mapping.items()}


def assemble(name: str, source: str | Path, splits: dict[str, list[str]], speakers: Mapping[str, Any],
             labels: Mapping[str, Any] | None, features: dict[str, Mapping[str, Any]], label_names: Sequence[str],
             sentences: Mapping[str, Any] | None = None, utterance_ids: Mapping[str, Any] | None = None,
             label_set_name: str | None = None, fields: dict[str, str] | None = None,
             meta: dict[str, Any] | None = None) -> DialogueDataset:
    """Build a dataset from per-dialogue mappings (the shape of every pickle layout).

    Args:
        splits: split → dialogue ids; the dataset holds these dialogues in split order.
        speakers / labels / sentences / utterance_ids: dialogue id → per-utterance list.
        features: modality → (dialogue id → per-utterance vectors).
        fields: names of the keys in the file, for error messages (e.g. ``{"speakers": "videoSpeakers"}``).
    """
    names = {"speakers": "speakers", "labels": "labels", "sentences": "sentences", "utterance_ids": "ids",
             **{m: m for m in features}, **(fields or {})}
    dialogues: list[Dialogue] = []
    seen: set[str] = set()
    order = [i for ids in splits.values() for i in ids]
    for did in order:
        if did in seen:
            raise DataError(source, f"dialogue '{did}' is listed in more than one split", field="splits",
                            fix="list each dialogue id in one split only")
        seen.add(did)

        def get(mapping: Mapping[str, Any], key: str) -> Any:
            if did not in mapping:
                raise DataError(source, f"has no entry for dialogue '{did}'", field=names[key],
                                fix="every dialogue of the split lists needs every field")
            return mapping[did]

        spk = speaker_names(get(speakers, "speakers"), source, f"{names['speakers']}[{did}]")
        if not spk:
            raise DataError(source, f"dialogue '{did}' is empty", field=names["speakers"],
                            fix="remove empty dialogues")
        length = len(spk)
        lab = None
        if labels is not None:
            lab = label_vector(get(labels, "labels"), source, f"{names['labels']}[{did}]", length)
            check_label_range(lab, len(label_names), source, f"{names['labels']}[{did}]", label_set_name)
        feats = {m: feature_matrix(get(values, m), source, f"{names[m]}[{did}]", length)
                 for m, values in features.items()}
        texts = None
        if sentences is not None:
            raw_texts = get(sentences, "sentences")
            if not isinstance(raw_texts, (list, tuple, np.ndarray)):
                raise DataError(source, f"sentences must be a list per dialogue, got {type(raw_texts).__name__}",
                                field=f"{names['sentences']}[{did}]", fix="give every utterance one sentence")
            texts = [repair_text(s.decode("latin1") if isinstance(s, bytes) else str(s)) for s in raw_texts]
            if len(texts) != length:
                raise DataError(source, f"has {len(texts)} sentences for {length} utterances",
                                field=f"{names['sentences']}[{did}]", fix="give every utterance one sentence")
        uids = None
        if utterance_ids is not None and did in utterance_ids:
            uids = [str(u) for u in utterance_ids[did]]
            if len(uids) != length:
                raise DataError(source, f"has {len(uids)} utterance ids for {length} utterances",
                                field=f"{names['utterance_ids']}[{did}]", fix="give every utterance one id")
        dialogues.append(Dialogue(did, spk, feats, lab, texts, uids))
    if not dialogues:
        raise DataError(source, "holds no dialogues", field="splits", fix="check the train/test id lists")
    return DialogueDataset(name, dialogues, list(label_names), {k: v for k, v in splits.items() if v},
                           str(source), dict(meta or {}))
