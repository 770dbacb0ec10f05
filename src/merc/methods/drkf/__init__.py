"""DRKF — Decoupled Representations with Knowledge Fusion (METHODS.md §3; docs/drkf.md).

Importing registers ``drkf`` with :data:`merc.registry.METHODS`.
"""

from merc.methods.drkf.config import DRKFConfig
from merc.methods.drkf.model import DRKFMethod

__all__ = ["DRKFConfig", "DRKFMethod"]
