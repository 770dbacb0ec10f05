"""The ``components`` report (DnR): CSV/JSON tables and figures from merged explanation arrays."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from merc.errors import MercError
from merc.explain import components as stats
from merc.io_utils import atomic_write_json
from merc.tables import META_COLUMNS, TableDoc, readable_meta, write_csv, write_data_dictionary

REQUIRED = ("label", "probs", "kl", "gold_drop", "components")


def summarize_components(explanation: dict[str, Any], label_names: Sequence[str],
                         probe_folds: int = 3) -> dict[str, Any]:
    """All aggregate statistics of a merged ``components`` explanation (arrays, no files).

    Returns a dict with ``component_names``, ``modalities``, ``per_class_kl`` ``[C, K]``,
    ``per_class_gold_drop`` ``[C, K]``, ``class_counts`` ``[C]``, ``pairwise_kl`` ``[K, K]``,
    ``modality_dominance`` ``[C, M]``, ``mean_kl`` / ``mean_gold_drop`` / ``fisher_ratio`` /
    ``probe_accuracy`` ``[K]``, ``accuracy``, with kind-wide removals (``kind_kl``)
    ``mean_kind_kl`` ``[3]`` and ``per_class_kind_kl`` ``[C, 3]``, and, when the data plants it,
    ``interaction_agreement`` and ``carrier_agreement``.
    """
    per_utt, info = explanation["per_utterance"], explanation["info"]
    missing = [k for k in REQUIRED if k not in per_utt]
    if missing:
        raise MercError(f"components explanation lacks {', '.join(missing)}; the method's explain() is incomplete")
    names, mods = list(info["component_names"]), list(info["modalities"])
    labels = np.asarray(per_utt["label"]).astype(np.int64)
    kl, drop, comps = per_utt["kl"], per_utt["gold_drop"], per_utt["components"]
    C = len(label_names)
    labelled = labels >= 0
    summary: dict[str, Any] = {
        "component_names": names, "modalities": mods, "label_names": list(label_names),
        "num_utterances": int(len(labels)), "num_labelled": int(labelled.sum()),
        "class_counts": np.bincount(labels[labelled], minlength=C)[:C],
        "accuracy": float((per_utt["probs"].argmax(1)[labelled] == labels[labelled]).mean()) if labelled.any()
        else float("nan"),
        "mean_kl": kl.mean(0), "mean_gold_drop": np.nanmean(drop[labelled], 0) if labelled.any() else
        np.full(len(names), np.nan),
        "per_class_kl": stats.per_class_mean(kl, labels, C),
        "per_class_gold_drop": stats.per_class_mean(drop, labels, C),
        "modality_dominance": stats.modality_dominance(kl, labels, names, mods, C),
        "pairwise_kl": stats.pairwise_symmetric_kl(comps, float(info.get("explain_tau", 1.0))),
        "fisher_ratio": np.asarray([stats.fisher_ratio(comps[:, k], labels) for k in range(len(names))]),
        "probe_accuracy": np.asarray([stats.probe_accuracy(comps[:, k], labels, probe_folds)
                                      for k in range(len(names))]),
    }
    kind_kl = per_utt.get("kind_kl")
    if kind_kl is not None:
        summary["kind_names"] = list("URS")
        summary["mean_kind_kl"] = kind_kl.mean(0)
        summary["per_class_kind_kl"] = stats.per_class_mean(kind_kl, labels, C)
    if "meta:interaction" in per_utt:
        summary["interaction_agreement"] = stats.interaction_agreement(kl, names, per_utt["meta:interaction"], kind_kl)
        if "meta:evidence_mask" in per_utt:
            summary["carrier_agreement"] = stats.carrier_agreement(kl, names, mods, per_utt["meta:interaction"],
                                                                   per_utt["meta:evidence_mask"])
    if "shapley_kind" in per_utt:
        kinds = list(info["shapley_kind_names"])
        summary["shapley_kind_names"] = kinds
        summary["mean_shapley_kind"] = per_utt["shapley_kind"].mean(0)
        summary["mean_shapley_modality"] = per_utt["shapley_modality"].mean(0)
        if "meta:interaction" in per_utt:
            summary["interaction_agreement_shapley"] = stats.kind_agreement(per_utt["shapley_kind"], kinds,
                                                                            per_utt["meta:interaction"])
            if "meta:evidence_mask" in per_utt:
                summary["carrier_agreement_shapley"] = stats.carrier_agreement_of(
                    per_utt["shapley_modality"], mods, per_utt["meta:interaction"], per_utt["meta:evidence_mask"])
    return summary


def write_components_report(explanation: dict[str, Any], label_names: Sequence[str], out_dir: str | Path,
                            plots: bool = True) -> dict[str, Any]:
    """Write the tables, ``summary.json`` and figures of a ``components`` explanation to ``out_dir``.

    Files: ``per_utterance.csv``, ``per_class_sensitivity.csv``, ``per_class_gold_drop.csv``,
    ``per_class_kind_sensitivity.csv`` (when kind-wide removals were computed),
    ``pairwise_kl.csv``, ``modality_dominance.csv``, ``component_quality.csv``, ``summary.json``
    and (with ``plots``) PNG figures. Returns the JSON-ready summary.
    """
    out = Path(out_dir)
    s = summarize_components(explanation, label_names)
    names, mods, classes = s["component_names"], s["modalities"], list(label_names)
    per_utt = explanation["per_utterance"]
    write_csv(out / "per_utterance.csv", *_per_utterance_rows(per_utt, names, classes))
    class_header = ["class", "n", *names]
    for key, file in (("per_class_kl", "per_class_sensitivity.csv"), ("per_class_gold_drop", "per_class_gold_drop.csv")):
        write_csv(out / file, class_header, [[c, int(n), *_fmt(row)] for c, n, row in
                                              zip(classes, s["class_counts"], s[key])])
    if "per_class_kind_kl" in s:
        write_csv(out / "per_class_kind_sensitivity.csv", ["class", "n", *s["kind_names"]],
                   [[c, int(n), *_fmt(row)] for c, n, row in zip(classes, s["class_counts"], s["per_class_kind_kl"])])
    write_csv(out / "pairwise_kl.csv", ["component", *names], [[n, *_fmt(row)] for n, row in zip(names, s["pairwise_kl"])])
    write_csv(out / "modality_dominance.csv", ["class", *mods],
               [[c, *_fmt(row)] for c, row in zip(classes, s["modality_dominance"])])
    write_csv(out / "component_quality.csv",
               ["component", "mean_kl", "mean_gold_drop", "fisher_ratio", "probe_accuracy"],
               [[n, *_fmt([a, b, c, d])] for n, a, b, c, d in
                zip(names, s["mean_kl"], s["mean_gold_drop"], s["fisher_ratio"], s["probe_accuracy"])])
    write_data_dictionary(out, component_table_docs(per_utt, names, mods), "Explanation tables: data dictionary")
    summary = _jsonable(s)
    atomic_write_json(out / "summary.json", summary)
    if plots:
        from merc.explain.plots import plot_components_report

        summary["figures"] = [p.name for p in plot_components_report(s, out)]
    return summary


def component_table_docs(per_utt: dict[str, Any], names: list[str], mods: list[str]) -> list[TableDoc]:
    """Data dictionary entries of the components report's tables."""
    meta = {k[5:]: META_COLUMNS.get(k[5:], "per-utterance meta of the data") for k in sorted(per_utt)
            if k.startswith("meta:")}
    by_class = {"class": "gold emotion", "n": "utterances of that class"}
    kinds = "components are <modality>:<kind>, kind U unique, R redundant, S synergy"
    return [
        TableDoc("per_utterance.csv", "one utterance", {
            "dialogue_id": "dialogue identifier", "position": "0-based position in its dialogue",
            "label": "gold emotion (empty if unlabelled)", "predicted": "predicted emotion",
            "p_predicted": "its probability",
            "kl[<component>]": f"KL(P_full ‖ P without the component) ({kinds})",
            "gold_drop[<component>]": "P_full(gold) − P_without(gold)",
            "kind_kl[<U|R|S>]": "KL(P_full ‖ P without that kind in every modality)",
            "shapley[<kind or modality>]": "on-distribution Shapley attribution over kinds, then modalities "
                                            "(when computed; docs/explanations.md)", **meta}),
        TableDoc("per_class_sensitivity.csv", "one gold class", {**by_class, "<component>": "mean kl[component]"}),
        TableDoc("per_class_gold_drop.csv", "one gold class", {**by_class, "<component>": "mean gold_drop[component]"}),
        TableDoc("per_class_kind_sensitivity.csv", "one gold class", {**by_class, "U, R, S": "mean kind_kl[kind]"}),
        TableDoc("pairwise_kl.csv", "one component", {"component": "row component",
                                                      "<component>": "mean symmetric KL between the two"}),
        TableDoc("modality_dominance.csv", "one gold class",
                 {"class": "gold emotion", **{m: f"mean share of the sensitivity carried by {m}" for m in mods}}),
        TableDoc("component_quality.csv", "one component", {
            "component": kinds, "mean_kl": "mean kl", "mean_gold_drop": "mean gold drop",
            "fisher_ratio": "tr(S_B)/tr(S_W) of the component vectors w.r.t. gold classes",
            "probe_accuracy": "3-fold linear-probe accuracy predicting the gold class"}),
    ]


