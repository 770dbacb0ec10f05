"""The ``merc serve`` ASGI application (FastAPI): REST API + the page, one process, offline.

Endpoints:

- ``POST /predict`` — a conversation as JSON → per utterance the label, every class score and
  the explanation dict exactly as :meth:`merc.inference.Predictor.predict` returns it;
  concurrent requests are micro-batched (:mod:`merc.serve.batching`);
- ``GET /health`` — liveness and counters; ``GET /model`` — the model card, feature spec, labels
  and limits; ``GET /docs`` — OpenAPI (Swagger UI served from the ``swagger-ui-bundle`` wheel,
  no CDN); ``GET /`` — the page (``merc/serve/static``).

Limits (:class:`Limits`) answer with a 4xx and a JSON body ``{"error": {"code", "message",
"field"}}``. Requests never name files: media paths (``audio``/``video``) are refused; media
travel inline (base64 in ``media``, written to server-chosen temporary files for the model's
extractors) or as feature numbers (``features``).
"""

from __future__ import annotations

import logging
import tempfile
import unicodedata
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path
from typing import Any, AsyncIterator, Literal

import numpy as np

from merc.data.schema import DialogueDataset
from merc.errors import MercError
from merc.inference import Predictor, dataset_from_records
from merc.serve.batching import MicroBatcher

log = logging.getLogger(__name__)

try:
    from fastapi import FastAPI, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
    from fastapi.staticfiles import StaticFiles
    from pydantic import BaseModel, ConfigDict, Field, model_validator
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise MercError("merc serve needs the serve extra: pip install 'merc[serve]'") from exc


@dataclass(frozen=True)
class Limits:
    """Request limits (each enforced with a 4xx JSON error).

    Attributes:
        max_body_bytes: request body size (413 ``body_too_large``).
        max_utterances: utterances per request (413 ``too_many_utterances``).
        max_text_chars: characters per utterance text (422 ``text_too_long``).
        max_batch_utterances: utterances per micro-batch.
        max_wait_ms: how long a request waits for others to batch with.
    """

    max_body_bytes: int = 1 << 20
    max_utterances: int = 256
    max_text_chars: int = 2000
    max_batch_utterances: int = 1024
    max_wait_ms: float = 5.0


class ApiError(Exception):
    """A client error: ``status`` with ``{"error": {"code", "message", "field"}}``."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.field = status, code, message, field

    def response(self) -> JSONResponse:
        return error_response(self.status, self.code, self.message, self.field)


def error_response(status: int, code: str, message: str, field: str | None = None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message, "field": field}}, status_code=status)


# -- request / response schema ----------------------------------------------------------------
class Utterance(BaseModel):
    """One utterance. ``dialogue_id`` defaults to the request's; ``features`` are optional
    precomputed per-modality vectors (``t``/``a``/``v``) for models trained on features merc did
    not extract."""

    model_config = ConfigDict(extra="forbid")
    speaker: str = Field(min_length=1, max_length=200, examples=["Ann"])
    text: str = Field("", examples=["I can't believe you did that!"])
    dialogue_id: str | None = Field(None, max_length=200)
    utterance_id: str | None = Field(None, max_length=200)
    features: dict[Literal["t", "a", "v"], list[float]] | None = None
    media: dict[Literal["audio", "video"], str] | None = Field(
        None, description="inline media as base64 (audio: wav/flac/ogg/mp3; video: png/jpeg/gif/bmp/webp image "
                          "or mp4/webm/avi/mkv video), extracted with the model's own extractors")

    @model_validator(mode="before")
    @classmethod
    def _no_paths(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for key in ("audio", "video"):
                if key in data:
                    raise ValueError(f"'{key}' is a file path and the server never opens files named by a request; "
                                     f"send the {key} itself base64-encoded in 'media' or its features in 'features'")
        return data


class PredictRequest(BaseModel):
    """A conversation (or several, told apart by each utterance's ``dialogue_id``)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "dialogue_id": "c1", "utterances": [{"speaker": "Ann", "text": "I can't believe you did that!"},
                                            {"speaker": "Bob", "text": "Sorry... I really didn't mean to."}]}]})
    dialogue_id: str = Field("conversation", min_length=1, max_length=200)
    utterances: list[Utterance] = Field(min_length=1)


class PredictResponse(BaseModel):
    """Rows as :meth:`merc.inference.Predictor.predict` returns them (``label``, ``confidence``,
    ``probabilities`` per class, ``explanation`` as the model's method gives it)."""

    model: str
    labels: list[str]
    utterances: list[dict[str, Any]]


# -- building the predictor's input -----------------------------------------------------------
def _check_text(value: str, field: str, limit: int) -> None:
    if any(unicodedata.category(c) == "Cc" and c not in "\t\n\r" for c in value):
        raise ApiError(422, "control_characters", f"{field} contains control characters", field)
    if len(value) > limit:
        raise ApiError(422, "text_too_long", f"{field} has {len(value)} characters; the limit is {limit}", field)


