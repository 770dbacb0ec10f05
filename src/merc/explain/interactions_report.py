"""The ``interactions`` report: modality-interaction patterns per utterance (CSV, JSON, figures).

Written by ``merc explain`` for every model (any backbone, any method) into
``<out>/interactions/``; see docs/explanations.md for every file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from merc.data.modality_subsets import subset_masks, subset_name
from merc.explain.interactions import (DEFAULT_RULES, PATTERNS, PLANTED_KINDS, agreement, collect_interactions, explain_sentence,
                                      name_patterns, planted_truth)
from merc.io_utils import atomic_write_json
from merc.tables import TableDoc, write_csv, write_data_dictionary

PATTERN_COLOURS = {"unique": "#1f77b4", "redundant": "#2ca02c", "synergy": "#d62728", "none": "#999999"}


def subset_names(modalities: Sequence[str]) -> list[str]:
    """Names of the ``2^M`` subsets in bit-mask order (``none``, ``t``, ``a``, ``ta``, ...)."""
    return [subset_name(row, modalities) for row in subset_masks(len(modalities)).tolist()]


def summarize_interactions(collected: Mapping[str, Any], modalities: Sequence[str], label_names: Sequence[str],
                           **rules: float) -> dict[str, Any]:
    """Patterns of every utterance plus aggregates (arrays; no files). ``rules`` go to :func:`name_patterns`."""
    mods = list(modalities)
    named = name_patterns(collected["values"], mods, **rules)
    labels = np.asarray(collected["label"]).astype(np.int64)
    pred = np.asarray(collected["predicted"])
    C = len(label_names)
    pattern = named["pattern"]
    by_class = np.asarray([[int(((labels == c) & (pattern == p)).sum()) for p in PATTERNS] for c in range(C)])
    summary: dict[str, Any] = {
        "modalities": mods, "subsets": subset_names(mods), "label_names": list(label_names),
        "num_utterances": int(len(labels)), "rules": {**DEFAULT_RULES, **rules},
        "stand_in": collected.get("stand_in", "training mean"),
        "pattern_counts": {p: int((pattern == p).sum()) for p in PATTERNS},
        "pattern_by_class": by_class, "named": named,
        "mean_dividends": {p: named["dividends"][pattern == p].mean(0) if (pattern == p).any()
                           else np.full(2 ** len(mods), np.nan) for p in PATTERNS},
    }
    truth = planted_truth(collected, mods)
    if truth is not None:
        kind, carriers = truth
        summary["truth"] = {"kind": kind, "carriers": carriers}
        summary["agreement"] = agreement(pattern, named["modalities"], named["shapley"], kind, carriers, mods,
                                         correct=(pred == labels) & (labels >= 0))
    return summary


PER_UTTERANCE_COLUMNS = {
    "dialogue_id": "dialogue identifier", "position": "0-based position of the utterance in its dialogue",
    "label": "gold emotion (empty if unlabelled)", "predicted": "emotion predicted with all modalities",
    "p_predicted": "its probability",
    "pattern": "evidence pattern: unique, redundant, synergy or none (rules in docs/explanations.md)",
    "pattern_modalities": "modalities of the pattern (t text, a audio, v visual), e.g. 'ta'",
    "gain_nats": "v(all) − v(none): log-probability of the predicted class gained by having the modalities",
    "interaction_nats": "gain − sum of main effects (negative: sub-additive/redundant; positive: super-additive/synergy)",
    "alone[<m>]": "share of the gain modality m recovers on its own, d({m}) / gain",
    "v[<subset>]": "log-probability of the predicted class with only <subset> present (others: training-mean stand-in)",
    "dividend[<subset>]": "Harsanyi dividend of <subset> (main effect for one modality, interaction for several)",
    "shapley[<m>]": "Shapley value of modality m (nats)",
    "explanation": "the numbers in words",
    "planted_kind": "synthetic data only: planted evidence kind (unique, redundant, synergy, context_only)",
    "planted_carriers": "synthetic data only: modalities carrying the planted evidence",
    "agrees": "synthetic data only: pattern equals planted_kind (yes/no; empty for context_only)",
}


def write_interaction_report(collected: Mapping[str, Any], modalities: Sequence[str], label_names: Sequence[str],
                             out_dir: str | Path, plots: bool = True) -> dict[str, Any]:
    """Write ``per_utterance.csv``, ``pattern_by_class.csv``, ``mean_dividends.csv``, (with truth)
    ``pattern_confusion.csv``, ``summary.json``, the data dictionary and figures; return the JSON summary."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    s = summarize_interactions(collected, modalities, label_names)
    mods, subsets, classes, named = s["modalities"], s["subsets"], list(label_names), s["named"]
    labels = np.asarray(collected["label"]).astype(np.int64)
    pred = np.asarray(collected["predicted"])
    values = np.asarray(collected["values"])
    p_pred = np.exp(values[:, -1])
    class_name = np.asarray(classes + [""], dtype=object)
    truth = s.get("truth")
    header = ["dialogue_id", "position", "label", "predicted", "p_predicted", "pattern", "pattern_modalities",
              "gain_nats", "interaction_nats", *[f"alone[{m}]" for m in mods], *[f"v[{n}]" for n in subsets],
              *[f"dividend[{n}]" for n in subsets[1:]], *[f"shapley[{m}]" for m in mods], "explanation"]
    if truth is not None:
        header += ["planted_kind", "planted_carriers", "agrees"]
    rows = []
    for i in range(len(labels)):  # file writing, not a hot path
        row = [collected["dialogue_id"][i], int(collected["position"][i]), class_name[labels[i]], classes[pred[i]],
               _f(p_pred[i]), named["pattern"][i], named["modalities"][i], _f(named["gain"][i]),
               _f(named["interaction"][i]), *map(_f, named["alone"][i]), *map(_f, values[i]),
               *map(_f, named["dividends"][i, 1:]), *map(_f, named["shapley"][i]),
               explain_sentence(named["pattern"][i], named["modalities"][i], named["gain"][i], named["alone"][i],
                                named["interaction"][i], mods)]
        if truth is not None:
            k = truth["kind"][i]
            row += [k, truth["carriers"][i], "" if k in ("", "context_only") else
                    ("yes" if named["pattern"][i] == k else "no")]
        rows.append(row)
    write_csv(out / "per_utterance.csv", header, rows)
    write_csv(out / "pattern_by_class.csv", ["class", *PATTERNS],
              [[c, *r] for c, r in zip(classes, s["pattern_by_class"].tolist())])
    write_csv(out / "mean_dividends.csv", ["pattern", "n", *[f"dividend[{n}]" for n in subsets[1:]]],
              [[p, s["pattern_counts"][p], *map(_f, s["mean_dividends"][p][1:])] for p in PATTERNS])
    docs = [TableDoc("per_utterance.csv", "one utterance (batch-major order of the split)",
                     {k: v for k, v in PER_UTTERANCE_COLUMNS.items()
                      if truth is not None or not k.startswith(("planted", "agrees"))}),
            TableDoc("pattern_by_class.csv", "one gold emotion class",
                     {"class": "gold emotion", **{p: f"utterances of that class whose pattern is {p}" for p in PATTERNS}}),
            TableDoc("mean_dividends.csv", "one evidence pattern",
                     {"pattern": "evidence pattern", "n": "utterances with that pattern",
                      "dividend[<subset>]": "mean Harsanyi dividend of <subset> over them (nats)"})]
    if truth is not None:
        confusion = s["agreement"]["confusion"]
        write_csv(out / "pattern_confusion.csv", ["planted_kind", *PATTERNS],
                  [[k, *[confusion[k][p] for p in PATTERNS]] for k in confusion])
        docs.append(TableDoc("pattern_confusion.csv", "one planted evidence kind (synthetic data)",
                             {"planted_kind": "kind planted by the generator",
                              **{p: f"utterances of that kind explained as {p}" for p in PATTERNS}}))
    write_data_dictionary(out, docs, "Modality-interaction explanation: data dictionary")
    summary = _jsonable({k: v for k, v in s.items() if k not in ("named", "truth")})
    if plots:
        summary["figures"] = [p.name for p in plot_interactions(s, out)]
    atomic_write_json(out / "summary.json", summary)
    return summary


