"""Tuple-format feature pickles (DialogueRNN / DialogueGCN / MMGCN / M3Net and COSMIC).

Layouts (each ``video*`` item maps dialogue id → per-utterance list or array):

- ``IEMOCAP_features.pkl`` — 9-tuple, Python-2 pickle: ``(videoIDs, videoSpeakers,
  videoLabels, videoText, videoAudio, videoVisual, videoSentence, trainVid, testVid)``;
  speakers 'M'/'F'; labels IEMOCAP-6.
- ``MELD_features_raw1.pkl`` — 10-tuple, the same order plus one unused trailing item;
  speakers are one-hot vectors (→ ``speaker_<index>``); labels MELD-7; dev is folded into train.
- COSMIC ``iemocap_features_roberta.pkl`` — 10-tuple ``(speakers, labels, roberta1..4,
  sentences, trainIds, testIds, validIds)``; ``meld_features_roberta.pkl`` — 11-tuple
  ``(speakers, emotion_labels, sentiment_labels, roberta1..4, sentences, trainIds, testIds,
  validIds)``. Text features only (``"t"``); :func:`replace_text_features` uses them as an
  alternative text source for a tuple-format dataset.

The label set is detected from the speaker form ('M'/'F' → IEMOCAP-6, otherwise MELD-7) unless
``labels=`` names one (see :mod:`merc.data.labels`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from merc.data.formats.common import assemble, id_list, looks_like_mf, per_dialogue
from merc.data.labels import label_set
from merc.data.schema import Dialogue, DialogueDataset
from merc.data.unpickle import load_pickle
from merc.errors import DataError

_DIALOGUEGCN_FIELDS = ("videoIDs", "videoSpeakers", "videoLabels", "videoText", "videoAudio", "videoVisual",
                       "videoSentence", "trainVid", "testVid")
ROBERTA_CHOICES = ("mean", "concat", "1", "2", "3", "4")


def detect_layout(obj: Any) -> str | None:
    """``"dialoguegcn"``, ``"cosmic-iemocap"``, ``"cosmic-meld"`` or None for other objects."""
    if not isinstance(obj, tuple):
        return None
    if len(obj) == 9:
        return "dialoguegcn"
    if len(obj) == 10:
        return "cosmic-iemocap" if looks_like_mf(obj[0]) else "dialoguegcn"
    if len(obj) == 11:
        return "cosmic-meld"
    return None


def _label_names(labels: str | None, speakers: Any, default_meld: str = "meld-7") -> tuple[str, list[str]]:
    name = labels or ("iemocap-6" if looks_like_mf(speakers) else default_meld)
    return name, label_set(name)


def _roberta(layers: list[dict[str, Any]], how: str, path: Path) -> dict[str, Any]:
    if how not in ROBERTA_CHOICES:
        raise DataError(path, f"unknown roberta option '{how}'", field="roberta",
                        fix=f"choose from: {', '.join(ROBERTA_CHOICES)}")
    if how in ("1", "2", "3", "4"):
        return layers[int(how) - 1]
    out = {}
    for did in layers[0]:
        parts = [np.asarray(layer[did], dtype=np.float32) for layer in layers]
        out[did] = np.mean(parts, axis=0) if how == "mean" else np.concatenate(parts, axis=-1)
    return out


def read_tuple_pickle(path: str | Path, labels: str | None = None, roberta: str = "mean",
                      name: str | None = None) -> DialogueDataset:
    """Read a tuple-format pickle into a :class:`DialogueDataset`.

    Args:
        path: the ``.pkl`` file.
        labels: label set name (``iemocap-6``, ``meld-7``, ``meld-3`` ...); detected when None.
            ``meld-3`` selects the sentiment labels of a COSMIC MELD pickle.
        roberta: for COSMIC pickles, how the four RoBERTa feature sets become ``"t"``:
            ``mean`` (default), ``concat`` or one of ``1``..``4``.
        name: dataset name (default: the file stem).
    """
    p = Path(path)
    return dataset_from_tuple(load_pickle(p), p, labels, roberta, name or p.stem)


def dataset_from_tuple(obj: Any, source: Path, labels: str | None = None, roberta: str = "mean",
                       name: str = "dataset") -> DialogueDataset:
    """Build the dataset from an already unpickled tuple (see :func:`read_tuple_pickle`)."""
    layout = detect_layout(obj)
    if layout is None:
        size = f"a tuple of length {len(obj)}" if isinstance(obj, tuple) else f"a {type(obj).__name__}"
        raise DataError(source, f"holds {size}, not a known tuple layout", field="pickle",
                        fix="expected 9 items (IEMOCAP_features), 10 (MELD_features_raw1 / COSMIC IEMOCAP) "
                        "or 11 (COSMIC MELD); pass format=dict-pickle for dict pickles")
    if labels is not None:
        label_set(labels)  # raises naming the valid sets
    if layout == "dialoguegcn":
        return _read_dialoguegcn(obj, source, labels, name)
    return _read_cosmic(obj, source, layout, labels, roberta, name)


def _read_dialoguegcn(obj: tuple, p: Path, labels: str | None, name: str) -> DialogueDataset:
    f = dict(zip(_DIALOGUEGCN_FIELDS, obj[:9]))
    speakers = per_dialogue(f["videoSpeakers"], p, "videoSpeakers")
    set_name, names = _label_names(labels, speakers)
    features = {m: per_dialogue(f[key], p, key)
                for m, key in (("t", "videoText"), ("a", "videoAudio"), ("v", "videoVisual")) if f[key] is not None}
    splits = {"train": id_list(f["trainVid"], p, "trainVid"), "test": id_list(f["testVid"], p, "testVid")}
    sentences = per_dialogue(f["videoSentence"], p, "videoSentence") if f["videoSentence"] is not None else None
    ids = per_dialogue(f["videoIDs"], p, "videoIDs") if isinstance(f["videoIDs"], dict) else None
    return assemble(name, p, splits, speakers, per_dialogue(f["videoLabels"], p, "videoLabels"), features, names,
                    sentences=sentences, utterance_ids=ids, label_set_name=set_name,
                    fields={"speakers": "videoSpeakers", "labels": "videoLabels", "sentences": "videoSentence",
                            "utterance_ids": "videoIDs", "t": "videoText", "a": "videoAudio", "v": "videoVisual"},
                    meta={"format": "tuple-pickle", "layout": "dialoguegcn", "label_set": set_name})


def _read_cosmic(obj: tuple, p: Path, layout: str, labels: str | None, roberta: str, name: str) -> DialogueDataset:
    offset = 3 if layout == "cosmic-meld" else 2
    speakers = per_dialogue(obj[0], p, "speakers")
    set_name, names = _label_names(labels, speakers)
    label_pos = 2 if (layout == "cosmic-meld" and set_name == "meld-3") else 1
    layers = [per_dialogue(obj[offset + k], p, f"roberta{k + 1}") for k in range(4)]
    text = _roberta(layers, roberta, p)
    s = offset + 4
    splits = {"train": id_list(obj[s + 1], p, "trainIds"), "dev": id_list(obj[s + 3], p, "validIds"),
              "test": id_list(obj[s + 2], p, "testIds")}
    return assemble(name, p, splits, speakers, per_dialogue(obj[label_pos], p, "labels"), {"t": text}, names,
                    sentences=per_dialogue(obj[s], p, "sentences"), label_set_name=set_name,
                    fields={"t": f"roberta({roberta})"},
                    meta={"format": "tuple-pickle", "layout": layout, "label_set": set_name, "roberta": roberta})


def replace_text_features(dataset: DialogueDataset, text_source: DialogueDataset) -> DialogueDataset:
    """``dataset`` with its ``"t"`` features taken from ``text_source`` (e.g. COSMIC RoBERTa).

    Every dialogue of ``dataset`` must exist in ``text_source`` with the same length.
    """
    index = {d.id: d for d in text_source.dialogues}
    dialogues = []
    for d in dataset.dialogues:
        other = index.get(d.id)
        if other is None or "t" not in other.features:
            raise DataError(text_source.source, f"has no text features for dialogue '{d.id}'", field="t",
                            fix="use a text source covering the same dialogues")
        if len(other) != len(d):
            raise DataError(text_source.source, f"dialogue '{d.id}' has {len(other)} utterances, expected {len(d)}",
                            field="t", fix="use a text source built from the same utterances")
        features = {**d.features, "t": other.features["t"]}
        dialogues.append(Dialogue(d.id, d.speakers, features, d.labels, d.texts, d.utterance_ids, d.meta,
                                  d.sequences, d.media))
    meta = {**dataset.meta, "text_source": text_source.source}
    return DialogueDataset(dataset.name, dialogues, list(dataset.label_names), dict(dataset.splits),
                           dataset.source, meta)
