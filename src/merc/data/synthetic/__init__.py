"""Synthetic conversations with planted multimodal evidence — the embedded default dataset.

Importing this package registers the presets ``synthetic-iemocap``, ``synthetic-small``,
``synthetic-context``, ``synthetic-subspace`` and ``synthetic-subspace-small`` in
:data:`merc.registry.DATASETS`. Documentation: ``docs/synthetic.md``.

Example::

    from merc.data.synthetic import SyntheticConfig, generate

    dataset = generate(SyntheticConfig(train_dialogues=50, inertia=0.8), seed=1)
    dataset.dialogues[0].meta["interaction"]  # 0 unique, 1 redundant, 2 synergy, 3 context-only
"""

from merc.data.synthetic.config import (CONTEXT_ONLY, INTERACTION_NAMES, MODALITY_BITS, REDUNDANT, SYNERGY, UNIQUE,
                                        SyntheticConfig)
from merc.data.synthetic.generator import generate, generate_with_planting
from merc.data.synthetic.presets import PRESETS, build_preset

__all__ = ["SyntheticConfig", "generate", "generate_with_planting", "PRESETS", "build_preset", "INTERACTION_NAMES",
           "MODALITY_BITS", "UNIQUE", "REDUNDANT", "SYNERGY", "CONTEXT_ONLY"]