def plot_interactions(s: Mapping[str, Any], out: Path) -> list[Path]:
    """``pattern_by_class.png``, ``mean_dividends.png`` and (with truth) ``pattern_confusion.png``."""
    from merc.explain.plots import heatmap, plt, save_figure

    classes, subsets = s["label_names"], s["subsets"]
    by_class = np.asarray(s["pattern_by_class"], dtype=np.float64)
    share = by_class / np.maximum(by_class.sum(1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(6, 1.0 + 0.4 * len(classes)))
    left = np.zeros(len(classes))
    for j, p in enumerate(PATTERNS):
        ax.barh(range(len(classes)), share[:, j], left=left, color=PATTERN_COLOURS[p], label=p)
        left += share[:, j]
    ax.set_yticks(range(len(classes)), labels=list(classes))
    ax.set_xlim(0, 1)
    ax.set_xlabel("share of the class's utterances")
    ax.set_title("Modality-interaction pattern per emotion")
    ax.legend(ncol=4, loc="upper center", bbox_to_anchor=(0.5, -0.25), frameon=False, title="pattern")
    paths = [save_figure(fig, out / "pattern_by_class.png")]

    fig, ax = plt.subplots(figsize=(1.5 + 0.7 * len(subsets), 3.4))
    width = 0.8 / len(PATTERNS)
    x = np.arange(len(subsets) - 1)
    for j, p in enumerate(PATTERNS):
        ax.bar(x + (j - 1.5) * width, np.nan_to_num(np.asarray(s["mean_dividends"][p])[1:]), width,
               color=PATTERN_COLOURS[p], label=f"{p} (n={s['pattern_counts'][p]})")
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xticks(x, labels=subsets[1:])
    ax.set_xlabel("modality subset (one modality: main effect; several: interaction)")
    ax.set_ylabel("mean Harsanyi dividend (nats)")
    ax.set_title("Mean dividends by named pattern")
    ax.legend(frameon=False, fontsize=8, title="named pattern")
    ax.spines[["top", "right"]].set_visible(False)
    paths.append(save_figure(fig, out / "mean_dividends.png"))

    if "agreement" in s:
        conf = s["agreement"]["confusion"]
        kinds = [k for k in PLANTED_KINDS if k in conf]
        counts = np.asarray([[conf[k][p] for p in PATTERNS] for k in kinds], dtype=np.float64)
        norm = counts / np.maximum(counts.sum(1, keepdims=True), 1)
        agree = s["agreement"]["kind_agreement"]
        paths.append(heatmap(norm, [f"{k} (n={int(c)})" for k, c in zip(kinds, counts.sum(1))], list(PATTERNS),
                             f"Explanation vs planted kind (agreement {100 * agree:.1f}%)",
                             "share of the planted kind", out / "pattern_confusion.png", cmap="Blues",
                             xlabel="named pattern", ylabel="planted kind"))
    return paths


def _f(v: Any) -> str:
    v = float(v)
    return "" if not np.isfinite(v) else f"{v:.6g}"


def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: _jsonable(v) for k, v in x.items()}
    if isinstance(x, np.ndarray):
        return _jsonable(x.tolist())
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, (float, np.floating)):
        return None if not np.isfinite(x) else float(x)
    return x.item() if isinstance(x, np.generic) else x


