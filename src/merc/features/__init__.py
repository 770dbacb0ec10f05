"""Feature extraction from raw media (``merc features``). Importing registers the built-ins.

Extractors (``merc.EXTRACTORS``): ``minilm`` (default text, offline), ``mpnet`` (all-mpnet-base-v2,
offline from its weight packages), ``sentence-transformers`` (any text encoder by name),
``wordllama``; ``librosa`` (default audio), ``opensmile`` (optional extra); ``fer`` (default visual when the ``visual`` extra is installed: facial
expressions), ``image-stats`` (visual fallback). :func:`extract_features` fills a dataset through the
checksummed, resumable :class:`FeatureCache`.
"""

from merc.features import audio, expression, mpnet, text, visual  # noqa: F401  (registers the built-in extractors)
from merc.features.base import Extractor
from merc.features.cache import FeatureCache, default_cache_dir
from merc.features.pipeline import DEFAULT_EXTRACTORS, build_extractor, build_extractors, extract_features

__all__ = ["DEFAULT_EXTRACTORS", "Extractor", "FeatureCache", "build_extractor", "build_extractors",
           "default_cache_dir", "extract_features"]
