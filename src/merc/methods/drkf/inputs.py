"""DRKF's three input modes: batch → per-modality sequences ``(H [N, T, d], mask [N, T])``.

- ``frames`` (mode 1, default when available): token/frame-level features of frozen encoders
  (``Batch.sequences``, e.g. ``merc features`` with ``minilm``/``librosa`` at level ``frame``)
  through a trainable per-modality adapter. ORL's reconstruction and contrastive gradients reach
  the adapter, so the "decoupled" representation is learned, not fixed.
- ``lite`` (mode 2): utterance-level pooled features (``Batch.features``). Each vector becomes a
  length-1 sequence (``lite_chunks = 1``) or is cut into ``k`` equal chunks with a learned chunk
  embedding. ORL stays meaningful: the adapter output is still reconstructed by the autoencoder
  cascade, and the projected view ``z`` and the augmented view ``ẑ`` still form the NT-Xent
  positive pair; the fusion encoder attends over ``[CLS; a; SEP; t; SEP]``.
- ``end2end`` (mode 3): any Hugging Face text and audio encoders (by name or config dict)
  fine-tuned on ``Batch.texts`` and the wav files of ``Batch.media["a"]``.

Modes are registered in :data:`INPUT_ENCODERS` (name → builder).
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from merc.data.collate import Batch
from merc.errors import ConfigError, DataError

DRKF_MODALITIES = ("t", "a")
Sequences = dict[str, tuple[Tensor, Tensor]]


class Adapter(nn.Module):
    """Trainable per-modality adapter ``d_in → width``: Linear (+ GELU + Linear) → LayerNorm → Dropout.

    Shapes:
        - input ``[..., d_in]`` → ``[..., width]``.
    """

    def __init__(self, d_in: int, width: int, hidden: int = 0, dropout: float = 0.1) -> None:
        super().__init__()
        layers: list[nn.Module] = ([nn.Linear(d_in, hidden), nn.GELU(), nn.Linear(hidden, width)] if hidden
                                   else [nn.Linear(d_in, width)])
        self.net = nn.Sequential(*layers, nn.LayerNorm(width), nn.Dropout(dropout))

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class FrameInput(nn.Module):
    """Mode 1: ``Batch.sequences`` (frozen-encoder frames/tokens) → per-modality adapter.

    Args:
        dims: modality → frame feature dimension.
        width: output width.
        adapter_hidden: adapter hidden width (0 = single linear layer).
        dropout: adapter dropout.
    """

    def __init__(self, dims: dict[str, int], width: int, adapter_hidden: int = 0, dropout: float = 0.1) -> None:
        super().__init__()
        self.dims = {m: int(dims[m]) for m in DRKF_MODALITIES}
        self.adapters = nn.ModuleDict({m: Adapter(d, width, adapter_hidden, dropout) for m, d in self.dims.items()})

    def forward(self, batch: Batch) -> Sequences:
        out: Sequences = {}
        for m in DRKF_MODALITIES:
            if m not in batch.sequences:
                raise DataError("batch", f"has no frame-level '{m}' sequences", field="sequences",
                                fix="extract frame-level features (merc features ... level=frame) "
                                    "or set model.method_options.input_mode=lite")
            x, mask = batch.sequences[m]  # (N, T, d_m), (N, T)
            if x.shape[-1] != self.dims[m]:
                raise DataError("batch", f"'{m}' frames have dimension {x.shape[-1]}, the model expects {self.dims[m]}",
                                field="sequences", fix="set model.method_options.frame_dims to the frame dimensions")
            out[m] = (self.adapters[m](x), mask)  # (N, T, width)
        return out


class LiteInput(nn.Module):
    """Mode 2: utterance vectors ``[N, d_m]`` as length-``k`` sequences of chunks.

    The vector is zero-padded to a multiple of ``k``, cut into ``k`` chunks of ``⌈d_m/k⌉``, each
    adapted to ``width`` plus a learned chunk embedding. All chunks are valid positions.

    Args:
        dims: modality → utterance feature dimension.
        width: output width.
        chunks: tokens per utterance ``k`` (1 = the vector as a length-1 sequence).
        adapter_hidden: adapter hidden width.
        dropout: adapter dropout.
        adapters: existing per-modality adapters to share (``auto`` mode shares the frame adapters
            when shapes agree, so no parameter is left unused whichever mode runs).
    """

    def __init__(self, dims: dict[str, int], width: int, chunks: int = 1, adapter_hidden: int = 0,
                 dropout: float = 0.1, adapters: nn.ModuleDict | None = None) -> None:
        super().__init__()
        self.chunks = chunks
        self.chunk_dims = {m: -(-int(dims[m]) // chunks) for m in DRKF_MODALITIES}
        self.adapters = adapters if adapters is not None else nn.ModuleDict(
            {m: Adapter(c, width, adapter_hidden, dropout) for m, c in self.chunk_dims.items()})
        # one chunk needs no position: the adapter's bias plays that role
        self.chunk_embedding = nn.Parameter(torch.zeros(len(DRKF_MODALITIES), chunks, width)) if chunks > 1 else None

    def forward(self, batch: Batch) -> Sequences:
        out: Sequences = {}
        for k, m in enumerate(DRKF_MODALITIES):
            x = batch.features[m][batch.mask]  # (N, d_m), batch-major
            c = self.chunk_dims[m]
            x = F.pad(x, (0, c * self.chunks - x.shape[-1])).view(x.shape[0], self.chunks, c)  # (N, k, c)
            h = self.adapters[m](x)  # (N, k, width)
            if self.chunk_embedding is not None:
                h = h + self.chunk_embedding[k]
            out[m] = (h, torch.ones(h.shape[:2], dtype=torch.bool, device=h.device))
        return out


class ByteTokenizer:
    """Fallback tokenizer for config-built (randomly initialised) text encoders: UTF-8 bytes
    shifted by 3 (0 pad, 1 start, 2 end), truncated to ``max_length``."""

    def __init__(self, vocab_size: int, max_length: int) -> None:
        if vocab_size < 259:
            raise ConfigError(f"the byte-level fallback tokenizer needs vocab_size ≥ 259, got {vocab_size}; "
                              "set model.method_options.text_tokenizer")
        self.max_length = max_length

    def __call__(self, texts: list[str]) -> dict[str, Tensor]:
        ids = [[1] + [b + 3 for b in t.encode("utf-8")][: self.max_length - 2] + [2] for t in texts]
        T = max(len(i) for i in ids)
        input_ids = torch.tensor([i + [0] * (T - len(i)) for i in ids])
        return {"input_ids": input_ids, "attention_mask": (input_ids != 0).long()}


def _hf_model(spec: Any) -> nn.Module:
    from transformers import AutoConfig, AutoModel

    if isinstance(spec, dict):
        options = dict(spec)
        model_type = options.pop("model_type", None)
        if model_type is None:
            raise ConfigError("an encoder config dict needs 'model_type' (e.g. bert, wav2vec2)")
        return AutoModel.from_config(AutoConfig.for_model(model_type, **options))
    return AutoModel.from_pretrained(str(spec))


def _wave(path: str, sample_rate: int) -> np.ndarray:
    from merc.features.audio import read_audio

    return read_audio(path, sample_rate)


class End2EndInput(nn.Module):
    """Mode 3: Hugging Face text and audio encoders trained end to end, then adapters.

    Text: ``Batch.texts`` → tokenizer → encoder last hidden states (mask = attention mask).
    Audio: ``Batch.media["a"]`` wav paths → mono waveform at ``sample_rate`` → encoder last
    hidden states (mask from the encoder's output lengths when it reports them).

    Args:
        text_encoder: model name/path, or config dict with ``model_type`` (random init).
        audio_encoder: same for audio (e.g. ``{"model_type": "wav2vec2", ...}``).
        width: output width.
        text_tokenizer: tokenizer name/path (default: the text encoder's; byte-level for dicts).
        freeze: keep the encoders frozen.
        sample_rate: audio rate the encoder expects.
        max_text_tokens: truncation length.
        adapter_hidden: adapter hidden width.
        dropout: adapter dropout.
    """

    def __init__(self, text_encoder: Any, audio_encoder: Any, width: int, text_tokenizer: str | None = None,
                 freeze: bool = False, sample_rate: int = 16000, max_text_tokens: int = 128,
                 adapter_hidden: int = 0, dropout: float = 0.1) -> None:
        super().__init__()
        self.text_model = _hf_model(text_encoder)
        self.audio_model = _hf_model(audio_encoder)
        if freeze:
            for p in [*self.text_model.parameters(), *self.audio_model.parameters()]:
                p.requires_grad_(False)
        name = text_tokenizer or (None if isinstance(text_encoder, dict) else str(text_encoder))
        if name is None:
            self.tokenizer: Callable[..., Any] = ByteTokenizer(self.text_model.config.vocab_size, max_text_tokens)
        else:
            from transformers import AutoTokenizer

            tok = AutoTokenizer.from_pretrained(name)
            self.tokenizer = lambda texts: dict(tok(texts, padding=True, truncation=True,
                                                    max_length=max_text_tokens, return_tensors="pt"))
        self.sample_rate = sample_rate
        self.adapters = nn.ModuleDict({
            "t": Adapter(self.text_model.config.hidden_size, width, adapter_hidden, dropout),
            "a": Adapter(self.audio_model.config.hidden_size, width, adapter_hidden, dropout)})

    def forward(self, batch: Batch) -> Sequences:
        if batch.texts is None or "a" not in batch.media:
            raise DataError("batch", "end-to-end DRKF needs transcripts and audio files", field="texts/media",
                            fix="load a dataset whose dialogues carry texts and media['a'] wav paths")
        device = next(self.adapters.parameters()).device
        tokens = {k: v.to(device) for k, v in self.tokenizer(list(batch.texts)).items()}
        h_t = self.text_model(**tokens).last_hidden_state  # (N, T_t, h_t)
        mask_t = tokens["attention_mask"].bool()
        waves = [_wave(p, self.sample_rate) for p in batch.media["a"]]  # file I/O, one per utterance
        lengths = torch.tensor([w.size for w in waves])
        values = nn.utils.rnn.pad_sequence([torch.from_numpy(w) for w in waves], batch_first=True)  # (N, S)
        sample_mask = torch.arange(values.shape[1]) < lengths[:, None]
        h_a = self.audio_model(values.to(device), attention_mask=sample_mask.long().to(device)).last_hidden_state
        frames = getattr(self.audio_model, "_get_feat_extract_output_lengths", None)
        frame_len = frames(lengths).long() if frames is not None else torch.full_like(lengths, h_a.shape[1])
        mask_a = (torch.arange(h_a.shape[1]) < frame_len[:, None]).to(device)  # (N, T_a)
        return {"t": (self.adapters["t"](h_t), mask_t), "a": (self.adapters["a"](h_a), mask_a)}


def build_auto(dims: dict[str, int], cfg: Any) -> dict[str, nn.Module]:
    """``auto`` mode: a frames and a lite encoder, sharing adapters when frame and utterance
    dimensions agree and ``lite_chunks == 1`` (then every parameter is used in either mode)."""
    frames = INPUT_ENCODERS["frames"](dims, cfg)
    same = cfg.lite_chunks == 1 and all(frames.dims[m] == int(dims[m]) for m in DRKF_MODALITIES)
    lite = LiteInput(dims, cfg.width, cfg.lite_chunks, cfg.adapter_hidden, cfg.dropout,
                     adapters=frames.adapters if same else None)
    return {"frames": frames, "lite": lite}


#: input mode → builder ``(input_dims, config) → nn.Module``
INPUT_ENCODERS: dict[str, Callable[..., nn.Module]] = {
    "frames": lambda dims, cfg: FrameInput({**dims, **(cfg.frame_dims or {})}, cfg.width, cfg.adapter_hidden,
                                           cfg.dropout),
    "lite": lambda dims, cfg: LiteInput(dims, cfg.width, cfg.lite_chunks, cfg.adapter_hidden, cfg.dropout),
    "end2end": lambda dims, cfg: End2EndInput(cfg.text_encoder, cfg.audio_encoder, cfg.width, cfg.text_tokenizer,
                                              cfg.freeze_encoders, cfg.sample_rate, cfg.max_text_tokens,
                                              cfg.adapter_hidden, cfg.dropout),
}


def has_frames(batch: Batch) -> bool:
    """Whether ``batch`` carries text and audio sequences (mode 1 is possible)."""
    return all(m in batch.sequences for m in DRKF_MODALITIES)
