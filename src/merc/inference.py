"""Predictions with explanations for new conversations: ``Predictor``.

A :class:`Predictor` wraps a model directory (``merc train`` output). It reads conversations
(a CSV/JSONL utterance table in the user format, a list of dicts, a DataFrame or a
:class:`DialogueDataset`), extracts features with the same extractors the model was trained
with (recorded in the model directory), runs the model and returns one row per utterance::

    from merc import Predictor

    predictor = Predictor.from_dir("runs/meld/seed_0")
    rows = predictor.predict("new_conversations.csv")
    rows[0]["label"], rows[0]["probabilities"], rows[0]["explanation"]

Features already present in the input (a ``.npz`` next to the table) are used as they are
("bring your own features"); their dimensions must match the model's.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import torch

from merc.data.collate import make_loader
from merc.data.schema import MODALITY_NAMES, Dialogue, DialogueDataset
from merc.errors import DataError, MercError
from merc.features.base import Extractor
from merc.features.pipeline import build_extractors, extract_features
from merc.hub.spec import check_feature_spec, model_spec

log = logging.getLogger(__name__)

RAW_FIELD = {"t": "text", "a": "audio", "v": "video"}
#: per-utterance explanation arrays not repeated in the ``explanation`` field
_SKIP_KEYS = {"dialogue_id", "position", "label", "probs", "components", "attention_layers", "gold_drop"}

#: a CSV/JSONL path, a DialogueDataset, a list of utterance dicts or a pandas DataFrame
Conversations = Any


def extractor_records(info: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The extractor records of a model directory's ``info.json``.

    The engine stores the training dataset's meta as ``info["dataset_meta"]``; extraction puts
    ``{m: {"name", "options", "settings", "dim", "level"}}`` under its ``"extractors"`` key.
    A top-level ``info["extractors"]`` is accepted too.
    """
    records = info.get("extractors") or (info.get("dataset_meta") or {}).get("extractors") or {}
    return {m: dict(r) for m, r in records.items() if isinstance(r, Mapping)}


