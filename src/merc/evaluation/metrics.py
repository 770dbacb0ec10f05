"""Classification metrics (scikit-learn), as reported everywhere in ``merc``.

Weighted F1 (sklearn ``average='weighted'``) and accuracy are the MERC headline metrics;
macro F1, per-class F1 and the confusion matrix are always reported too; UA (mean per-class
recall, i.e. balanced accuracy) and WA (accuracy) for the DRKF protocol.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, recall_score


def compute_metrics(y_true: np.ndarray, y_pred: np.ndarray, label_names: Sequence[str]) -> dict[str, Any]:
    """All metrics for integer labels ``y_true`` and predictions ``y_pred`` (``[N]`` each).

    Scores are percentages (0–100), as in the papers. Unlabelled entries (``-1``) are ignored.

    Returns:
        ``{"weighted_f1", "accuracy", "macro_f1", "ua", "wa", "per_class_f1": {name: f1},
        "confusion": [[...]], "support": {name: n}, "n": N}``.
    """
    y_true = np.asarray(y_true).ravel()
    y_pred = np.asarray(y_pred).ravel()
    keep = y_true >= 0
    y_true, y_pred = y_true[keep], y_pred[keep]
    labels = list(range(len(label_names)))
    if y_true.size == 0:
        raise ValueError("no labelled utterances to score")
    per_class = f1_score(y_true, y_pred, labels=labels, average=None, zero_division=0)
    present = [c for c in labels if (y_true == c).any()]
    return {
        "weighted_f1": 100.0 * float(f1_score(y_true, y_pred, labels=labels, average="weighted", zero_division=0)),
        "accuracy": 100.0 * float(accuracy_score(y_true, y_pred)),
        "macro_f1": 100.0 * float(f1_score(y_true, y_pred, labels=present, average="macro", zero_division=0)),
        "ua": 100.0 * float(recall_score(y_true, y_pred, labels=present, average="macro", zero_division=0)),
        "wa": 100.0 * float(accuracy_score(y_true, y_pred)),
        "per_class_f1": {name: 100.0 * float(per_class[i]) for i, name in enumerate(label_names)},
        "support": {name: int((y_true == i).sum()) for i, name in enumerate(label_names)},
        "confusion": confusion_matrix(y_true, y_pred, labels=labels).tolist(),
        "n": int(y_true.size),
    }


def majority_baseline(y_train: np.ndarray, y_test: np.ndarray, label_names: Sequence[str]) -> dict[str, Any]:
    """Metrics of always predicting the most frequent training class."""
    y_train = np.asarray(y_train)
    majority = int(np.bincount(y_train[y_train >= 0], minlength=len(label_names)).argmax())
    return compute_metrics(y_test, np.full_like(np.asarray(y_test), majority), label_names)


HEADLINE = ("weighted_f1", "accuracy", "macro_f1")
