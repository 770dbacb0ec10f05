"""The feature-extractor contract: raw media → per-utterance arrays.

An extractor turns a list of raw items (utterance texts for ``t``, audio file paths for ``a``,
video/image paths for ``v``) into one array per item:

- ``level = "utterance"``: each array is ``[d]`` (pooled);
- ``level = "frame"``: each array is ``[T_i, d]`` (tokens / frames; DRKF's input mode 1).

``settings()`` returns everything that changes the output (model name and revision, sample
rate, pooling, ...); together with the dataset and extractor name it keys the feature cache,
so a cached entry is reused only when it would be recomputed identically.

Extractors register with :data:`merc.registry.EXTRACTORS` and are created with
``EXTRACTORS.create(name, level="utterance", **options)``.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np


class Extractor:
    """Base class of feature extractors.

    Attributes:
        modality: ``"t"``, ``"a"`` or ``"v"``.
        level: ``"utterance"`` (one ``[d]`` vector per item) or ``"frame"`` (``[T, d]``).
    """

    modality: str = "t"
    level: str = "utterance"

    def settings(self) -> dict[str, Any]:
        """Everything that determines the output (keys the cache)."""
        raise NotImplementedError

    @property
    def dim(self) -> int:
        """Output feature dimension ``d``."""
        raise NotImplementedError

    def extract(self, items: Sequence[Any]) -> list[np.ndarray]:
        """One ``float32`` array per item (``[d]`` or ``[T, d]`` by ``level``)."""
        raise NotImplementedError
