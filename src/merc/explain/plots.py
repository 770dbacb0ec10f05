"""Figures of the ``components`` report (matplotlib, Agg backend, atomic saves)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from merc.io_utils import atomic_path  # noqa: E402

KIND_COLOURS = {"U": "#1f77b4", "R": "#2ca02c", "S": "#d62728"}


def save_figure(fig: plt.Figure, path: Path) -> Path:
    """Save ``fig`` as PNG atomically and close it."""
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=150, bbox_inches="tight", format="png")
    plt.close(fig)
    return path


def heatmap(values: np.ndarray, rows: Sequence[str], cols: Sequence[str], title: str, colorbar: str,
            path: Path, cmap: str = "viridis", fmt: str = "{:.2f}", center: bool = False,
            xlabel: str | None = None, ylabel: str | None = None) -> Path:
    """Annotated heatmap of ``values`` ``[R, K]`` (NaN cells left blank); the colour bar is its legend."""
    values = np.asarray(values, dtype=np.float64)
    fig, ax = plt.subplots(figsize=(1.0 + 0.75 * len(cols), 1.2 + 0.45 * len(rows)))
    finite = values[np.isfinite(values)]
    kwargs: dict[str, Any] = {}
    if center and finite.size:
        bound = float(np.abs(finite).max()) or 1.0
        kwargs = {"vmin": -bound, "vmax": bound}
    im = ax.imshow(np.ma.masked_invalid(values), cmap=cmap, aspect="auto", **kwargs)
    ax.set_xticks(range(len(cols)), labels=list(cols), rotation=45, ha="right")
    ax.set_yticks(range(len(rows)), labels=list(rows))
    if values.size <= 400:
        for (i, j), v in np.ndenumerate(values):
            if np.isfinite(v):  # text colour by the cell's luminance, readable on any colour map
                r, g, b, _ = im.cmap(im.norm(v))
                ax.text(j, i, fmt.format(v), ha="center", va="center", fontsize=7,
                        color="white" if 0.299 * r + 0.587 * g + 0.114 * b < 0.5 else "black")
    fig.colorbar(im, ax=ax, label=colorbar)
    if xlabel:
        ax.set_xlabel(xlabel)
    if ylabel:
        ax.set_ylabel(ylabel)
    ax.set_title(title)
    return save_figure(fig, path)


def component_bars(values: np.ndarray, names: Sequence[str], title: str, ylabel: str, path: Path,
                   reference: float | None = None) -> Path:
    """Bar chart of one value per component, coloured by kind (U/R/S)."""
    fig, ax = plt.subplots(figsize=(1.0 + 0.6 * len(names), 3.2))
    colours = [KIND_COLOURS.get(n.split(":")[-1], "grey") for n in names]
    ax.bar(range(len(names)), np.nan_to_num(np.asarray(values, dtype=np.float64)), color=colours)
    ax.set_xticks(range(len(names)), labels=list(names), rotation=45, ha="right")
    from matplotlib.patches import Patch

    handles = [Patch(color=c, label=k) for k, c in KIND_COLOURS.items()
               if any(n.split(":")[-1] == k for n in names)]
    if reference is not None:
        handles.append(ax.axhline(reference, color="black", linestyle="--", linewidth=1, label="chance"))
    if handles:
        ax.legend(handles=handles, frameon=False, fontsize=8)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.spines[["top", "right"]].set_visible(False)
    return save_figure(fig, path)


def modality_dominance_bars(shares: np.ndarray, classes: Sequence[str], modalities: Sequence[str],
                            path: Path) -> Path:
    """Stacked horizontal bars: share of the prediction sensitivity per modality, per emotion."""
    fig, ax = plt.subplots(figsize=(6, 1.0 + 0.4 * len(classes)))
    left = np.zeros(len(classes))
    colours = {"t": "#4c72b0", "a": "#dd8452", "v": "#55a868"}
    names = {"t": "text", "a": "audio", "v": "visual"}
    shares = np.nan_to_num(np.asarray(shares, dtype=np.float64))
    for j, m in enumerate(modalities):
        ax.barh(range(len(classes)), shares[:, j], left=left, color=colours.get(m), label=names.get(m, m))
        left += shares[:, j]
    ax.set_yticks(range(len(classes)), labels=list(classes))
    ax.set_xlim(0, 1)
    ax.set_xlabel("share of prediction sensitivity (KL)")
    ax.set_title("Modality dominance per emotion")
    ax.legend(ncol=len(modalities), loc="upper center", bbox_to_anchor=(0.5, -0.25), frameon=False)
    return save_figure(fig, path)


def plot_components_report(summary: dict[str, Any], out_dir: Path) -> list[Path]:
    """All figures of a components summary (see :func:`merc.explain.components_report.summarize_components`)."""
    out = Path(out_dir)
    names, classes, mods = summary["component_names"], summary["label_names"], summary["modalities"]
    paths = [
        heatmap(summary["per_class_kl"], classes, names, "Prediction sensitivity KL(P‖P without c)",
                "mean KL", out / "sensitivity_by_class.png"),
        heatmap(summary["per_class_gold_drop"], classes, names, "Drop in gold-class probability",
                "mean drop", out / "gold_drop_by_class.png", cmap="RdBu_r", center=True),
        heatmap(summary["pairwise_kl"], names, names, "Pairwise symmetric KL between components",
                "symmetric KL", out / "pairwise_kl.png", cmap="magma"),
        modality_dominance_bars(summary["modality_dominance"], classes, mods, out / "modality_dominance.png"),
        component_bars(summary["mean_kl"], names, "Mean prediction sensitivity", "KL", out / "sensitivity.png"),
        component_bars(summary["fisher_ratio"], names, "Class separability (Fisher ratio)",
                       "tr(S_B) / tr(S_W)", out / "fisher_ratio.png"),
        component_bars(summary["probe_accuracy"], names, "Linear-probe accuracy", "accuracy",
                       out / "probe_accuracy.png", reference=1.0 / max(1, len(classes))),
    ]
    return paths
