"""Result tables (mean ± std over seeds) in Markdown, CSV and JSON, and confusion plots."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from merc.io_utils import atomic_path, atomic_write_json, atomic_write_text
from merc.tables import TableDoc, write_data_dictionary

SUMMARY_METRICS = ("weighted_f1", "accuracy", "macro_f1")


def aggregate(per_seed: Sequence[dict[str, Any]], label_names: Sequence[str]) -> dict[str, Any]:
    """Mean and (sample, ddof=1) std over seeds of headline and per-class metrics.

    Args:
        per_seed: one metrics dict (from :func:`~merc.evaluation.metrics.compute_metrics`) per seed.

    Returns:
        ``{"n_seeds", metric: {"mean", "std", "values"}, "per_class_f1": {name: {...}}}``.
    """
    def stats(values: list[float]) -> dict[str, Any]:
        arr = np.asarray(values, dtype=np.float64)
        std = float(arr.std(ddof=1)) if arr.size > 1 else 0.0
        return {"mean": float(arr.mean()), "std": std, "values": [float(v) for v in arr]}

    out: dict[str, Any] = {"n_seeds": len(per_seed)}
    for key in SUMMARY_METRICS + ("ua", "wa"):
        if all(key in m for m in per_seed):
            out[key] = stats([m[key] for m in per_seed])
    out["per_class_f1"] = {name: stats([m["per_class_f1"][name] for m in per_seed]) for name in label_names}
    return out


def pm(entry: dict[str, Any]) -> str:
    """``"63.21 ± 0.84"``."""
    return f"{entry['mean']:.2f} ± {entry['std']:.2f}"


def results_markdown(title: str, summary: dict[str, dict[str, Any]], label_names: Sequence[str],
                     header_notes: Sequence[str] = ()) -> str:
    """A Markdown report: headline table per split, then per-class F1 of the test split."""
    lines = [f"# {title}", ""]
    lines += [f"- {note}" for note in header_notes]
    lines.append("")
    lines.append("| split | seeds | weighted F1 | accuracy | macro F1 |")
    lines.append("|---|---|---|---|---|")
    for split, agg in summary.items():
        lines.append(f"| {split} | {agg['n_seeds']} | " + " | ".join(pm(agg[k]) for k in SUMMARY_METRICS) + " |")
    split = "test" if "test" in summary else next(iter(summary))
    lines += ["", f"Per-class F1 ({split}):", "", "| class | F1 |", "|---|---|"]
    for name in label_names:
        lines.append(f"| {name} | {pm(summary[split]['per_class_f1'][name])} |")
    return "\n".join(lines) + "\n"


def results_csv(summary: dict[str, dict[str, Any]], label_names: Sequence[str]) -> str:
    """Long-format CSV: split, metric, mean, std, per-seed values."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["split", "metric", "mean", "std", "values"])
    for split, agg in summary.items():
        for key in SUMMARY_METRICS:
            writer.writerow([split, key, f"{agg[key]['mean']:.4f}", f"{agg[key]['std']:.4f}",
                             " ".join(f"{v:.4f}" for v in agg[key]["values"])])
        for name in label_names:
            e = agg["per_class_f1"][name]
            writer.writerow([split, f"f1_{name}", f"{e['mean']:.4f}", f"{e['std']:.4f}",
                             " ".join(f"{v:.4f}" for v in e["values"])])
    return buf.getvalue()


def write_results(out_dir: str | Path, title: str, summary: dict[str, dict[str, Any]],
                  label_names: Sequence[str], provenance: dict[str, Any], notes: Sequence[str] = ()) -> dict[str, Path]:
    """Write ``results.md``, ``results.csv`` and ``results.json`` into ``out_dir``."""
    out = Path(out_dir)
    paths = {"md": out / "results.md", "csv": out / "results.csv", "json": out / "results.json"}
    atomic_write_text(paths["md"], results_markdown(title, summary, label_names, notes))
    atomic_write_text(paths["csv"], results_csv(summary, label_names))
    atomic_write_json(paths["json"], {"title": title, "notes": list(notes), "provenance": provenance,
                                      "label_names": list(label_names), "summary": summary})
    write_data_dictionary(out, [TableDoc("results.csv", "one metric of one split over the seeds", {
        "split": "dev or test", "metric": "weighted_f1, accuracy, macro_f1, ... or f1_<class> (percent)",
        "mean": "mean over seeds", "std": "standard deviation over seeds", "values": "per-seed values, space-separated"})],
        "Results: data dictionary")
    return paths


def write_confusion(path_stem: str | Path, confusion: Sequence[Sequence[int]], label_names: Sequence[str],
                    title: str = "Confusion matrix") -> tuple[Path, Path]:
    """Write a confusion matrix as ``<stem>.csv`` and a row-normalised heatmap ``<stem>.png``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    stem = Path(path_stem)
    cm = np.asarray(confusion, dtype=np.int64)
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["gold\\predicted", *label_names])
    for name, row in zip(label_names, cm):
        writer.writerow([name, *row.tolist()])
    csv_path, png_path = stem.with_suffix(".csv"), stem.with_suffix(".png")
    atomic_write_text(csv_path, buf.getvalue())
    write_data_dictionary(csv_path.parent, [TableDoc(csv_path.name, "one gold class", {
        "gold\\predicted": "gold emotion", "<class>": "utterances of that gold class predicted as <class>"})])
    norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    size = 1.0 + 0.6 * len(label_names)
    fig, ax = plt.subplots(figsize=(size + 1.5, size))
    im = ax.imshow(norm, cmap="Blues", vmin=0.0, vmax=1.0)
    ax.set_xticks(range(len(label_names)), label_names, rotation=45, ha="right")
    ax.set_yticks(range(len(label_names)), label_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("gold")
    ax.set_title(title)
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=8,
                    color="white" if norm[i, j] > 0.5 else "black")
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="row share")
    fig.tight_layout()
    with atomic_path(png_path) as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    plt.close(fig)
    return csv_path, png_path
