"""Dict-format feature pickles (COGMEN / CORECT / DnR ``iemocap.pkl``, ``meld.pkl``).

Layout: a dict with ``trainVid``, ``testVid`` (optionally ``devVid``), ``speaker`` (IEMOCAP,
'M'/'F') or ``speakers`` (MELD, integer ids → ``speaker_<id>``), ``label``, ``text``,
``audio``, ``visual``, ``sentence``; each of the latter maps dialogue id → per-utterance list.
Missing modality keys are allowed (the dataset then lacks that modality).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from merc.data.formats.common import assemble, id_list, looks_like_mf, per_dialogue
from merc.data.labels import label_set
from merc.data.schema import DialogueDataset
from merc.data.unpickle import load_pickle
from merc.errors import DataError

REQUIRED_KEYS = ("trainVid", "testVid", "label")
_MODALITY_KEYS = (("t", "text"), ("a", "audio"), ("v", "visual"))


def looks_like_dict_pickle(obj: Any) -> bool:
    """True for a dict carrying the split lists of this layout."""
    return isinstance(obj, dict) and "trainVid" in obj and "testVid" in obj


def read_dict_pickle(path: str | Path, labels: str | None = None, name: str | None = None) -> DialogueDataset:
    """Read a dict-format pickle.

    Args:
        path: the ``.pkl`` file.
        labels: label set name; detected from the speaker form when None
            ('M'/'F' → ``iemocap-6``, integer ids → ``meld-7``).
        name: dataset name (default: the file stem).
    """
    p = Path(path)
    obj = load_pickle(p)
    return dataset_from_dict(obj, p, labels, name or p.stem)


def dataset_from_dict(obj: Any, source: Path, labels: str | None, name: str) -> DialogueDataset:
    """Build the dataset from an already unpickled dict (see :func:`read_dict_pickle`)."""
    if not isinstance(obj, dict):
        raise DataError(source, f"holds a {type(obj).__name__}, expected a dict", field="pickle",
                        fix="pass format=tuple-pickle for tuple pickles")
    missing = [k for k in REQUIRED_KEYS if k not in obj]
    speaker_key = "speaker" if "speaker" in obj else "speakers" if "speakers" in obj else None
    if speaker_key is None:
        missing.append("speaker/speakers")
    if missing:
        raise DataError(source, f"missing key(s) {', '.join(missing)}", field="pickle",
                        fix=f"a dict pickle needs {', '.join(REQUIRED_KEYS)} and speaker or speakers")
    speakers = per_dialogue(obj[speaker_key], source, speaker_key)
    set_name = labels or ("iemocap-6" if looks_like_mf(speakers) else "meld-7")
    names = label_set(set_name)
    features = {m: per_dialogue(obj[key], source, key) for m, key in _MODALITY_KEYS if obj.get(key) is not None}
    splits = {"train": id_list(obj["trainVid"], source, "trainVid"),
              "dev": id_list(obj.get("devVid"), source, "devVid"),
              "test": id_list(obj["testVid"], source, "testVid")}
    sentences = per_dialogue(obj["sentence"], source, "sentence") if obj.get("sentence") is not None else None
    return assemble(name, source, splits, speakers, per_dialogue(obj["label"], source, "label"), features, names,
                    sentences=sentences, label_set_name=set_name,
                    fields={"speakers": speaker_key, "labels": "label", "sentences": "sentence", "t": "text",
                            "a": "audio", "v": "visual"},
                    meta={"format": "dict-pickle", "label_set": set_name})