class Predictor:
    """A trained model plus the extractors that feed it.

    Args:
        bundle: a loaded model directory (:func:`merc.training.model_dir.load_model_dir`).
        batch_size: dialogues per forward pass.
        cache_dir: feature cache directory; ``None`` extracts in memory (no cache).
        progress: show extraction progress bars.
    """

    def __init__(self, bundle: Any, batch_size: int = 16, cache_dir: str | Path | None = None,
                 progress: bool = False) -> None:
        self.bundle = bundle
        self.method = bundle.method
        self.label_names: list[str] = list(bundle.label_names)
        self.input_dims: dict[str, int] = dict(bundle.architecture["input_dims"])
        self.num_speakers = int(bundle.architecture.get("num_speakers", 0)) or None
        self.records = extractor_records(bundle.info)
        self.batch_size = int(batch_size)
        self.cache_dir = cache_dir
        self.progress = progress
        self._extractors: dict[str, Extractor] = {}

    @classmethod
    def from_dir(cls, model_dir: str | Path, batch_size: int = 16, cache_dir: str | Path | None = None,
                 progress: bool = False) -> "Predictor":
        """Load ``model_dir`` (written by ``merc train``)."""
        from merc.training.model_dir import load_model_dir

        return cls(load_model_dir(model_dir), batch_size, cache_dir, progress)

    @classmethod
    def from_pretrained(cls, name_or_path: str | Path, revision: str | None = None, batch_size: int = 16,
                        cache_dir: str | Path | None = None, progress: bool = False) -> "Predictor":
        """Load a bundled model (``"meld-text"``), a ``save_pretrained`` or ``merc train``
        directory, or (online) a Hugging Face Hub repository id; see :mod:`merc.hub`."""
        from merc.hub import load_pretrained

        return cls(load_pretrained(name_or_path, revision), batch_size, cache_dir, progress)

    def save_pretrained(self, path: str | Path, card: Mapping[str, Any] | None = None) -> Path:
        """Write the model as ``config.json`` + ``model.safetensors`` + ``README.md`` (model card)."""
        from merc.hub import save_pretrained

        return save_pretrained(self.bundle, path, card)

    def push_to_hub(self, repo_id: str, **kwargs: Any) -> str:
        """Upload the model to the Hugging Face Hub (needs network and a token); returns the commit URL."""
        from merc.hub import push_to_hub

        return push_to_hub(self.bundle, repo_id, **kwargs)

    @property
    def modalities(self) -> list[str]:
        return list(self.input_dims)

    # -- input --------------------------------------------------------------------------
    def read(self, conversations: Conversations) -> DialogueDataset:
        """Conversations as a dataset (labels, if given, must be among the model's classes)."""
        if isinstance(conversations, DialogueDataset):
            return conversations
        if isinstance(conversations, (str, Path)):
            from merc.data.formats.user_format import read_user_dataset

            path = Path(conversations)
            if path.suffix.lower() not in (".csv", ".jsonl"):
                raise DataError(path, "unsupported conversations file", field="path",
                                fix="give a .csv or .jsonl table with dialogue_id, speaker, text columns")
            if not path.is_file():
                raise DataError(path, "file not found", fix="check the path")
            return read_user_dataset(path, labels=self.label_names)
        if hasattr(conversations, "to_dict"):  # a pandas DataFrame
            conversations = conversations.to_dict("records")
        return dataset_from_records(list(conversations), self.label_names)

    def _extractor(self, m: str) -> Extractor:
        if m not in self._extractors:
            record = self.records[m]
            (extractor,) = build_extractors({m: {"name": record["name"], "options": record.get("options", {})}}).values()
            recorded = record.get("settings")
            if recorded is not None and recorded != extractor.settings():
                log.warning("extractor %s for %s differs from the one used in training (%s vs %s); "
                            "predictions may degrade", record["name"], MODALITY_NAMES[m], extractor.settings(), recorded)
            self._extractors[m] = extractor
        return self._extractors[m]

    def prepare(self, conversations: Conversations) -> DialogueDataset:
        """Read ``conversations`` and give every dialogue the features the model needs."""
        dataset = self.read(conversations)
        source = dataset.source or dataset.name
        if not dataset.dialogues:
            raise DataError(source, "holds no conversations", fix="add one row per utterance")
        to_extract: dict[str, Extractor] = {}
        for m, dim in self.input_dims.items():
            have = [m in d.features for d in dataset.dialogues]
            if all(have):
                continue
            field = RAW_FIELD[m]
            if m not in self.records:
                raise DataError(source, f"the model uses {MODALITY_NAMES[m]} features ({dim}-d) that were not made "
                                "by merc's extractors, and the input has none", field=f"features__{m}",
                                fix=f"supply them in the .npz next to the table (features__{m}, [N, {dim}])")
            has_raw = all((d.texts if m == "t" else d.media.get(m)) is not None for d in dataset.dialogues)
            if not has_raw:
                raise DataError(source, f"the model uses {MODALITY_NAMES[m]} but the input has no '{field}' column",
                                field=field, fix=f"add a '{field}' value for every utterance, or use a model "
                                f"trained on {''.join(x for x in self.input_dims if x != m) or 'other modalities'}")
            to_extract[m] = self._extractor(m)
        check_feature_spec(model_spec(self.bundle.info), dataset, [m for m in self.input_dims if m not in to_extract])
        if to_extract:
            dataset = extract_features(dataset, to_extract, self.cache_dir, use_cache=self.cache_dir is not None,
                                       progress=self.progress)
        self.check(dataset)
        return dataset

    def check(self, dataset: DialogueDataset) -> None:
        """Refuse inputs whose modalities, dimensions or speaker counts the model cannot take."""
        source = dataset.source or dataset.name
        dims = dataset.dims
        for m, dim in self.input_dims.items():
            if m not in dims:
                raise DataError(source, f"has no {MODALITY_NAMES[m]} features", field=f"features__{m}",
                                fix=f"the model needs modalities {''.join(self.input_dims)}")
            if dims[m] != dim:
                raise DataError(source, f"{MODALITY_NAMES[m]} features are {dims[m]}-d but the model expects {dim}-d",
                                field=f"features__{m}", fix="extract them with the extractor the model was trained "
                                "with (see merc predict --help) or retrain on these features")
        if self.num_speakers is not None:
            worst = max(dataset.dialogues, key=lambda d: len(set(d.speakers)))
            if len(set(worst.speakers)) > self.num_speakers:
                raise DataError(source, f"dialogue '{worst.id}' has {len(set(worst.speakers))} speakers; the model "
                                f"handles at most {self.num_speakers}", field="speaker",
                                fix="split the dialogue or retrain on data with more parties")

    # -- prediction ---------------------------------------------------------------------
    @torch.no_grad()
    def predict(self, conversations: Conversations) -> list[dict[str, Any]]:
        """One row per utterance: ids, speaker, text, ``label``, ``confidence``,
        ``probabilities`` ({class: p}), ``explanation`` (dict; ``{"kind": None}`` if the method
        offers none; its ``interaction`` entry is the model-agnostic modality-interaction
        explanation, see :func:`merc.explain.interactions_report.interaction_rows`) and
        ``true_label`` when the input is labelled."""
        from merc.data.modality_subsets import resolve_stand_in
        from merc.explain.interactions_report import interaction_rows

        dataset = self.prepare(conversations)
        self.method.eval()
        rows: list[dict[str, Any]] = []
        dialogues = dataset.dialogues
        stand_in, _ = resolve_stand_in(getattr(self.bundle, "stand_in", None), dialogues, self.modalities)
        start = 0
        for batch in make_loader(dialogues, self.modalities, self.batch_size, shuffle=False):
            n_dialogues = len(batch.dialogue_ids)
            probs = self.method.predict_proba(batch).cpu().numpy()  # (N, C)
            explanations = self._explain(batch, probs.shape[0])
            for e, inter in zip(explanations, interaction_rows(self.method, batch, stand_in, self.modalities)):
                e["interaction"] = inter
            chunk = dialogues[start:start + n_dialogues]
            start += n_dialogues
            rows.extend(self._rows(chunk, probs, explanations, dataset.label_names))
        return rows

    def _explain(self, batch: Any, n: int) -> list[dict[str, Any]]:
        kind = getattr(self.method, "explanation_kind", None)
        try:
            result = self.method.explain(batch)
        except NotImplementedError:
            return [{"kind": None} for _ in range(n)]
        return explanation_rows(kind, result, n)

    def _rows(self, dialogues: Sequence[Dialogue], probs: np.ndarray, explanations: list[dict[str, Any]],
              data_labels: list[str]) -> Iterable[dict[str, Any]]:
        i = 0
        for d in dialogues:
            for j in range(len(d)):
                p = probs[i]
                row: dict[str, Any] = {"dialogue_id": d.id, "utterance_id": d.utterance_ids[j],
                                       "speaker": d.speakers[j], "text": d.texts[j] if d.texts is not None else ""}
                if d.labels is not None and d.labels[j] >= 0:
                    row["true_label"] = data_labels[int(d.labels[j])]
                k = int(p.argmax())
                row.update(label=self.label_names[k], confidence=float(p[k]),
                           probabilities={c: float(v) for c, v in zip(self.label_names, p)},
                           explanation=explanations[i])
                yield row
                i += 1


