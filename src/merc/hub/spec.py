"""The feature spec of a model: which encoder made the features it was trained on.

A model's spec is the extractor record of each modality (``{m: {"name", "options",
"settings", "dim", "level"}}``, as written by :func:`merc.features.pipeline.extractor_record`
and kept in ``info.json`` / ``config.json``). Features handed to a model (a ``.npz`` next to
the table, a :class:`~merc.data.schema.DialogueDataset`) carry the same record in their meta
when ``merc features`` or ``merc finetune`` made them; if it disagrees with the model's spec
the features are refused with one line instead of silently degrading the predictions.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

from merc.data.schema import MODALITY_NAMES, DialogueDataset
from merc.errors import DataError

#: settings keys shown in the one-line description of a spec (when present)
_SHOWN = ("model", "revision", "pooling", "level", "max_length", "config", "dim")


def spec_records(meta: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The per-modality feature records of a dataset's (or model's) meta.

    ``extractors`` is written by ``merc features``; ``feature_spec`` by ``merc finetune``
    (context-aware features that no per-utterance extractor can recompute).
    """
    records = {**dict(meta.get("feature_spec") or {}), **dict(meta.get("extractors") or {})}
    return {m: dict(r) for m, r in records.items() if isinstance(r, Mapping)}


def model_spec(info: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The feature spec of a model from its ``info`` (pretrained directories: ``info["extractors"]``;
    ``merc train`` directories: ``info["dataset_meta"]``'s ``extractors`` / ``feature_spec``)."""
    return {**spec_records(info.get("dataset_meta") or {}), **spec_records(info)}


def describe(record: Mapping[str, Any]) -> str:
    """``minilm (model=..., revision=..., pooling=model, dim=384)`` — for messages and model cards."""
    settings = {**dict(record.get("settings") or {}), "dim": record.get("dim")}
    shown = ", ".join(f"{k}={settings[k]}" for k in _SHOWN if settings.get(k) is not None)
    return f"{record.get('name', '?')} ({shown})"


def first_difference(expected: Mapping[str, Any], got: Mapping[str, Any]) -> str | None:
    """The first field on which two feature records disagree (``None``: they match)."""
    if expected.get("name") != got.get("name"):
        return f"extractor {got.get('name')!r} (the model's is {expected.get('name')!r})"
    if expected.get("dim") is not None and got.get("dim") is not None and int(expected["dim"]) != int(got["dim"]):
        return f"dim {got['dim']} (the model's is {expected['dim']})"
    want, have = dict(expected.get("settings") or {}), dict(got.get("settings") or {})
    for key in sorted(set(want) | set(have)):
        if want.get(key) != have.get(key):
            return f"{key} {have.get(key)!r} (the model's is {want.get(key)!r})"
    return None


def check_feature_spec(spec: Mapping[str, Mapping[str, Any]], dataset: DialogueDataset,
                       modalities: Iterable[str]) -> None:
    """Refuse ``dataset``'s features of ``modalities`` when their record disagrees with ``spec``.

    Features without a record (bring-your-own arrays) pass: only their dimension can be checked
    (done by the caller). Raises :class:`~merc.errors.DataError` naming the first difference.
    """
    have = spec_records(dataset.meta)
    for m in modalities:
        if m not in spec or m not in have:
            continue
        diff = first_difference(spec[m], have[m])
        if diff is not None:
            raise DataError(dataset.source or dataset.name, f"{MODALITY_NAMES[m]} features do not match the model's "
                            f"feature spec: {diff}", field=f"features__{m}",
                            fix=f"extract them with {describe(spec[m])}, or drop the features file and let merc "
                                "extract them")
