"""The ``modality_attention`` report (DRKF): which modality the fusion CLS attended to.

Input: merged ``explain`` arrays of :class:`~merc.methods.drkf.model.DRKFMethod` —
``attention [N, 3]`` (mass of the CLS query on audio, text and special tokens in the last fusion
layer), ``attention_layers [N, layers, 3]``, ``probs [N, C]``, ``label [N]``, ``dominant [N]``.
Output: ``modality_attention.csv`` (one row per utterance), ``summary.json`` and, with
matplotlib, ``modality_attention.png`` (mean mass per class).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from merc.errors import MercError
from merc.io_utils import atomic_path, atomic_write_json, atomic_write_text

REQUIRED = ("label", "probs", "attention", "attention_layers")


def summarize_modality_attention(explanation: dict[str, Any], label_names: Sequence[str]) -> dict[str, Any]:
    """Aggregates of a merged ``modality_attention`` explanation (arrays, no files).

    Returns ``parts``, ``mean_attention [3]``, ``per_class_attention [C, 3]`` (by gold label),
    ``per_layer_attention [layers, 3]``, ``audio_dominant_share`` overall and ``per_class``, and
    ``accuracy`` on labelled utterances.
    """
    per_utt, info = explanation["per_utterance"], explanation.get("info", {})
    missing = [k for k in REQUIRED if k not in per_utt]
    if missing:
        raise MercError(f"modality_attention explanation lacks {', '.join(missing)}; "
                        "the method's explain() is incomplete")
    labels = np.asarray(per_utt["label"]).astype(np.int64)
    attn = np.asarray(per_utt["attention"], dtype=np.float64)  # (N, 3)
    layers = np.asarray(per_utt["attention_layers"], dtype=np.float64)  # (N, layers, 3)
    audio_dom = attn[:, 0] >= attn[:, 1]
    C = len(label_names)
    labelled = labels >= 0
    per_class = np.full((C, attn.shape[1]), np.nan)
    share = np.full(C, np.nan)
    for c in range(C):  # loop over classes, not utterances
        rows = labels == c
        if rows.any():
            per_class[c] = attn[rows].mean(0)
            share[c] = audio_dom[rows].mean()
    preds = np.asarray(per_utt["probs"]).argmax(1)
    return {
        "parts": list(info.get("parts", ("a", "t", "special"))), "label_names": list(label_names),
        "num_utterances": int(len(labels)), "mean_attention": attn.mean(0),
        "per_class_attention": per_class, "per_layer_attention": layers.mean(0),
        "audio_dominant_share": float(audio_dom.mean()), "audio_dominant_share_per_class": share,
        "accuracy": float((preds[labelled] == labels[labelled]).mean()) if labelled.any() else float("nan"),
    }


def write_modality_attention_report(explanation: dict[str, Any], label_names: Sequence[str], out_dir: str | Path,
                                    plots: bool = True) -> dict[str, Any]:
    """Write ``modality_attention.csv``, ``summary.json`` (and a figure) to ``out_dir``; return the summary."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    summary = summarize_modality_attention(explanation, label_names)
    per_utt = explanation["per_utterance"]
    attn = np.asarray(per_utt["attention"])
    n = attn.shape[0]
    preds = np.asarray(per_utt["probs"]).argmax(1)
    labels = np.asarray(per_utt["label"]).astype(np.int64)
    name = np.asarray(list(label_names) + [""], dtype=object)  # index -1 → ""
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["dialogue_id", "position", "label", "predicted", "attention_audio", "attention_text",
                     "attention_special", "dominant"])
    dialogue = per_utt.get("dialogue_id", np.full(n, ""))
    position = per_utt.get("position", np.arange(n))
    dominant = per_utt.get("dominant", np.where(attn[:, 0] >= attn[:, 1], "a", "t"))
    writer.writerows(zip(dialogue, position, name[labels], name[preds], *(np.round(attn[:, k], 6) for k in range(3)),
                         dominant))
    atomic_write_text(out / "modality_attention.csv", buf.getvalue())
    from merc.tables import TableDoc, write_data_dictionary

    write_data_dictionary(out, [TableDoc("modality_attention.csv", "one utterance", {
        "dialogue_id": "dialogue identifier", "position": "0-based position in its dialogue",
        "label": "gold emotion (empty if unlabelled)", "predicted": "predicted emotion",
        "attention_audio": "share of the fusion [CLS] attention on the audio tokens",
        "attention_text": "share on the text tokens", "attention_special": "share on [CLS]/[SEP]",
        "dominant": "modality with the larger share (a audio, t text)"})], "DRKF attention: data dictionary")
    atomic_write_json(out / "summary.json", _jsonable(summary))
    if plots:
        _plot(summary, out / "modality_attention.png")
    return summary


def _plot(summary: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    per_class = np.nan_to_num(summary["per_class_attention"])
    names = summary["label_names"]
    fig, ax = plt.subplots(figsize=(max(4.0, 0.8 * len(names) + 2), 3.2))
    bottom = np.zeros(len(names))
    for k, (part, color) in enumerate(zip(("audio", "text", "special"), ("tab:orange", "tab:blue", "0.7"))):
        ax.bar(names, per_class[:, k], bottom=bottom, label=part, color=color)
        bottom += per_class[:, k]
    ax.set_ylabel("CLS attention mass")
    ax.set_title("DRKF fusion: attention per modality (by gold class)")
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)


def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: _jsonable(v) for k, v in x.items()}
    if isinstance(x, np.ndarray):
        return [_jsonable(v) for v in x.tolist()] if x.ndim else _jsonable(x.item())
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, float) and not np.isfinite(x):
        return None
    return x
