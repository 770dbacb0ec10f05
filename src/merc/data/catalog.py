"""The catalog of named datasets in :data:`merc.registry.DATASETS`.

Every builder takes ``path`` (a file or folder; catalog entries that read local files need it,
or fall back to the fetch cache) plus its own options, and returns a
:class:`~merc.data.schema.DialogueDataset`::

    DATASETS.create("meld", path="/data/meld")          # transcripts, MELD-7 labels
    DATASETS.create("meld", labels="meld-3")            # from the fetch cache, sentiment labels
    DATASETS.create("iemocap-pickle", path="IEMOCAP_features.pkl", text_path="iemocap_features_roberta.pkl")

:data:`CATALOG_INFO` describes each entry for ``merc datasets`` (label set, splits, formats).
The synthetic presets are registered by :mod:`merc.data.synthetic`, imported here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import merc.data.synthetic  # noqa: F401  (registers the synthetic presets)
from merc.data.fetch import REMOTE_DATASETS, dataset_dir, is_fetched
from merc.data.formats import read_dataset, read_emorynlp_csvs, read_meld_csvs, read_user_dataset, replace_text_features
from merc.data.labels import LABEL_SETS, to_iemocap4
from merc.data.schema import DialogueDataset
from merc.errors import DataError
from merc.registry import DATASETS


@dataclass(frozen=True)
class DatasetInfo:
    """What ``merc datasets`` shows about a catalog entry."""

    labels: str
    splits: str
    formats: str
    features: str


CATALOG_INFO: dict[str, DatasetInfo] = {
    "meld": DatasetInfo("meld-7 (meld-3 with labels=meld-3)", "official train/dev/test: 1038/114/280 dialogues",
                        "meld-csv (merc data fetch meld)", "none (transcripts; add with merc features)"),
    "emorynlp": DatasetInfo("emorynlp-7", "official train/dev/test: 659/89/79 dialogues",
                            "emorynlp-csv (merc data fetch emorynlp)", "none (transcripts; add with merc features)"),
    "iemocap-pickle": DatasetInfo("iemocap-6 (iemocap-4 with labels=iemocap-4)", "train/test; dev carved from train "
                                  "(seeded 10%)", "tuple-pickle, dict-pickle", "t/a/v from the file"),
    "meld-pickle": DatasetInfo("meld-7 (meld-3 with labels=meld-3)", "train/test (dev folded into train; carved) or "
                               "official dev (COSMIC, devVid)", "tuple-pickle, dict-pickle", "t/a/v from the file"),
    "utterances": DatasetInfo("from the file (label column / .npz header)", "split column, else all train",
                              "utterances (.csv/.jsonl + .npz)", "from the .npz, else none"),
}


def _transcripts_dir(name: str, path: str | Path | None) -> Path:
    if path is not None:
        return Path(path).expanduser()
    if not is_fetched(name):
        raise DataError(dataset_dir(name), f"has no {name} transcripts", field="path",
                        fix=f"run `merc data fetch {name}` (or `--from DIR`), or pass data.path=DIR")
    return dataset_dir(name)


@DATASETS.register("meld")
def meld(path: str | None = None, labels: str = "meld-7") -> DialogueDataset:
    """MELD transcripts (Friends): official splits 9989/1109/2610 utterances; text only, MELD-7 or MELD-3 labels."""
    name = "meld" if labels == "meld-7" else "meld-3"
    return read_meld_csvs(_transcripts_dir("meld", path), labels=labels, name=name)


@DATASETS.register("emorynlp")
def emorynlp(path: str | None = None) -> DialogueDataset:
    """EmoryNLP transcripts (Friends scenes): official splits 7551/954/984 utterances; text only, EmoryNLP-7 labels."""
    return read_emorynlp_csvs(_transcripts_dir("emorynlp", path))


def _pickle(path: str | None, kind: str, labels: str | None, text_path: str | None, roberta: str) -> DialogueDataset:
    if path is None:
        raise DataError(f"{kind}-pickle", "needs a file", field="path",
                        fix="pass data.path=FILE.pkl (or --path FILE.pkl)")
    file_labels = "iemocap-6" if labels == "iemocap-4" else labels
    dataset = read_dataset(path, labels=file_labels)
    iemocap_like = set(dataset.speaker_names()) <= {"M", "F"}
    if iemocap_like != (kind == "iemocap"):
        other = "meld" if kind == "iemocap" else "iemocap"
        raise DataError(path, f"looks like {other.upper()} data (speakers {', '.join(dataset.speaker_names()[:3])}), "
                        f"not {kind.upper()}", field="speakers", fix=f"use the {other}-pickle dataset")
    if text_path is not None:
        dataset = replace_text_features(dataset, read_dataset(text_path, format="tuple-pickle", roberta=roberta,
                                                              labels=file_labels))
    if labels == "iemocap-4":
        dataset = to_iemocap4(dataset)
    dataset.name = kind if labels in ("iemocap-6", "meld-7") else labels
    return dataset


@DATASETS.register("iemocap-pickle")
def iemocap_pickle(path: str | None = None, labels: str = "iemocap-6", text_path: str | None = None,
                   roberta: str = "mean") -> DialogueDataset:
    """IEMOCAP from a feature pickle (tuple or dict format); optional COSMIC RoBERTa text from text_path."""
    if labels not in ("iemocap-6", "iemocap-4"):
        raise DataError("iemocap-pickle", f"unknown label set '{labels}'", field="labels",
                        fix="use iemocap-6 or iemocap-4")
    return _pickle(path, "iemocap", labels, text_path, roberta)


@DATASETS.register("meld-pickle")
def meld_pickle(path: str | None = None, labels: str = "meld-7", text_path: str | None = None,
                roberta: str = "mean") -> DialogueDataset:
    """MELD from a feature pickle (tuple or dict format); optional COSMIC RoBERTa text from text_path."""
    if labels not in ("meld-7", "meld-3"):
        raise DataError("meld-pickle", f"unknown label set '{labels}'", field="labels", fix="use meld-7 or meld-3")
    return _pickle(path, "meld", labels, text_path, roberta)


@DATASETS.register("utterances")
def utterances(path: str | None = None, features: str | None = None, labels: str | None = None) -> DialogueDataset:
    """Your own data: an utterance table (.csv/.jsonl) plus optional .npz features (docs/formats.md)."""
    if path is None:
        raise DataError("utterances", "needs a file", field="path", fix="pass data.path=conversations.csv")
    return read_user_dataset(path, features=features, labels=labels)


def describe_dataset(name: str) -> DatasetInfo:
    """Catalog info of ``name``; generated entries (synthetic presets) are described from their config."""
    if name in CATALOG_INFO:
        return CATALOG_INFO[name]
    presets = getattr(merc.data.synthetic, "PRESETS", {})
    if name in presets:
        labels = ", ".join(presets[name].label_names)
        return DatasetInfo(labels, "train/test; dev carved from train (seeded 10%)", "generated (seeded)", "t/a/v")
    return DatasetInfo("?", "?", "?", "?")


__all__ = ["CATALOG_INFO", "DatasetInfo", "describe_dataset", "LABEL_SETS", "REMOTE_DATASETS"]
