"""``merc serve``: a REST API and a web page for a trained model (FastAPI + uvicorn, offline).

    from merc.serve import create_app, load_predictor
    predictor, name = load_predictor("runs/meld/seed_0")
    app = create_app(predictor, name)          # any ASGI server; `merc serve` uses uvicorn

See docs/serve.md for the endpoints, limits and the page.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

from merc.errors import MercError


def load_predictor(model: str | Path, **options: Any) -> tuple[Any, str]:
    """A :class:`merc.inference.Predictor` and a display name for ``model``: a model directory,
    or the name of a ready model when ``Predictor.from_pretrained`` exists (the ready-model
    registry) — this is the one place names are resolved."""
    from merc.inference import Predictor

    path = Path(model)
    if path.is_dir():
        resolved = path.resolve()  # runs/meld/seed_0 → "meld/seed_0"
        name = f"{resolved.parent.name}/{resolved.name}" if resolved.name.startswith("seed") else resolved.name
        return Predictor.from_dir(path, **options), name
    from_pretrained = getattr(Predictor, "from_pretrained", None)
    if from_pretrained is not None and not any(sep in str(model) for sep in ("/", "\\")):
        params = inspect.signature(from_pretrained).parameters.values()
        takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params)
        accepted = {k: v for k, v in options.items() if takes_any or k in {p.name for p in params}}
        return from_pretrained(str(model), **accepted), str(model)
    raise MercError(f"{model}: not a model directory" + ("" if from_pretrained is None else " nor a ready model name")
                    + "; pass the directory written by 'merc train' (e.g. runs/x/seed_0)")


def create_app(*args: Any, **kwargs: Any) -> Any:
    """:func:`merc.serve.app.create_app` (imported lazily: it needs the ``serve`` extra)."""
    from merc.serve.app import create_app as build

    return build(*args, **kwargs)