def explain_interactions(method: Any, dialogues: Sequence[Any], modalities: Sequence[str],
                         label_names: Sequence[str], out_dir: str | Path,
                         stand_in: Mapping[str, Any] | None = None, batch_size: int = 16,
                         plots: bool = True) -> dict[str, Any]:
    """Interaction explanation of ``method`` on ``dialogues`` into ``out_dir/interactions`` and, when
    the dialogues are labelled, the missing-modality report into ``out_dir``; returns the summary
    (with ``missing_modality`` rows).

    Raises :class:`~merc.errors.ConfigError` (nothing written) for models that read a modality
    from frame-level sequences, which have no stand-in (DRKF ``input_mode=frames``)."""
    from merc.data.collate import make_loader
    from merc.data.modality_subsets import resolve_stand_in
    from merc.errors import MercError
    from merc.evaluation.missing_modality import missing_modality_rows, write_missing_modality_report

    if not dialogues:
        raise MercError("no dialogues to explain; choose a non-empty split")
    mods = list(modalities)
    stand, source = resolve_stand_in(stand_in, dialogues, mods)
    loader = make_loader(list(dialogues), mods, batch_size, shuffle=False)
    collected = collect_interactions(method, loader, stand, mods, "utterance", dialogue_scope_too=True)
    collected["stand_in"] = source
    summary = write_interaction_report(collected, mods, label_names, Path(out_dir) / "interactions", plots)
    if (np.asarray(collected["label"]) >= 0).any():
        rows = missing_modality_rows(collected["dialogue_log_probs"], np.asarray(collected["label"]), mods,
                                     label_names)
        write_missing_modality_report(rows, out_dir, "Weighted F1 by available modalities", plots)
        summary["missing_modality"] = rows
    return summary