def request_records(req: PredictRequest, limits: Limits) -> list[dict[str, Any]]:
    """Validated utterance records (the user format's fields) of a request."""
    if len(req.utterances) > limits.max_utterances:
        raise ApiError(413, "too_many_utterances", f"{len(req.utterances)} utterances; the limit is "
                       f"{limits.max_utterances} per request (split the conversation)", "utterances")
    _check_text(req.dialogue_id, "dialogue_id", 200)
    records = []
    for i, u in enumerate(req.utterances):
        _check_text(u.text, f"utterances[{i}].text", limits.max_text_chars)
        for key in ("speaker", "dialogue_id", "utterance_id"):
            if getattr(u, key) is not None:
                _check_text(getattr(u, key), f"utterances[{i}].{key}", 200)
        record: dict[str, Any] = {"dialogue_id": u.dialogue_id or req.dialogue_id, "speaker": u.speaker, "text": u.text}
        if u.utterance_id is not None:
            record["utterance_id"] = u.utterance_id
        if u.media:
            record["media"] = {kind: decode_media(data, kind, f"utterances[{i}].media.{kind}")
                               for kind, data in u.media.items()}
        if u.features:
            record["features"] = {m: np.asarray(v, dtype=np.float32) for m, v in u.features.items()}
            if not all(np.isfinite(v).all() for v in record["features"].values()):
                raise ApiError(422, "non_finite_features", f"utterances[{i}].features holds NaN or infinity",
                               f"utterances[{i}].features")
        records.append(record)
    return records


#: leading bytes → file suffix of the inline media the extractors can read
_MAGIC: dict[str, tuple[tuple[bytes, int, str], ...]] = {
    "video": ((b"\x89PNG", 0, ".png"), (b"\xff\xd8\xff", 0, ".jpg"), (b"GIF8", 0, ".gif"), (b"BM", 0, ".bmp"),
              (b"WEBP", 8, ".webp"), (b"ftyp", 4, ".mp4"), (b"\x1a\x45\xdf\xa3", 0, ".mkv"), (b"AVI ", 8, ".avi")),
    "audio": ((b"WAVE", 8, ".wav"), (b"fLaC", 0, ".flac"), (b"OggS", 0, ".ogg"), (b"ID3", 0, ".mp3"),
              (b"\xff\xfb", 0, ".mp3")),
}


def decode_media(data: str, kind: str, field: str) -> tuple[bytes, str]:
    """Base64 (optionally a ``data:`` URL) → (bytes, file suffix); the type is recognised by its
    leading bytes, never by a name from the request."""
    import base64
    import binascii

    payload = data.split(",", 1)[1] if data.startswith("data:") else data
    try:
        raw = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise ApiError(422, "bad_media", f"{field} is not valid base64", field) from None
    for magic, offset, suffix in _MAGIC[kind]:
        if raw[offset:offset + len(magic)] == magic:
            return raw, suffix
    raise ApiError(422, "bad_media", f"{field}: unrecognised {kind} format; send "
                   + ", ".join(sorted({s.lstrip('.') for _, _, s in _MAGIC[kind]})), field)