def _per_utterance_rows(per_utt: dict[str, Any], names: list[str], classes: list[str]) -> tuple[list[str], list[list[Any]]]:
    labels = np.asarray(per_utt["label"]).astype(np.int64)
    probs = per_utt["probs"]
    pred = probs.argmax(1)
    meta_keys = sorted(k for k in per_utt if k.startswith("meta:"))
    kind_kl = per_utt.get("kind_kl")
    header = ["dialogue_id", "position", "label", "predicted", "p_predicted",
              *[f"kl[{n}]" for n in names], *[f"gold_drop[{n}]" for n in names],
              *([f"kind_kl[{k}]" for k in "URS"] if kind_kl is not None else []), *_shapley_header(per_utt, names),
              *[k[5:] for k in meta_keys]]
    shapley = np.concatenate([per_utt["shapley_kind"], per_utt["shapley_modality"]], axis=1) \
        if "shapley_kind" in per_utt else None
    dialogue = per_utt.get("dialogue_id", np.full(len(labels), ""))
    position = per_utt.get("position", np.arange(len(labels)))
    rows = []
    for i in range(len(labels)):  # file writing, not a training hot path
        rows.append([dialogue[i], int(position[i]), classes[labels[i]] if labels[i] >= 0 else "",
                     classes[pred[i]], f"{probs[i, pred[i]]:.6g}", *_fmt(per_utt["kl"][i]),
                     *_fmt(per_utt["gold_drop"][i]), *(_fmt(kind_kl[i]) if kind_kl is not None else []),
                     *(_fmt(shapley[i]) if shapley is not None else []),
                     *[readable_meta(k[5:], per_utt[k][i]) for k in meta_keys]])
    return header, rows