def explanation_rows(kind: str | None, result: Mapping[str, Any], n: int) -> list[dict[str, Any]]:
    """Per-utterance explanation dicts from a method's ``explain`` output.

    DnR (``components``): ``kl`` per component name (how much the prediction changes without
    it), the ``top_component`` and ``kind_kl`` per kind U/R/S (each removed from every
    modality at once), and the on-distribution Shapley values ``shapley_kind`` (U, R, S, X) and
    ``shapley_modality`` per modality. DRKF (``modality_attention``): ``attention`` per part and
    the ``dominant`` modality. Other methods: their per-utterance arrays, as lists.
    """
    per = dict(result.get("per_utterance", {}))
    info = dict(result.get("info", {}))
    names: list[str] | None = info.get("component_names") or info.get("parts")
    arrays = {k: np.asarray(v) for k, v in per.items() if k not in _SKIP_KEYS and not k.startswith("meta:")}
    columns = {"kind_kl": list("URS"), "shapley_kind": info.get("shapley_kind_names"),
               "shapley_modality": info.get("modalities")}
    out = []
    for i in range(n):
        row: dict[str, Any] = {"kind": kind}
        for key, value in arrays.items():
            item = value[i]
            if columns.get(key) and item.shape == (len(columns[key]),):
                row[key] = {k: round(float(x), 6) for k, x in zip(columns[key], item)}
            elif names is not None and item.ndim == 1 and item.shape[0] == len(names):
                row[key] = {name: round(float(x), 6) for name, x in zip(names, item)}
                if key == "kl":
                    row["top_component"] = names[int(np.argmax(item))]
            elif item.ndim == 0:
                row[key] = item.item() if hasattr(item, "item") else item
            else:
                row[key] = np.round(item.astype(float), 6).tolist()
        out.append(row)
    return out