def records_dataset(records: list[dict[str, Any]], label_names: list[str],
                    media_dir: Path | None = None) -> DialogueDataset:
    """:func:`merc.inference.dataset_from_records` plus the utterances' precomputed features
    (a modality is filled for a dialogue when every utterance of it carries one) and inline
    media, written to server-chosen names in ``media_dir`` for the extractors to read."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in records:
        groups.setdefault(str(r["dialogue_id"]), []).append(r)
    for did, rows in groups.items():
        if len({frozenset(r.get("media") or ()) for r in rows}) > 1:
            raise MercError(f"request [media]: dialogue '{did}' gives media for some utterances only; "
                            "send the same media kinds for every utterance of a dialogue")
    plain = []
    for k, r in enumerate(records):
        row = {key: v for key, v in r.items() if key not in ("features", "media")}
        for kind, (raw, suffix) in (r.get("media") or {}).items():
            assert media_dir is not None, "inline media need a media directory"
            path = media_dir / f"{k}-{kind}{suffix}"
            path.write_bytes(raw)
            row[kind] = str(path)
        plain.append(row)
    dataset = dataset_from_records(plain, label_names, source="request")
    for d in dataset.dialogues:
        feats = [r.get("features") or {} for r in groups[d.id]]
        for m in set().union(*feats):
            vectors = [f.get(m) for f in feats]
            if all(v is not None for v in vectors):
                if len({v.shape for v in vectors}) > 1:
                    raise MercError(f"request [features.{m}]: dialogue '{d.id}' mixes feature lengths; "
                                    "give every utterance the same dimension")
                d.features[m] = np.stack(vectors)
    return dataset


# -- the application --------------------------------------------------------------------------
def model_card(predictor: Predictor, name: str, limits: Limits) -> dict[str, Any]:
    """What ``GET /model`` returns: identity, labels, modalities, the feature spec (extractor
    records), training metrics, the model card text if the directory has one, and the limits."""
    bundle = predictor.bundle
    path = getattr(bundle, "path", None)
    card = None
    if path is not None and (path / "README.md").is_file():
        card = (path / "README.md").read_text(encoding="utf-8", errors="replace")
    config = getattr(bundle, "config", None)
    model = getattr(config, "model", None)
    return {"name": name, "method": getattr(model, "method", None), "backbone": getattr(model, "backbone", None),
            "labels": predictor.label_names, "modalities": predictor.modalities, "input_dims": predictor.input_dims,
            "features": predictor.records, "metrics": getattr(bundle, "metrics", {}), "card": card,
            "limits": asdict(limits)}


def _static_dir() -> Any:
    return resources.files("merc.serve") / "static"


def create_app(predictor: Predictor, name: str = "model", limits: Limits | None = None) -> FastAPI:
    """The FastAPI app serving ``predictor`` (see the module docstring)."""
    limits = limits or Limits()

    def run(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if not any("media" in r for r in records):
            return predictor.predict(records_dataset(records, predictor.label_names))
        with tempfile.TemporaryDirectory(prefix="merc-serve-") as tmp:  # inline media live only for the batch
            return predictor.predict(records_dataset(records, predictor.label_names, Path(tmp)))

    batcher = MicroBatcher(run, limits.max_batch_utterances, limits.max_wait_ms)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await batcher.start()
        yield
        await batcher.stop()

    app = FastAPI(title="merc", version=_version(), lifespan=lifespan, docs_url=None, redoc_url=None,
                  description="Emotion recognition in conversation: labels, class scores and explanations.")
    app.add_middleware(BodyLimit, max_bytes=limits.max_body_bytes)
    app.state.batcher, app.state.limits = batcher, limits

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return exc.response()

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        if first.get("type") == "json_invalid":
            where = first.get("loc", ("body", "?"))[-1]
            detail = (first.get("ctx") or {}).get("error", "")
            return error_response(422, "invalid_request", f"the body is not valid JSON ({detail} at character {where})")
        loc = ".".join(str(x) for x in first.get("loc", ()) if x != "body") or None
        message = str(first.get("msg", "invalid request")).removeprefix("Value error, ")
        if loc is None:
            message = f'the body must be a JSON object {{"utterances": [...]}}: {message}'
        return error_response(422, "invalid_request", f"{loc + ': ' if loc else ''}{message}", loc)

    @app.post("/predict", response_model=PredictResponse, summary="label every utterance of a conversation")
    async def predict(req: PredictRequest) -> dict[str, Any]:
        records = request_records(req, limits)
        try:
            rows = await batcher.submit(records)
        except MercError as exc:
            raise ApiError(422, "unprocessable", str(exc)) from None
        return {"model": name, "labels": predictor.label_names, "utterances": rows}

    @app.get("/health", summary="liveness and batching counters")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "model": name, **asdict(batcher.stats)}

    @app.get("/model", summary="model card, feature spec, labels and limits")
    async def model() -> dict[str, Any]:
        return model_card(predictor, name, limits)

    static = _static_dir()
    app.mount("/static", StaticFiles(directory=str(static)), name="static")

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(str(static / "index.html"))

    _mount_docs(app)
    return app


def _mount_docs(app: FastAPI) -> None:
    """Swagger UI from the ``swagger-ui-bundle`` wheel (FastAPI's default loads it from a CDN)."""
    try:
        import swagger_ui_bundle
    except ImportError:
        log.warning("swagger-ui-bundle is not installed; /docs is off (the schema stays at /openapi.json)")
        return
    from fastapi.openapi.docs import get_swagger_ui_html

    app.mount("/docs-assets", StaticFiles(directory=swagger_ui_bundle.swagger_ui_path), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url="/openapi.json", title="merc API",
                                   swagger_js_url="/docs-assets/swagger-ui-bundle.js",
                                   swagger_css_url="/docs-assets/swagger-ui.css",
                                   swagger_favicon_url="/docs-assets/favicon-32x32.png")


class BodyLimit:
    """ASGI middleware refusing request bodies over ``max_bytes`` with 413 ``body_too_large`` —
    by ``Content-Length`` up front; a body without one is read (at most ``max_bytes + 1``) and
    replayed to the application."""

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app, self.max_bytes = app, int(max_bytes)

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        too_large = error_response(413, "body_too_large", f"request body over {self.max_bytes} bytes; "
                                   "send fewer or shorter utterances")
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None:
            if not length.isdigit() or int(length) > self.max_bytes:
                await too_large(scope, receive, send)
            else:
                await self.app(scope, receive, send)
            return
        chunks, seen, more = [], 0, True
        while more:
            event = await receive()
            if event["type"] != "http.request":
                return  # the client went away
            chunks.append(event.get("body", b""))
            seen += len(chunks[-1])
            more = event.get("more_body", False)
            if seen > self.max_bytes:
                await too_large(scope, receive, send)
                return
        body = b"".join(chunks)
        sent = False

        async def replay() -> dict:
            nonlocal sent
            if sent:
                return await receive()
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


def _version() -> str:
    from merc import __version__

    return __version__
