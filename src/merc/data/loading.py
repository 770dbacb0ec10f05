"""``load_dataset(cfg)``: from a :class:`~merc.config.DataConfig` to a validated dataset.

Steps: open (catalog name → ``DATASETS.create``; otherwise a file/folder → ``read_dataset``),
validate (repairing NaN/inf only when ``cfg.clean``), ensure a dev split (official, or a seeded
share of train), and keep the requested modalities (an absent one is an error naming the
available ones).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from merc.config import DataConfig
from merc.data.formats import read_dataset
from merc.data.schema import MODALITIES, DialogueDataset
from merc.data.splits import ensure_dev_split
from merc.data.validate import ValidationReport, validate_dataset
from merc.errors import DataError
from merc.registry import DATASETS

log = logging.getLogger(__name__)


def open_dataset(name_or_path: str, path: str | None = None, format: str | None = None,
                 options: dict[str, Any] | None = None) -> DialogueDataset:
    """The raw dataset (no validation, no dev carving) for a catalog name or a file/folder path.

    Args:
        name_or_path: a catalog name (``merc datasets``) or a path.
        path: file/folder for catalog entries that read local files.
        format: force a file format (paths only; see ``docs/formats.md``).
        options: builder options for catalog entries, reader options for paths.
    """
    opts = dict(options or {})
    if name_or_path in DATASETS:
        if format is not None:
            raise DataError(name_or_path, "format applies to file paths, not catalog names", field="format",
                            fix="drop data.format or give a file path as data.dataset")
        if path is not None:
            opts["path"] = path
        dataset = DATASETS.create(name_or_path, **opts)
        dataset.meta.setdefault("catalog_name", name_or_path)
        return dataset
    target = Path(path if path is not None else name_or_path).expanduser()
    if not target.exists():
        choices = ", ".join(DATASETS.list())
        raise DataError(name_or_path, "is neither a catalog dataset nor an existing path", field="data.dataset",
                        fix=f"use one of: {choices}; or a data file/folder")
    return read_dataset(target, format, **opts)


def prepare_dataset(dataset: DialogueDataset, clean: bool = False, dev_fraction: float = 0.1, dev_seed: int = 0,
                    require_features: bool = True) -> tuple[DialogueDataset, ValidationReport]:
    """Validate (optionally clean) and ensure a dev split; returns the dataset and the report."""
    report = validate_dataset(dataset, clean=clean, require_features=require_features)
    for change in report.changes:
        log.warning("%s: %s", dataset.name, change)
    if report.changes:
        dataset.meta["cleaning"] = list(report.changes)
    return ensure_dev_split(dataset, dev_fraction, dev_seed), report


def select_modalities(dataset: DialogueDataset, modalities: str) -> DialogueDataset:
    """Keep ``modalities`` (e.g. ``"ta"``); an absent one is a DataError naming the available ones."""
    wanted = [m for m in MODALITIES if m in set(modalities)]
    missing = [m for m in wanted if m not in dataset.modalities]
    if missing:
        available = "".join(dataset.modalities) or "none (transcripts only; run merc features)"
        raise DataError(dataset.source or dataset.name, f"has no modality {', '.join(missing)}",
                        field="data.modalities", fix=f"available modalities: {available}")
    if tuple(wanted) == dataset.modalities:
        return dataset
    return dataset.with_modalities(wanted)


def load_dataset(cfg: DataConfig, require_features: bool = True) -> DialogueDataset:
    """Open, validate, split and subset the dataset ``cfg`` describes.

    Args:
        cfg: the data section of an experiment config.
        require_features: refuse datasets without features (False for transcript-only use,
            e.g. before feature extraction; the modality subset is then skipped when the
            dataset has no features at all).
    """
    dataset = open_dataset(cfg.dataset, cfg.path, cfg.format, cfg.options)
    dataset, _ = prepare_dataset(dataset, cfg.clean, cfg.dev_fraction, cfg.dev_seed, require_features)
    if not require_features and not dataset.modalities:
        return dataset
    return select_modalities(dataset, cfg.modalities)
