"""Dialogue backbones (``--backbone``). Importing this package registers the built-ins.

The contract every backbone follows is documented in :mod:`merc.backbones.base`.
"""

from merc.backbones import late_fusion  # noqa: F401
from merc.backbones import bc_lstm, dialogue_gcn, mm_dfn, mmgcn  # noqa: F401
from merc.backbones.base import Backbone, BackboneOutput

__all__ = ["Backbone", "BackboneOutput"]
