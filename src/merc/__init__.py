"""merc — multimodal emotion recognition in conversation.

DnR (Divide and Refine), DRKF (Decoupled Representations with Knowledge Fusion) and the
dialogue backbones they plug into (Late Fusion, MMGCN, DialogueGCN, MM-DFN).
"""

from __future__ import annotations

__version__ = "0.1.0"

from merc.errors import ConfigError, DataError, MercError
from merc.registry import BACKBONES, DATASETS, EXTRACTORS, METHODS

__all__ = ["BACKBONES", "DATASETS", "EXTRACTORS", "METHODS", "ConfigError", "DataError", "MercError", "__version__"]


def __getattr__(name: str):  # lazy: keeps ``import merc`` free of torch and model loading
    if name == "Predictor":
        from merc.inference import Predictor

        return Predictor
    if name == "pipeline":
        from merc.pipelines import pipeline

        return pipeline
    raise AttributeError(f"module 'merc' has no attribute '{name}'")
