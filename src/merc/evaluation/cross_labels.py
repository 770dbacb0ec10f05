"""Scoring a model on data labelled with another label set (``merc evaluate --label-map``).

The model's class probabilities are summed onto the shared classes of a
:class:`~merc.data.labels.LabelMap` and renormalised; gold labels are mapped the same way.
Utterances whose gold class has no counterpart are not scored, and the mass the model puts on
its own unmappable classes is discarded — both are reported, never hidden.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from merc.data.labels import LabelMap, label_map
from merc.errors import DataError
from merc.evaluation.metrics import compute_metrics


def read_label_map_file(path: str | Path) -> dict[str, str | None]:
    """A JSON object mapping model classes to data classes (or ``null``); errors name the file."""
    p = Path(path)
    try:
        raw = json.loads(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise DataError(p, f"cannot read the label map ({exc.strerror or exc})", field="--label-map",
                        fix="pass an existing JSON file") from None
    except json.JSONDecodeError as exc:
        raise DataError(p, f"is not valid JSON (line {exc.lineno})", field="--label-map",
                        fix='write an object such as {"hap": "joy", "fru": null}') from None
    if not isinstance(raw, dict) or not all(isinstance(v, (str, type(None))) for v in raw.values()):
        raise DataError(p, "must be a JSON object of model class → data class name or null", field="--label-map",
                        fix='e.g. {"hap": "joy", "exc": "joy", "fru": null}')
    return {str(k): v for k, v in raw.items()}


def resolve_label_map(model_labels: list[str], data_labels: list[str], option: str | None) -> LabelMap:
    """``--label-map``: ``None``/``auto`` (identity or via Ekman-7) or a JSON file path."""
    if option in (None, "auto"):
        return label_map(model_labels, data_labels)
    return label_map(model_labels, data_labels, read_label_map_file(option), via=str(option))


def score_mapped(labels: np.ndarray, probs: np.ndarray, lmap: LabelMap) -> tuple[dict[str, Any], np.ndarray]:
    """Metrics in the shared class space.

    Args:
        labels: ``[N]`` gold indices of the data's label set (``-1`` unlabelled).
        probs: ``[N, C_model]`` model probabilities.

    Returns:
        ``(metrics, shared_probs [N, K])``; ``metrics`` adds ``label_map`` (the
        map and its unmapped classes), ``unscored`` (data class → utterances left out) and
        ``discarded_probability`` (mean mass on unmappable model classes).
    """
    gold = lmap.shared_gold(labels)
    shared = lmap.shared_probs(probs)
    if not (gold >= 0).any():
        raise DataError(lmap.via, "no labelled utterance has a class the model can predict", field="labels",
                        fix=f"unmappable data classes: {', '.join(lmap.unmapped_data) or 'none'}")
    metrics = compute_metrics(gold, shared.argmax(1), list(lmap.shared))
    counts = np.bincount(np.asarray(labels)[np.asarray(labels) >= 0], minlength=len(lmap.data_labels))
    dropped = np.flatnonzero(lmap.data_to_shared < 0)
    lost = np.asarray(probs)[:, lmap.model_to_shared < 0].sum(1) if lmap.unmapped_model else np.zeros(len(probs))
    metrics.update(label_map=lmap.describe(),
                   unscored={lmap.data_labels[i]: int(counts[i]) for i in dropped},
                   discarded_probability=float(lost.mean()) if len(lost) else 0.0)
    return metrics, shared