def dataset_from_records(records: Sequence[Mapping[str, Any]], label_names: Sequence[str],
                         source: str = "<records>") -> DialogueDataset:
    """Utterance dicts (``dialogue_id``, ``speaker``, optional ``text``, ``utterance_id``,
    ``label``, ``audio``, ``video``) grouped into dialogues in order of appearance."""
    if not records:
        raise DataError(source, "holds no utterances", fix="give one dict per utterance")
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for k, r in enumerate(records):
        if not isinstance(r, Mapping):
            raise DataError(source, f"item {k} is a {type(r).__name__}, not a dict", fix="give one dict per utterance")
        for key in ("dialogue_id", "speaker"):
            if r.get(key) in (None, ""):
                raise DataError(source, f"item {k} lacks '{key}'", field=key, fix="every utterance needs "
                                "dialogue_id and speaker")
        groups.setdefault(str(r["dialogue_id"]), []).append(r)
    index = {name: i for i, name in enumerate(label_names)}
    dialogues = []
    for did, rows in groups.items():
        labels = None
        if any(r.get("label") not in (None, "") for r in rows):
            bad = [r["label"] for r in rows if r.get("label") not in (None, "") and str(r["label"]) not in index]
            if bad:
                raise DataError(source, f"label '{bad[0]}' is not one of the model's classes", field="label",
                                fix=f"use one of: {', '.join(label_names)} (or leave it blank)")
            labels = np.asarray([index[str(r["label"])] if r.get("label") not in (None, "") else -1 for r in rows])
        texts = [str(r.get("text") or "") for r in rows] if any("text" in r for r in rows) else None
        media = {m: [str(r.get(col) or "") for r in rows] for m, col in (("a", "audio"), ("v", "video"))
                 if any(r.get(col) for r in rows)}
        uids = [str(r["utterance_id"]) for r in rows] if all("utterance_id" in r for r in rows) else None
        dialogues.append(Dialogue(did, [str(r["speaker"]) for r in rows], labels=labels, texts=texts,
                                  utterance_ids=uids, media=media))
    return DialogueDataset("conversations", dialogues, list(label_names), {"test": list(groups)}, source)


def write_predictions(rows: Sequence[Mapping[str, Any]], path: str | Path, fmt: str | None = None) -> Path:
    """Write prediction rows as CSV (one ``prob_<class>`` column per class, the interaction pattern
    and its modalities, the explanation as JSON text) or JSON (a list of nested objects), plus
    ``<name>.dictionary.md`` describing the columns; atomic. ``fmt`` defaults to the suffix."""
    import csv
    import io
    import json

    from merc.io_utils import atomic_write_json, atomic_write_text
    from merc.tables import PREDICTION_BASE, PREDICTION_COLUMNS, write_file_dictionary

    p = Path(path)
    fmt = fmt or ("json" if p.suffix.lower() == ".json" else "csv")
    if fmt not in ("csv", "json"):
        raise MercError(f"unknown output format '{fmt}'; use csv or json")
    if fmt == "json":
        atomic_write_json(p, list(rows))
        return p
    classes = list(rows[0]["probabilities"]) if rows else []
    base = [k for k in ("dialogue_id", "utterance_id", "speaker", "text", "true_label", "label", "confidence")
            if any(k in r for r in rows)]
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(base + [f"prob_{c}" for c in classes] + ["interaction_pattern", "interaction_modalities",
                                                             "explanation"])
    for r in rows:
        inter = (r.get("explanation") or {}).get("interaction") or {}
        writer.writerow([r.get(k, "") for k in base] + [f"{r['probabilities'][c]:.6f}" for c in classes]
                        + [inter.get("pattern", ""), inter.get("modalities", ""),
                           json.dumps(r.get("explanation"), separators=(",", ":"))])
    atomic_write_text(p, buffer.getvalue())
    write_file_dictionary(p, "one utterance", {k: v for k, v in PREDICTION_COLUMNS.items()
                                               if k in base or k not in PREDICTION_BASE})
    return p

