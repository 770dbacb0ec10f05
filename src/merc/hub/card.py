"""The model card (``README.md``) of a Hugging Face style merc model directory.

Rendered from the directory's ``config.json`` so the card can never disagree with the model:
label set, training data and its licence, splits, seeds, metrics (mean ± std over seeds when
the card facts carry a summary, else the saved run's own), the feature spec and how to
reproduce the model.
"""

from __future__ import annotations

from typing import Any, Mapping

from merc.data.schema import MODALITY_NAMES

_METRICS = (("weighted_f1", "weighted F1"), ("accuracy", "accuracy"), ("macro_f1", "macro F1"))


def _front_matter(card: Mapping[str, Any]) -> list[str]:
    lines = ["---", "library_name: merc", "pipeline_tag: text-classification",
             "tags: [emotion-recognition, emotion-recognition-in-conversation]"]
    if card.get("licence"):
        lines.append(f"license: {str(card['licence']).lower()}")
    if card.get("hub_dataset"):
        lines.append(f"datasets: [{card['hub_dataset']}]")
    return lines + ["---", ""]


def _metrics_table(config: Mapping[str, Any]) -> list[str]:
    card = config.get("card") or {}
    summary = card.get("summary")
    rows = ["| split | " + " | ".join(name for _, name in _METRICS) + " |", "|---|" + "---|" * len(_METRICS)]
    if summary:
        for split in ("dev", "test"):
            if split in summary:
                cells = [f"{summary[split][k]['mean']:.2f} ± {summary[split][k]['std']:.2f}" for k, _ in _METRICS
                         if k in summary[split]]
                rows.append(f"| {split} (mean ± std, {summary[split].get('n_seeds', '?')} seeds) | " + " | ".join(cells) + " |")
    metrics = config.get("metrics") or {}
    for split in ("dev", "test"):
        if split in metrics:
            cells = [f"{metrics[split][k]:.2f}" for k, _ in _METRICS if k in metrics[split]]
            rows.append(f"| {split} (this model, seed {metrics.get('seed', '?')}) | " + " | ".join(cells) + " |")
    return rows if len(rows) > 2 else []


def _feature_lines(spec: Mapping[str, Mapping[str, Any]], dims: Mapping[str, int]) -> list[str]:
    lines = ["| modality | extractor | encoder | revision | pooling | level | dim |", "|---|---|---|---|---|---|---|"]
    for m, dim in dims.items():
        record = spec.get(m)
        if record is None:
            lines.append(f"| {MODALITY_NAMES.get(m, m)} | (supplied by the user) | – | – | – | – | {dim} |")
            continue
        s = record.get("settings") or {}
        lines.append(f"| {MODALITY_NAMES.get(m, m)} | `{record.get('name')}` | {s.get('model', s.get('config', '–'))} | "
                     f"{s.get('revision', s.get('version', '–'))} | {s.get('pooling') or '–'} | "
                     f"{record.get('level', 'utterance')} | {record.get('dim', dim)} |")
    return lines


def render_card(config: Mapping[str, Any]) -> str:
    """Markdown model card for a ``config.json`` dict (see :func:`merc.hub.save_pretrained`)."""
    card = dict(config.get("card") or {})
    experiment = config.get("experiment") or {}
    trainer, model = experiment.get("trainer") or {}, experiment.get("model") or {}
    info = config.get("info") or {}
    dims = (config.get("architecture") or {}).get("input_dims") or {}
    title = card.get("title") or f"merc {config.get('method')} / {config.get('backbone')}"
    lines = _front_matter(card) + [f"# {title}", ""]
    if card.get("description"):
        lines += [str(card["description"]), ""]
    lines += ["## Labels", "", ", ".join(f"`{x}`" for x in config.get("labels", [])) + " (index order)", ""]
    lines += ["## Training data", "",
              f"- dataset: {card.get('dataset') or info.get('dataset', 'unknown')}"
              + (f" ({info['dataset_source']})" if info.get("dataset_source") and not card.get("dataset") else ""),
              f"- licence of the data: {card.get('licence', 'see the dataset')}"]
    if card.get("splits"):
        lines.append("- splits: " + ", ".join(f"{k} {v}" for k, v in card["splits"].items()))
    seeds = card.get("seeds") or trainer.get("seeds")
    lines += [f"- seeds: {' '.join(map(str, seeds or []))}"
              + (f" (this model: seed {config['metrics']['seed']}, {card['selected_by']})"
                 if card.get("selected_by") and "seed" in (config.get("metrics") or {}) else ""),
              f"- model selection: {(config.get('metrics') or {}).get('selection', 'best dev weighted F1')}",
              f"- method `{config.get('method')}`, backbone `{config.get('backbone')}` "
              f"{model.get('backbone_options') or ''}; lr {trainer.get('lr')}, up to {trainer.get('max_epochs')} epochs, "
              f"patience {trainer.get('patience')}, batch {(experiment.get('data') or {}).get('batch_size')} dialogues", ""]
    table = _metrics_table(config)
    if table:
        lines += ["## Metrics (%)", ""] + table + [""]
    lines += ["## Feature spec", "", "Features given to this model must come from exactly this encoder; others "
              "are refused with a one-line error. The revision is the hub commit, or for a local or bundled encoder "
              "the SHA-256 (first 16 hex digits) of its weight files.", ""] + _feature_lines(config.get("feature_spec") or {}, dims) + [""]
    lines += ["## Use", "", "```python", "import merc", "",
              f"classify = merc.pipeline(\"emotion\", model=\"{card.get('name', 'PATH/TO/THIS/DIR')}\")",
              "classify([(\"Ann\", \"We got the apartment!\"), (\"Bob\", \"No way, that's amazing!\")])",
              "```", ""]
    if card.get("reproduce"):
        lines += ["## Reproduce", "", "```bash", str(card["reproduce"]), "```", ""]
    if card.get("notes"):
        lines += ["## Notes", ""] + [f"- {n}" for n in card["notes"]] + [""]
    lines += [f"merc {config.get('merc_version', '')}; weights in `model.safetensors`, everything needed to rebuild "
              "the model in `config.json`.", ""]
    return "\n".join(lines)
