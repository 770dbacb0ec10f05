"""The missing-modality report: weighted F1 for every subset of a model's modalities.

What a practitioner without video (or audio, or text) gets from a trained model: for each of
the ``2^M − 1`` non-empty subsets, the absent modalities are replaced for the whole dialogue by
their training-mean stand-in (:mod:`merc.data.modality_subsets`) and the split is scored. All
subsets come from the same batched call as the interaction explanation
(:func:`merc.explain.interactions.collect_interactions`). The empty subset (every modality
absent: what the model predicts from conversation structure alone) is reported too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from merc.data.modality_subsets import subset_masks, subset_name
from merc.evaluation.metrics import compute_metrics
from merc.io_utils import atomic_write_json, atomic_write_text
from merc.tables import TableDoc, write_csv, write_data_dictionary

COLUMNS = {"present": "modalities present (t text, a audio, v visual; 'none': all absent)",
           "num_present": "how many modalities are present",
           "weighted_f1": "weighted F1 (%) over the labelled utterances of the split",
           "accuracy": "accuracy (%)", "macro_f1": "macro F1 (%) over the classes present",
           "delta_weighted_f1": "weighted F1 minus that with all modalities (points)",
           "n": "labelled utterances scored"}


def missing_modality_rows(log_probs: np.ndarray, labels: np.ndarray, modalities: Sequence[str],
                          label_names: Sequence[str]) -> list[dict[str, Any]]:
    """One row per subset, most modalities first.

    Shapes:
        - log_probs: ``[N, 2^M, C]`` (subset order of :func:`~merc.data.modality_subsets.subset_masks`)
        - labels: ``[N]`` (``-1`` = unlabelled, ignored)
    """
    masks = subset_masks(len(modalities)).tolist()
    preds = np.asarray(log_probs).argmax(-1)  # (N, 2^M)
    scored = []
    for k, present in enumerate(masks):
        m = compute_metrics(labels, preds[:, k], label_names)
        scored.append({"present": subset_name(present, modalities), "num_present": int(sum(present)),
                       "weighted_f1": m["weighted_f1"], "accuracy": m["accuracy"], "macro_f1": m["macro_f1"],
                       "n": m["n"]})
    full = scored[-1]["weighted_f1"]
    for row in scored:
        row["delta_weighted_f1"] = row["weighted_f1"] - full
    return sorted(scored, key=lambda r: (-r["num_present"], [modalities.index(c) for c in r["present"]
                                                             if c in modalities]))


def write_missing_modality_report(rows: Sequence[Mapping[str, Any]], out_dir: str | Path, title: str,
                                  plots: bool = True) -> dict[str, Path]:
    """``missing_modality.{md,csv,json,png}`` and the data dictionary in ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    keys = ["present", "num_present", "weighted_f1", "accuracy", "macro_f1", "delta_weighted_f1", "n"]
    paths = {"csv": write_csv(out / "missing_modality.csv", keys,
                              [[_cell(r[k]) for k in keys] for r in rows])}
    md = [f"# {title}", "", "| modalities present | weighted F1 | Δ vs all | accuracy | macro F1 | n |",
          "|---|---:|---:|---:|---:|---:|"]
    md += [f"| {r['present']} | {r['weighted_f1']:.2f} | {r['delta_weighted_f1']:+.2f} | {r['accuracy']:.2f} | "
           f"{r['macro_f1']:.2f} | {r['n']} |" for r in rows]
    md += ["", "Absent modalities are replaced for the whole dialogue by their training mean (the stand-in "
           "the model sees during modality-dropout training)."]
    paths["md"] = out / "missing_modality.md"
    atomic_write_text(paths["md"], "\n".join(md) + "\n")
    paths["json"] = out / "missing_modality.json"
    atomic_write_json(paths["json"], {"title": title, "rows": [dict(r) for r in rows]})
    write_data_dictionary(out, [TableDoc("missing_modality.csv", "one subset of the model's modalities", COLUMNS)])
    if plots:
        paths["png"] = plot_missing_modality({"this model": rows}, out / "missing_modality.png", title)
    return paths


def plot_missing_modality(results: Mapping[str, Sequence[Mapping[str, Any]]], path: Path,
                          title: str = "Weighted F1 by available modalities") -> Path:
    """Grouped bars: weighted F1 per subset, one bar colour per model (legend)."""
    from merc.explain.plots import plt, save_figure

    subsets = [r["present"] for r in next(iter(results.values()))]
    x = np.arange(len(subsets))
    width = 0.8 / max(1, len(results))
    fig, ax = plt.subplots(figsize=(2.0 + 0.5 * len(subsets) * max(1, len(results)) ** 0.5, 3.6))
    colours = plt.get_cmap("tab10" if len(results) <= 10 else "tab20")
    for j, (name, rows) in enumerate(results.items()):
        by = {r["present"]: r["weighted_f1"] for r in rows}
        ax.bar(x + (j - (len(results) - 1) / 2) * width, [by.get(s, np.nan) for s in subsets], width, label=name,
               color=colours(j % colours.N))
    ax.set_xticks(x, labels=subsets)
    ax.set_xlabel("modalities present (others replaced by their training mean)")
    ax.set_ylabel("weighted F1 (%)")
    ax.set_ylim(0, 100)
    ax.set_title(title)
    ax.legend(frameon=False, fontsize=7, ncol=2 if len(results) > 4 else 1)
    ax.spines[["top", "right"]].set_visible(False)
    return save_figure(fig, path)


def _cell(v: Any) -> Any:
    return f"{v:.4f}" if isinstance(v, float) else v
