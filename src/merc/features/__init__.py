"""Feature extraction from raw media (``merc features``). Importing registers the built-ins."""

from merc.features.base import Extractor

__all__ = ["Extractor"]
