"""Sub-commands of the ``merc`` CLI, one module each (see :mod:`merc.cli`)."""
