"""DnR — Divide and Refine (METHODS.md §1): a plug-in for every backbone.

- :mod:`~merc.methods.dnr.config`: :class:`DnRConfig`, every option with its default;
- :mod:`~merc.methods.dnr.decomposer`: the Divide network (u, r, s per modality) and its heads;
- :mod:`~merc.methods.dnr.divide_losses` / :mod:`~merc.methods.dnr.correlation`: the Divide losses;
- :mod:`~merc.methods.dnr.divide_stage`: stage 1 training (Lightning), plateau stopping;
- :mod:`~merc.methods.dnr.refine` / :mod:`~merc.methods.dnr.losses`: refined inputs, views, InfoNCE;
- :mod:`~merc.methods.dnr.method`: :class:`DnRMethod`, registered as ``dnr``.
"""

from merc.methods.dnr.config import DnRConfig
from merc.methods.dnr.decomposer import Components, Decomposer, DivideHeads
from merc.methods.dnr.method import DnRMethod

__all__ = ["Components", "Decomposer", "DivideHeads", "DnRConfig", "DnRMethod"]
