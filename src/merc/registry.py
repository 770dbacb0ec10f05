"""One registry module for everything pluggable: backbones, methods, datasets, extractors.

Modelled on timm's registry: small builder functions are registered with a decorator,
``create(name, **kwargs)`` builds one, ``list()`` names them, and an unknown name raises
with the valid choices.

Example::

    from merc.registry import BACKBONES

    @BACKBONES.register("my_backbone")
    class MyBackbone(Backbone): ...

    model = BACKBONES.create("my_backbone", input_dims={"t": 100}, num_classes=6)
"""

from __future__ import annotations

import difflib
import importlib
import inspect
from typing import Any, Callable, Generic, TypeVar

from merc.errors import MercError

T = TypeVar("T")

# Modules imported on first use of a registry, so that built-in entries are always present
# without importing heavy code at ``import merc`` time.
_BUILTIN_MODULES: dict[str, tuple[str, ...]] = {
    "backbone": ("merc.backbones",),
    "method": ("merc.methods",),
    "dataset": ("merc.data.catalog",),
    "extractor": ("merc.features",),
}


class Registry(Generic[T]):
    """Maps a name to a builder (a class or a function returning the object).

    Args:
        kind: what the registry holds, used in error messages ("backbone", "method", ...).
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, Callable[..., T]] = {}
        self._docs: dict[str, str] = {}
        self._loaded = False

    def _load_builtins(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        for module in _BUILTIN_MODULES.get(self.kind, ()):
            importlib.import_module(module)

    def register(self, name: str, doc: str | None = None) -> Callable[[Callable[..., T]], Callable[..., T]]:
        """Decorator registering ``builder`` under ``name``; re-registering a name is an error."""

        def decorator(builder: Callable[..., T]) -> Callable[..., T]:
            if name in self._entries and self._entries[name] is not builder:
                raise MercError(f"{self.kind} '{name}' is already registered; choose another name")
            self._entries[name] = builder
            summary = doc or (inspect.getdoc(builder) or "").split("\n")[0]
            self._docs[name] = summary
            return builder

        return decorator

    def get(self, name: str) -> Callable[..., T]:
        """The builder registered as ``name``; raises naming the valid choices otherwise."""
        self._load_builtins()
        if name not in self._entries:
            choices = ", ".join(sorted(self._entries)) or "(none registered)"
            close = difflib.get_close_matches(str(name), list(self._entries), n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]}?" if close else ""
            raise MercError(f"unknown {self.kind} '{name}'{hint or ';'} valid choices: {choices}")
        return self._entries[name]

    def create(self, name: str, **kwargs: Any) -> T:
        """Build ``name`` with keyword arguments; unknown keyword arguments are rejected."""
        builder = self.get(name)
        check_kwargs(builder, kwargs, f"{self.kind} '{name}'")
        return builder(**kwargs)

    def list(self) -> list[str]:
        """Sorted registered names."""
        self._load_builtins()
        return sorted(self._entries)

    def describe(self) -> dict[str, str]:
        """Name → one-line summary."""
        self._load_builtins()
        return {name: self._docs[name] for name in sorted(self._entries)}

    def __contains__(self, name: str) -> bool:
        self._load_builtins()
        return name in self._entries


def check_kwargs(builder: Callable[..., Any], kwargs: dict[str, Any], what: str) -> None:
    """Reject keyword arguments ``builder`` does not accept, naming the accepted ones."""
    target = builder.__init__ if inspect.isclass(builder) else builder
    params = inspect.signature(target).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    accepted = [n for n, p in params.items() if n != "self" and p.kind is not inspect.Parameter.VAR_POSITIONAL]
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown:
        raise MercError(f"{what} got unknown option(s) {', '.join(unknown)}; valid options: {', '.join(accepted)}")


BACKBONES: Registry[Any] = Registry("backbone")
METHODS: Registry[Any] = Registry("method")
DATASETS: Registry[Any] = Registry("dataset")
EXTRACTORS: Registry[Any] = Registry("extractor")
