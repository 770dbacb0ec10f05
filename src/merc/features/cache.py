"""On-disk feature cache: never recompute what is already there, resume after interruption.

Layout (``root`` is ``$MERC_CACHE_DIR/features`` or ``~/.cache/merc/features``)::

    root/<dataset>/<extractor>/<key>/settings.json        what the key stands for
    root/<dataset>/<extractor>/<key>/00000-<inputs>.npz   arrays of items 0..chunk_size-1
    root/<dataset>/<extractor>/<key>/00000-<inputs>.json  their count and SHA-256 checksum

``key`` hashes the dataset name, extractor name and the extractor's ``settings()`` (which hold
the model name and revision/weights hash), so changing any of them starts a fresh entry.
``<inputs>`` hashes the chunk's inputs (texts, or media path + size + mtime), so edited data is
re-extracted chunk by chunk. Each chunk is written atomically and only trusted when its
checksum matches; a corrupted or half-finished chunk is detected, reported and rebuilt. An
interrupted extraction resumes at the first missing chunk.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from merc.errors import MercError
from merc.features.base import Extractor
from merc.io_utils import atomic_path, atomic_write_json, load_json_file, read_bytes_bounded

log = logging.getLogger(__name__)

DEFAULT_CHUNK_SIZE = 256


def cache_root() -> Path:
    """``$MERC_CACHE_DIR`` if set, else ``~/.cache/merc`` (features/ and models/ live below it)."""
    base = os.environ.get("MERC_CACHE_DIR")
    return Path(base) if base else Path.home() / ".cache" / "merc"


def default_cache_dir() -> Path:
    """``$MERC_CACHE_DIR/features`` if set, else ``~/.cache/merc/features``."""
    return cache_root() / "features"


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "unnamed"


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def item_identity(item: Any, media: bool) -> str:
    """What identifies one input: a text itself, or a media path with its size and mtime."""
    if not media:
        return f"value:{item}"
    path = Path(str(item))
    try:
        st = path.stat()
    except OSError:
        return f"missing:{path}"
    return f"file:{path.resolve()}:{st.st_size}:{st.st_mtime_ns}"


def inputs_hash(items: Sequence[Any], media: bool) -> str:
    """Short hash of a chunk's inputs (texts, or media files by path, size and mtime)."""
    digest = hashlib.sha256()
    for item in items:
        digest.update(item_identity(item, media).encode("utf-8", "surrogatepass"))
        digest.update(b"\x00")
    return digest.hexdigest()[:16]


@dataclass
class CacheStats:
    """Chunks served from the cache, computed, and rebuilt after failing verification."""

    hits: int = 0
    computed: int = 0
    rebuilt: int = 0