def interaction_rows(method: Any, batch: Any, stand_in: Mapping[str, Any], modalities: Sequence[str]) -> list[dict[str, Any]]:
    """Per-utterance interaction explanations of one batch as JSON-ready dicts (``merc predict``, Predictor).

    Each dict (``{"pattern": None, "unavailable": reason}`` for models reading frame-level
    sequences): ``pattern``, ``modalities``, ``gain_nats``, ``interaction_nats``, ``alone`` {m: share},
    ``shapley`` {m: nats}, ``dividends`` {subset: nats}, ``log_prob`` {subset: v(S)} and ``explanation``
    (the numbers in words).
    """
    from merc.data.modality_subsets import subset_log_probs
    from merc.errors import ConfigError

    mods = list(modalities)
    try:
        lp = subset_log_probs(method, batch, stand_in, mods, "utterance").permute(1, 0, 2)  # (N, 2^M, C)
    except ConfigError as exc:  # frame-level inputs: no stand-in, no subsets
        return [{"pattern": None, "unavailable": str(exc)} for _ in range(batch.num_utterances)]
    values = lp.gather(2, lp[:, -1].argmax(-1)[:, None, None].expand(-1, lp.shape[1], 1))[..., 0].cpu().numpy()
    named = name_patterns(values, mods)
    names = subset_names(mods)
    out = []
    for i in range(values.shape[0]):  # JSON rows, not a hot path
        out.append({"pattern": named["pattern"][i], "modalities": named["modalities"][i],
                    "gain_nats": round(float(named["gain"][i]), 6),
                    "interaction_nats": round(float(named["interaction"][i]), 6),
                    "alone": {m: round(float(a), 6) for m, a in zip(mods, named["alone"][i])},
                    "shapley": {m: round(float(a), 6) for m, a in zip(mods, named["shapley"][i])},
                    "dividends": {n: round(float(d), 6) for n, d in zip(names[1:], named["dividends"][i, 1:])},
                    "log_prob": {n: round(float(v), 6) for n, v in zip(names, values[i])},
                    "explanation": explain_sentence(named["pattern"][i], named["modalities"][i], named["gain"][i],
                                                    named["alone"][i], named["interaction"][i], mods)})
    return out
