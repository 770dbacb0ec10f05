"""Every data file format ``merc`` reads, parsed in one place.

``read_dataset(path, format=None, **options)`` returns a :class:`~merc.data.schema.DialogueDataset`
from any supported file or folder; the format is detected from the content when not given.
:data:`FORMATS` maps each format name to its reader (see ``docs/formats.md``):

==================  ================================================================
``tuple-pickle``    DialogueGCN/MMGCN/M3Net tuple pickles and COSMIC RoBERTa pickles
``dict-pickle``     COGMEN / CORECT / DnR dict pickles
``meld-csv``        MELD ``{train,dev,test}_sent_emo.csv`` folder
``emorynlp-csv``    EmoryNLP ``emorynlp_{train,dev,test}_final.csv`` folder
``utterances``      our user format: ``.csv``/``.jsonl`` table + ``.npz`` features
==================  ================================================================
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from merc.data.formats.dict_pickle import dataset_from_dict, looks_like_dict_pickle, read_dict_pickle
from merc.data.formats.transcripts import EMORYNLP_FILES, MELD_FILES, read_emorynlp_csvs, read_meld_csvs
from merc.data.formats.tuple_pickle import dataset_from_tuple, read_tuple_pickle, replace_text_features
from merc.data.formats.user_format import read_user_dataset, save_user_dataset
from merc.data.schema import DialogueDataset
from merc.data.unpickle import load_pickle
from merc.errors import DataError
from merc.registry import check_kwargs


@dataclass(frozen=True)
class FileFormat:
    """A readable format: its reader ``reader(path, **options)`` and a one-line description."""

    reader: Callable[..., DialogueDataset]
    description: str
    options: str = ""


FORMATS: dict[str, FileFormat] = {
    "tuple-pickle": FileFormat(read_tuple_pickle, "IEMOCAP_features.pkl / MELD_features_raw1.pkl tuples, COSMIC "
                               "RoBERTa pickles", "labels, roberta, name"),
    "dict-pickle": FileFormat(read_dict_pickle, "COGMEN / CORECT / DnR iemocap.pkl, meld.pkl", "labels, name"),
    "meld-csv": FileFormat(read_meld_csvs, "folder with MELD train/dev/test_sent_emo.csv", "labels, name"),
    "emorynlp-csv": FileFormat(read_emorynlp_csvs, "folder with emorynlp_train/dev/test_final.csv", "name"),
    "utterances": FileFormat(read_user_dataset, "user format: .csv/.jsonl utterance table + .npz features",
                             "features, labels, name"),
}

_PICKLE_SUFFIXES = (".pkl", ".pickle", ".p")


def detect_format(path: str | Path) -> str:
    """The format name of ``path`` judged from its name and (for CSVs) its header row."""
    p = Path(path)
    if p.is_dir():
        if (p / MELD_FILES["train"]).exists():
            return "meld-csv"
        if (p / EMORYNLP_FILES["train"]).exists():
            return "emorynlp-csv"
        raise DataError(p, "is a folder without MELD or EmoryNLP CSVs", field="path",
                        fix="pass a data file, or a folder holding train_sent_emo.csv / emorynlp_train_final.csv")
    if not p.exists():
        raise DataError(p, "does not exist", field="path", fix="check the path (or use a catalog name: merc datasets)")
    suffix = p.suffix.lower()
    if suffix in _PICKLE_SUFFIXES:
        return "pickle"
    if suffix in (".jsonl", ".npz"):
        return "utterances"
    if suffix == ".csv":
        if p.name in MELD_FILES.values():
            return "meld-csv"
        if p.name in EMORYNLP_FILES.values():
            return "emorynlp-csv"
        return "utterances"
    raise DataError(p, f"has an unknown suffix '{p.suffix}'", field="format",
                    fix=f"pass format= one of: {', '.join(FORMATS)}")


def read_dataset(path: str | Path, format: str | None = None, **options: Any) -> DialogueDataset:
    """Read any supported dataset file or folder.

    Args:
        path: file or folder.
        format: a key of :data:`FORMATS`; detected when None (pickles are told apart by
            their content: tuple or dict).
        **options: reader options, e.g. ``labels="meld-3"`` or ``roberta="concat"``.
    """
    p = Path(path)
    name = format or detect_format(p)
    if name == "pickle":
        obj = load_pickle(p)
        if looks_like_dict_pickle(obj):
            check_kwargs(read_dict_pickle, options, "format 'dict-pickle'")
            return dataset_from_dict(obj, p, options.get("labels"), options.get("name") or p.stem)
        check_kwargs(read_tuple_pickle, options, "format 'tuple-pickle'")
        return dataset_from_tuple(obj, p, options.get("labels"), options.get("roberta", "mean"),
                                  options.get("name") or p.stem)
    if name not in FORMATS:
        raise DataError(p, f"unknown format '{name}'", field="format", fix=f"choose from: {', '.join(FORMATS)}")
    if name in ("meld-csv", "emorynlp-csv") and p.is_file():
        p = p.parent
    if name == "utterances" and p.suffix.lower() == ".npz":
        p = _table_for(p)
    reader = FORMATS[name].reader
    check_kwargs(reader, options, f"format '{name}'")
    return reader(p, **options)


def _table_for(npz: Path) -> Path:
    for suffix in (".csv", ".jsonl"):
        if npz.with_suffix(suffix).is_file():
            return npz.with_suffix(suffix)
    raise DataError(npz, "has no utterance table next to it", field="path",
                    fix=f"pass {npz.with_suffix('.csv').name} or {npz.with_suffix('.jsonl').name} "
                    "(the .npz only holds features)")


__all__ = ["FORMATS", "FileFormat", "detect_format", "read_dataset", "read_dict_pickle", "read_emorynlp_csvs",
           "read_meld_csvs", "read_tuple_pickle", "read_user_dataset", "replace_text_features", "save_user_dataset"]
