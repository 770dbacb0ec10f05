"""Typed, validated hyperparameters of DRKF (METHODS.md §3).

Defaults are sized for a CPU (width 128, 2 fusion layers). The reference sizes (fusion width
1024, 6 layers, 8 heads, FFN 4096, autoencoder input 1024) are selectable with
:meth:`DRKFConfig.reference` or by setting the fields.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from merc.errors import ConfigError

INPUT_MODES = ("auto", "frames", "lite", "end2end")
KL_MODES = ("proper", "published")
POOLINGS = ("mean", "first")


@dataclass
class DRKFConfig:
    """DRKF hyperparameters (``model.method_options`` in an experiment config)."""

    input_mode: str = "auto"
    """``frames`` (token/frame-level features + trainable adapter; mode 1), ``lite``
    (utterance-level pooled features; mode 2), ``end2end`` (Hugging Face encoders; mode 3), or
    ``auto``: ``frames`` when the training batches carry text and audio sequences, else ``lite``.
    The mode resolved on the first training batch is saved with the model."""
    width: int = 128
    """Model width ``d`` shared by adapters, ORL and the fusion encoder (reference 1024)."""
    layers: int = 2
    """Fusion-encoder layers (reference 6)."""
    heads: int = 4
    """Fusion-encoder attention heads (reference 8)."""
    ffn: int = 256
    """Fusion-encoder feed-forward width (reference 4096)."""
    dropout: float = 0.1
    """Dropout in the adapters and the fusion encoder."""
    n_blocks: int = 5
    """Residual-autoencoder blocks of the augmentation cascade."""
    ae_layers: list[int] = field(default_factory=lambda: [256, 128, 64])
    """Encoder widths of each autoencoder block (decoder mirrors them)."""
    ed_pairs: int = 32
    """Cross-utterance pairs sampled per batch for emotion discrimination (0 disables ED)."""
    text_pool: str = "mean"
    """Pooled text vector ``p_t`` for the projection head: ``mean`` (masked mean of tokens) or
    ``first`` (first token, e.g. [CLS], as the reference does with RoBERTa)."""
    infonce_symmetric: bool = False
    """Cross-modal InfoNCE in both directions (a→t and t→a); the reference uses a→t only."""
    kl_mode: str = "proper"
    """``proper``: KL(p‖q) from log-probabilities for text and audio. ``published``: the
    reference arithmetic (``kl_div`` fed probabilities, text term counted twice, no audio)."""
    faithful: bool = False
    """Fusion as published (a BERT fed ``inputs_embeds``): zero CLS/SEP tokens, learned absolute
    positions over the whole concatenation and BERT's token-type embedding (type 0 everywhere)
    instead of modality-type embeddings, no padding mask (padding then leaks into the
    prediction); pooling and reconstruction also count padded positions."""
    max_positions: int = 2800
    """Faithful mode: size of the learned position table (reference 2800); longer fusion inputs
    are cut to this length, as the reference does."""
    temperature_init: float = 1.0
    """Initial θ of the learnable temperature τ = sigmoid(θ)."""
    w_ce: float = 1.0
    """Weight of emotion classification (EC) cross-entropy."""
    w_ed: float = 0.2
    """Weight of emotion discrimination (ED)."""
    w_contrastive: float = 0.2
    """Weight of NT-Xent(text) + NT-Xent(audio) + InfoNCE(a→t)."""
    w_recon: float = 0.2
    """Weight of the masked reconstruction MSE (text + audio)."""
    w_kl: float = 1.0
    """Weight of the label-vector consistency term."""
    lite_chunks: int = 1
    """Lite mode: split each utterance vector into this many tokens (1 = a length-1 sequence)."""
    frame_dims: dict[str, int] | None = None
    """Frames mode: per-modality frame feature dimension when it differs from the utterance
    feature dimension of the dataset (default: same)."""
    adapter_hidden: int = 0
    """Adapter hidden width (0: a single Linear(d_in, width) + LayerNorm; >0 adds a hidden layer)."""
    text_encoder: Any = None
    """End-to-end: Hugging Face model name/path, or a config dict (``{"model_type": "bert", ...}``)
    for a randomly initialised encoder."""
    audio_encoder: Any = None
    """End-to-end: Hugging Face audio model name/path or config dict (e.g. wav2vec2)."""
    text_tokenizer: str | None = None
    """End-to-end: tokenizer name/path (default: the text encoder's; a byte-level fallback is used
    for config-built encoders)."""
    freeze_encoders: bool = False
    """End-to-end: keep the Hugging Face encoders frozen (only adapters and DRKF train)."""
    sample_rate: int = 16000
    """End-to-end: audio is resampled to this rate before the audio encoder."""
    max_text_tokens: int = 128
    """End-to-end: truncate transcripts to this many tokens."""

    def __post_init__(self) -> None:
        _choice("input_mode", self.input_mode, INPUT_MODES)
        _choice("kl_mode", self.kl_mode, KL_MODES)
        _choice("text_pool", self.text_pool, POOLINGS)
        for name in ("width", "layers", "heads", "ffn", "n_blocks", "lite_chunks", "max_text_tokens", "sample_rate",
                     "max_positions"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"model.method_options.{name} must be ≥ 1, got {getattr(self, name)}")
        if self.width % self.heads:
            raise ConfigError(f"model.method_options.width ({self.width}) must be divisible by heads ({self.heads})")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"model.method_options.dropout must be in [0, 1), got {self.dropout}")
        if self.ed_pairs < 0 or self.adapter_hidden < 0:
            raise ConfigError("model.method_options.ed_pairs and adapter_hidden must be ≥ 0")
        if not self.ae_layers or any(int(w) < 1 for w in self.ae_layers):
            raise ConfigError(f"model.method_options.ae_layers must be positive widths, got {self.ae_layers}")
        for name in ("w_ce", "w_ed", "w_contrastive", "w_recon", "w_kl"):
            if float(getattr(self, name)) < 0:
                raise ConfigError(f"model.method_options.{name} must be ≥ 0, got {getattr(self, name)}")
        if self.input_mode == "end2end" and (self.text_encoder is None or self.audio_encoder is None):
            raise ConfigError("input_mode end2end needs model.method_options.text_encoder and audio_encoder "
                              "(a Hugging Face name/path or a config dict)")
        self.ae_layers = [int(w) for w in self.ae_layers]

    @classmethod
    def from_options(cls, options: dict[str, Any]) -> "DRKFConfig":
        """Build from ``method_options``; unknown keys raise naming the valid ones."""
        names = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(options) - set(names))
        if unknown:
            raise ConfigError(f"method drkf got unknown option(s) {', '.join(unknown)}; valid options: {', '.join(names)}")
        return cls(**options)

    @classmethod
    def reference(cls, **overrides: Any) -> "DRKFConfig":
        """The published sizes (GPU-scale): width 1024, 6 layers, 8 heads, FFN 4096."""
        return cls(**{"width": 1024, "layers": 6, "heads": 8, "ffn": 4096, **overrides})


def _choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(f"model.method_options.{name} must be one of {', '.join(choices)}, got '{value}'")