def _shapley_header(per_utt: dict[str, Any], names: list[str]) -> list[str]:
    """Per-utterance CSV columns of the Shapley attribution: ``shapley[U]`` … then ``shapley[t]`` …"""
    if "shapley_kind" not in per_utt:
        return []
    kinds = ["U", "R", "S", "X"][:per_utt["shapley_kind"].shape[1]]  # merc.methods.dnr.attribution.kind_players
    mods = list(dict.fromkeys(n.split(":")[0] for n in names))
    return [f"shapley[{k}]" for k in kinds] + [f"shapley[{m}]" for m in mods]


def _fmt(values: Any) -> list[str]:
    return ["" if not np.isfinite(v) else f"{float(v):.6g}" for v in np.asarray(values, dtype=np.float64)]


def _jsonable(summary: dict[str, Any]) -> dict[str, Any]:
    def conv(v: Any) -> Any:
        if isinstance(v, np.ndarray):
            return [conv(x) for x in v.tolist()] if v.ndim else conv(v.item())
        if isinstance(v, list):
            return [conv(x) for x in v]
        if isinstance(v, dict):
            return {k: conv(x) for k, x in v.items()}
        if isinstance(v, (float, np.floating)):
            return None if not np.isfinite(v) else float(v)
        return v.item() if isinstance(v, np.generic) else v

    return {k: conv(v) for k, v in summary.items()}
