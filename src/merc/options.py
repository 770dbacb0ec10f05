"""Declared types of backbone and method options, used to coerce config/override values.

``model.backbone_options`` and ``model.method_options`` are free-form mappings in the
experiment config, so YAML decides their value types — and YAML 1.1 reads ``1e-4`` as a
string. :func:`coerce_model_options` converts every option to the type its builder declares
(the backbone's ``__init__`` annotations; a method's ``options_class`` dataclass and
``__init__``), with a one-line :class:`~merc.errors.ConfigError` when that is impossible.
Unknown backbone or method names fail here too, naming the valid choices.
"""

from __future__ import annotations

import inspect
import typing
from typing import Any

from merc.registry import BACKBONES, METHODS


def option_hints(kind: str, name: str) -> dict[str, Any]:
    """Option name → declared type for backbone (``kind="backbones"``) or method ``name``."""
    builder = (BACKBONES if kind == "backbones" else METHODS).get(name)
    hints: dict[str, Any] = {}
    for target in (getattr(builder, "options_class", None), builder.__init__ if inspect.isclass(builder) else builder):
        if target is None:
            continue
        try:
            hints.update(typing.get_type_hints(target))
        except (NameError, TypeError):  # unresolvable annotations: leave those options as given
            continue
    return hints


def coerce_options(options: dict[str, Any], hints: dict[str, Any], where: str) -> dict[str, Any]:
    """``options`` with each value converted to its declared type (undeclared ones unchanged)."""
    from merc.config import _coerce

    return {k: _coerce(v, hints[k], f"{where}.{k}") if k in hints else v for k, v in options.items()}


def coerce_model_options(backbone: str, method: str, backbone_options: dict[str, Any],
                         method_options: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Both option mappings coerced to their declared types (see module docs)."""
    method_hints = option_hints("methods", method)
    backbone_hints = option_hints("backbones", backbone)
    return (coerce_options(backbone_options, backbone_hints, "model.backbone_options"),
            coerce_options(method_options, method_hints, "model.method_options"))
