"""Shared printing of registry listings (``merc backbones``, ``merc methods``)."""

from __future__ import annotations

from merc.registry import Registry


def print_registry(registry: Registry, defaults_kind: str, verbose: bool) -> int:
    """Print ``name  summary`` per entry; with ``verbose`` also its bundled default options."""
    from merc.config import bundled_defaults

    for name, doc in registry.describe().items():
        print(f"{name:16s} {doc}")
        if verbose:
            for key, value in bundled_defaults(defaults_kind, name).items():
                print(f"{'':16s}   {key}: {value}")
    return 0
