"""``merc.pipeline`` (this module: ``merc.pipelines``): one line from a conversation to per-utterance emotions.

::

    import merc

    classify = merc.pipeline("emotion", model="meld-text")     # bundled, offline, no training
    classify([("Ann", "We got the apartment!"), ("Bob", "No way! I'm so happy for you.")])
    # [{'dialogue_id': 'conversation', 'utterance_id': '0', 'speaker': 'Ann', 'text': 'We got the apartment!',
    #   'label': 'joy', 'score': 0.87, 'scores': {'neutral': 0.04, ..., 'anger': 0.05}}, ...]

A conversation is a list of ``(speaker, text)`` pairs, a list of strings (speakers ``A`` and
``B`` alternate), a list of utterance dicts (``dialogue_id``, ``speaker``, ``text``; several
dialogues allowed), a pandas DataFrame or a ``.csv``/``.jsonl`` path. ``scores`` holds every
class's probability (they sum to 1); ``label`` is the most probable class and ``score`` its
probability.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from merc.errors import ConfigError, DataError

TASKS = ("emotion",)
DEFAULT_DIALOGUE = "conversation"


def as_records(conversation: Any) -> Any:
    """A list of utterance dicts from pairs or strings; other inputs are passed on unchanged."""
    if isinstance(conversation, (str, Path)) or hasattr(conversation, "to_dict") or not isinstance(conversation, Sequence):
        return conversation
    items = list(conversation)
    if not items:
        raise DataError("<conversation>", "is empty", fix="give at least one utterance")
    if all(isinstance(x, str) for x in items):
        return [{"dialogue_id": DEFAULT_DIALOGUE, "speaker": "AB"[i % 2], "text": x} for i, x in enumerate(items)]
    if all(isinstance(x, (tuple, list)) and len(x) == 2 for x in items):
        return [{"dialogue_id": DEFAULT_DIALOGUE, "speaker": str(s), "text": str(t)} for s, t in items]
    if all(isinstance(x, dict) for x in items):
        return [{"dialogue_id": DEFAULT_DIALOGUE, **x} for x in items]
    raise DataError("<conversation>", "mixes item types", fix="give (speaker, text) pairs, strings or utterance dicts")


class EmotionPipeline:
    """A :class:`~merc.inference.Predictor` behind a call: ``pipe(conversation) -> list of dicts``."""

    def __init__(self, predictor: Any) -> None:
        self.predictor = predictor

    @property
    def labels(self) -> list[str]:
        return list(self.predictor.label_names)

    def __call__(self, conversation: Any) -> list[dict[str, Any]]:
        rows = self.predictor.predict(as_records(conversation))
        return [{"dialogue_id": r["dialogue_id"], "utterance_id": r["utterance_id"], "speaker": r["speaker"],
                 "text": r["text"], "label": r["label"], "score": r["confidence"], "scores": r["probabilities"]}
                for r in rows]


def pipeline(task: str = "emotion", model: str | Path = "meld-text", **kwargs: Any) -> EmotionPipeline:
    """A ready-to-call pipeline for ``task`` with ``model`` (a bundled name such as
    ``meld-text``, a model directory, or a Hub repository id when online). ``kwargs`` go to
    :meth:`merc.inference.Predictor.from_pretrained` (``batch_size``, ``cache_dir``, ...)."""
    if task not in TASKS:
        raise ConfigError(f"unknown pipeline task '{task}'; choose from: {', '.join(TASKS)}")
    from merc.inference import Predictor

    return EmotionPipeline(Predictor.from_pretrained(model, **kwargs))
