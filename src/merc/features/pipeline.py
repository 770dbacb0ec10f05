"""Fill a dataset's features from its raw media: ``extract_features(dataset, extractors)``.

Text comes from ``Dialogue.texts``; audio and visual items from ``Dialogue.media["a"|"v"]``
(file paths). Utterance-level extractors fill ``Dialogue.features[m]`` (``[L, d]``);
frame-level ones fill ``Dialogue.sequences[m]`` (``L`` arrays ``[T_i, d]``) and, so that every
backbone can still use the modality, ``features[m]`` with the mean over frames.

What was used is recorded in ``dataset.meta["extractors"]`` as
``{m: {"name", "options", "settings", "dim", "level"}}``: the training engine saves it in the
model directory and :class:`merc.inference.Predictor` rebuilds the same extractors from it.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from merc.data.schema import MODALITIES, MODALITY_NAMES, DialogueDataset
from merc.errors import ConfigError, DataError
from merc.features.base import Extractor
from merc.features.cache import DEFAULT_CHUNK_SIZE, FeatureCache, run_chunks
from merc.registry import EXTRACTORS

def _default_visual() -> str:
    from merc.features.expression import fer_available

    return "fer" if fer_available() else "image-stats"


#: The extractor used for a modality when none is named (visual: ``fer`` facial expressions when
#: the ``visual`` extra is installed, else the ``image-stats`` fallback).
DEFAULT_EXTRACTORS: dict[str, str] = {"t": "minilm", "a": "librosa", "v": _default_visual()}


def build_extractor(name: str, **options: Any) -> Extractor:
    """``EXTRACTORS.create(name, **options)``, remembering name and options for the model directory."""
    extractor = EXTRACTORS.create(name, **options)
    extractor.spec = {"name": name, "options": dict(options)}  # type: ignore[attr-defined]
    return extractor


def build_extractors(specs: Mapping[str, str | Mapping[str, Any] | Extractor]) -> dict[str, Extractor]:
    """Modality → extractor from names, ``{"name": ..., "options": {...}}`` specs or instances."""
    out: dict[str, Extractor] = {}
    for m, spec in specs.items():
        if m not in MODALITIES:
            raise ConfigError(f"extractor modality must be one of {', '.join(MODALITIES)}, got '{m}'")
        if isinstance(spec, Extractor):
            extractor = spec
        elif isinstance(spec, str):
            extractor = build_extractor(spec)
        else:
            extractor = build_extractor(str(spec["name"]), **dict(spec.get("options") or {}))
        if extractor.modality != m:
            raise ConfigError(f"extractor '{extractor_name(extractor)}' reads {MODALITY_NAMES[extractor.modality]}, "
                              f"not {MODALITY_NAMES[m]}; choose another extractor for '{m}'")
        out[m] = extractor
    return out


def extractor_name(extractor: Extractor) -> str:
    spec = getattr(extractor, "spec", None)
    return spec["name"] if spec else getattr(extractor, "name", type(extractor).__name__)


def extractor_record(extractor: Extractor, dim: int) -> dict[str, Any]:
    """What the model directory keeps about an extractor (enough to rebuild and check it)."""
    spec = getattr(extractor, "spec", None) or {"name": extractor_name(extractor), "options": {"level": extractor.level}}
    return {"name": spec["name"], "options": dict(spec["options"]), "settings": extractor.settings(),
            "dim": int(dim), "level": extractor.level}


def modality_items(dataset: DialogueDataset, m: str) -> list[Any]:
    """All utterances' raw inputs for modality ``m``, dialogue by dialogue (flat, ``[N]``)."""
    items: list[Any] = []
    for d in dataset.dialogues:
        raw = d.texts if m == "t" else d.media.get(m)
        field = "text" if m == "t" else {"a": "audio", "v": "video"}[m]
        if raw is None:
            raise DataError(dataset.source or dataset.name, f"dialogue '{d.id}' has no {field} to extract "
                            f"{MODALITY_NAMES[m]} features from", field=field,
                            fix=f"add a '{field}' column, or drop the --{MODALITY_NAMES[m]} extractor")
        if len(raw) != len(d):
            raise DataError(dataset.source or dataset.name, f"dialogue '{d.id}' has {len(raw)} {field} entries "
                            f"for {len(d)} utterances", field=field)
        missing = [i for i, x in enumerate(raw) if m != "t" and (x is None or str(x) == "")]
        if missing:
            raise DataError(dataset.source or dataset.name, f"dialogue '{d.id}' utterance "
                            f"{d.utterance_ids[missing[0]]} has no {field} path", field=field,
                            fix="give every utterance a file, or drop this modality")
        items.extend(raw)
    return items


def extract_features(dataset: DialogueDataset, extractors: Mapping[str, Extractor],
                     cache_dir: str | Path | FeatureCache | None = None, use_cache: bool = True,
                     chunk_size: int = DEFAULT_CHUNK_SIZE, progress: bool = True) -> DialogueDataset:
    """A copy of ``dataset`` whose features (and sequences) are filled by ``extractors``.

    Args:
        dataset: dialogues with ``texts`` and/or ``media`` paths.
        extractors: modality → extractor (see :func:`build_extractors`).
        cache_dir: feature cache location, or a :class:`FeatureCache` (default cache dir if ``None``).
        use_cache: ``False`` extracts in memory without reading or writing any cache.
        chunk_size: utterances per cache chunk / extraction call.
        progress: show progress bars.

    Returns:
        A new :class:`DialogueDataset`; ``meta["extractors"]`` records what was used.
    """
    cache = cache_dir if isinstance(cache_dir, FeatureCache) else (
        FeatureCache(cache_dir, chunk_size=chunk_size, progress=progress) if use_cache else None)
    lengths = np.asarray([len(d) for d in dataset.dialogues], dtype=np.int64)
    bounds = np.concatenate([[0], np.cumsum(lengths)])
    features: dict[str, list[np.ndarray]] = {}
    sequences: dict[str, list[list[np.ndarray]]] = {}
    records = dict(dataset.meta.get("extractors") or {})
    for m in [m for m in MODALITIES if m in extractors]:
        extractor = extractors[m]
        items = modality_items(dataset, m)
        name = extractor_name(extractor)
        if cache is not None:
            arrays = cache.get_or_compute(dataset.name, name, extractor, items)
        else:
            arrays = run_chunks(items, chunk_size, lambda _i, chunk: extractor.extract(chunk),
                                f"{name} [{dataset.name}]", progress)
        arrays = [np.asarray(a, dtype=np.float32) for a in arrays]
        pooled = np.stack([a.mean(axis=0) if extractor.level == "frame" else a for a in arrays]) if arrays \
            else np.zeros((0, 0), np.float32)
        features[m] = [pooled[bounds[i]:bounds[i + 1]] for i in range(len(lengths))]
        if extractor.level == "frame":
            sequences[m] = [arrays[bounds[i]:bounds[i + 1]] for i in range(len(lengths))]
        records[m] = extractor_record(extractor, pooled.shape[1] if pooled.size else 0)
    dialogues = []
    for i, d in enumerate(dataset.dialogues):
        feats = {**d.features, **{m: f[i] for m, f in features.items()}}
        seqs = {**d.sequences, **{m: s[i] for m, s in sequences.items()}}
        dialogues.append(dataclasses.replace(d, features=feats, sequences=seqs))
    meta = {**dataset.meta, "extractors": records}
    return DialogueDataset(dataset.name, dialogues, list(dataset.label_names), dict(dataset.splits),
                           dataset.source, meta)