class FeatureCache:
    """Chunked, checksummed feature store (see module docstring).

    Args:
        root: cache directory (``None``: :func:`default_cache_dir`).
        chunk_size: items per chunk file (the unit of resumption).
        progress: show a progress bar while extracting.
    """

    def __init__(self, root: str | Path | None = None, chunk_size: int = DEFAULT_CHUNK_SIZE,
                 progress: bool = True) -> None:
        self.root = Path(root) if root is not None else default_cache_dir()
        self.chunk_size = int(chunk_size)
        self.progress = progress
        self.stats = CacheStats()

    def entry_dir(self, dataset: str, extractor_name: str, settings: dict[str, Any]) -> Path:
        """Directory of the entry for ``dataset`` × ``extractor`` × ``settings``."""
        blob = json.dumps({"dataset": dataset, "extractor": extractor_name, "settings": settings},
                          sort_keys=True, default=str)
        return self.root / _slug(dataset) / _slug(extractor_name) / _sha256(blob.encode())[:16]

    def get_or_compute(self, dataset: str, extractor_name: str, extractor: Extractor,
                       items: Sequence[Any]) -> list[np.ndarray]:
        """Arrays of ``items`` (one per item): read from the cache, or extracted and stored."""
        settings = extractor.settings()
        entry = self.entry_dir(dataset, extractor_name, settings)
        if not (entry / "settings.json").is_file():
            atomic_write_json(entry / "settings.json", {"dataset": dataset, "extractor": extractor_name,
                                                         "modality": extractor.modality, "settings": settings})
        return run_chunks(items, self.chunk_size, lambda i, chunk: self._chunk(entry, i, chunk, extractor),
                          f"{extractor_name} [{dataset}]", self.progress)

    def _chunk(self, entry: Path, index: int, items: Sequence[Any], extractor: Extractor) -> list[np.ndarray]:
        stem = f"{index:05d}-{inputs_hash(items, media=extractor.modality != 't')}"
        data_path, meta_path = entry / f"{stem}.npz", entry / f"{stem}.json"
        if data_path.exists() or meta_path.exists():
            arrays = read_chunk(data_path, meta_path, len(items))
            if arrays is not None:
                self.stats.hits += 1
                return arrays
            log.warning("feature cache chunk %s is corrupted or incomplete; rebuilding it", data_path)
            self.stats.rebuilt += 1
        else:
            self.stats.computed += 1
        arrays = [np.asarray(a, dtype=np.float32) for a in extractor.extract(items)]
        write_chunk(data_path, meta_path, arrays)
        return arrays


def run_chunks(items: Sequence[Any], chunk_size: int, fn: Callable[[int, Sequence[Any]], list[np.ndarray]],
               description: str, progress: bool) -> list[np.ndarray]:
    """Apply ``fn(chunk_index, chunk)`` to consecutive chunks with a progress bar (plain lines when the
    output is not a terminal); concatenated results."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from merc.progress import chunk_lines

    out: list[np.ndarray] = []
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    starts = range(0, len(items), chunk_size)
    if progress:
        starts = chunk_lines(starts, description, len(starts))  # type: ignore[assignment]
    with Progress(*columns, disable=not progress, transient=True) as bar:
        task = bar.add_task(description, total=len(items))
        for index, start in enumerate(starts):
            chunk = items[start:start + chunk_size]
            out.extend(fn(index, chunk))
            bar.advance(task, len(chunk))
    return out


def write_chunk(data_path: Path, meta_path: Path, arrays: Sequence[np.ndarray]) -> None:
    """Store ``arrays`` (``[d]`` or ``[T, d]`` each) as one ``.npz`` plus its checksum sidecar."""
    frame = arrays[0].ndim == 2 if arrays else False
    lengths = np.asarray([a.shape[0] if frame else 1 for a in arrays], dtype=np.int64)
    data = np.concatenate([a if frame else a[None] for a in arrays], axis=0) if arrays else np.zeros((0, 0), np.float32)
    with atomic_path(data_path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, data=data.astype(np.float32), lengths=lengths, frame=np.asarray(frame))
    atomic_write_json(meta_path, {"count": len(arrays), "sha256": _sha256(data_path.read_bytes())})


def read_chunk(data_path: Path, meta_path: Path, expected: int) -> list[np.ndarray] | None:
    """The chunk's arrays, or ``None`` if it is missing, incomplete or fails its checksum."""
    try:
        meta = load_json_file(meta_path)
        raw = read_bytes_bounded(data_path)
        if meta.get("sha256") != _sha256(raw) or int(meta.get("count", -1)) != expected:
            return None
        with np.load(io.BytesIO(raw), allow_pickle=False) as npz:
            data, lengths, frame = npz["data"], npz["lengths"], bool(npz["frame"])
    except (OSError, ValueError, KeyError, AttributeError, TypeError, MercError):
        return None
    if lengths.shape != (expected,) or int(lengths.sum()) != data.shape[0]:
        return None
    parts = np.split(data, np.cumsum(lengths)[:-1]) if expected else []
    return [p if frame else p[0] for p in parts]
