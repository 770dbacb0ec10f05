"""Explanations: statistics (arrays in, arrays out), reports (CSV/JSON) and plots.

A method that offers explanations sets ``explanation_kind`` and implements ``explain(batch)``
returning ``{"per_utterance": {name: array with N rows}, "info": {...}}``, rows in
``Batch.labels_flat`` order. :func:`collect_explanations` runs it over a loader and
concatenates the rows; :data:`REPORTERS` maps an ``explanation_kind`` to the function writing
its report::

    reporter(explanation: dict, label_names: list[str], out_dir: Path) -> dict  # summary

Built-in: ``components`` (DnR). Other methods add their own entry, e.g.
``REPORTERS["modality_attention"] = write_attention_report``.

Every model, whatever its method, also gets the model-agnostic modality-interaction explanation
(:mod:`merc.explain.interactions`, report in :mod:`merc.explain.interactions_report`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np
from torch import Tensor

from merc.explain.components_report import write_components_report
from merc.explain.modality_attention import write_modality_attention_report

Reporter = Callable[..., dict[str, Any]]

#: explanation_kind → report writer
REPORTERS: dict[str, Reporter] = {"components": write_components_report,
                                  "modality_attention": write_modality_attention_report}


def merge_explanations(parts: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Concatenate the per-utterance arrays of several ``explain`` results (``info`` from the first)."""
    parts = list(parts)
    if not parts:
        return {"per_utterance": {}, "info": {}}
    keys = parts[0]["per_utterance"].keys()
    per_utt = {k: np.concatenate([_numpy(p["per_utterance"][k]) for p in parts], axis=0) for k in keys}
    return {"per_utterance": per_utt, "info": dict(parts[0].get("info", {}))}


def collect_explanations(method: Any, loader: Iterable[Any]) -> dict[str, Any]:
    """Run ``method.explain`` over every batch of ``loader`` and merge the results (one progress line
    per chunk of batches when the output is not a terminal)."""
    from merc.progress import chunk_lines

    total = len(loader) if hasattr(loader, "__len__") else 0
    return merge_explanations(method.explain(batch) for batch in chunk_lines(loader, "explain", total))


def write_explanations(method: Any, dialogues: Sequence[Any], modalities: Sequence[str], label_names: Sequence[str],
                       out_dir: str | Path, batch_size: int = 16) -> dict[str, Any]:
    """Explain ``method`` on ``dialogues`` and write its report to ``out_dir``; returns the summary.

    Raises :class:`~merc.errors.ConfigError` for methods without an explanation.
    """
    from merc.data.collate import make_loader
    from merc.errors import ConfigError, MercError

    kind = getattr(method, "explanation_kind", None)
    if kind is None:
        raise ConfigError(f"method {type(method).__name__} offers no explanation; train with a method that does "
                          f"(explanation kinds: {', '.join(sorted(REPORTERS))}), e.g. --method dnr")
    if kind not in REPORTERS:
        raise ConfigError(f"no report writer for explanation kind '{kind}'; known kinds: {', '.join(sorted(REPORTERS))}")
    if not dialogues:
        raise MercError("no dialogues to explain; choose a non-empty split")
    loader = make_loader(list(dialogues), list(modalities), batch_size, shuffle=False)
    return REPORTERS[kind](collect_explanations(method, loader), list(label_names), Path(out_dir))


def explain_to_dir(model_dir: str | Path, dataset: Any, split: str, out_dir: str | Path,
                   batch_size: int = 16) -> Path:
    """Explain the model directory ``model_dir`` on ``dataset``'s ``split`` (used by ``merc train --explain``):
    the modality-interaction explanation for every model, plus the method's own when it has one."""
    from merc.explain.interactions_report import explain_interactions
    from merc.training.model_dir import load_model_dir

    from merc.errors import ConfigError

    bundle = load_model_dir(model_dir)
    dialogues = dataset.split(split)
    try:
        explain_interactions(bundle.method, dialogues, bundle.modalities, bundle.label_names, out_dir,
                             bundle.stand_in, batch_size)
    except ConfigError:  # frame-level inputs have no stand-in; the method's own explanation still runs
        if getattr(bundle.method, "explanation_kind", None) is None:
            raise
    if getattr(bundle.method, "explanation_kind", None) is not None:
        write_explanations(bundle.method, dialogues, bundle.modalities, bundle.label_names, out_dir, batch_size)
    return Path(out_dir)


def _numpy(x: Any) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, Tensor) else np.asarray(x)


__all__ = ["REPORTERS", "collect_explanations", "explain_to_dir", "merge_explanations", "write_explanations"]
