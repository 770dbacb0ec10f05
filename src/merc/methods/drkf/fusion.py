"""KF — the fusion encoder of DRKF (METHODS.md §3.2).

A Transformer encoder over ``[CLS; H_a; SEP; H_t; SEP]``; the output at CLS is the fused
utterance vector. The CLS row of every layer's attention, summed over the audio, text and
special positions, says which modality dominated a prediction (the explanation).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

#: order of the last axis of :attr:`FusionOutput.cls_attention`
ATTENTION_PARTS = ("a", "t", "special")
#: LayerNorm ε of Hugging Face BERT (the published fusion encoder)
BERT_LAYER_NORM_EPS = 1e-12


def sinusoidal_positions(length: int, dim: int, device: torch.device | None = None) -> Tensor:
    """Fixed sinusoidal position codes ``[length, dim]`` (Vaswani et al. 2017)."""
    pos = torch.arange(length, dtype=torch.float32, device=device).unsqueeze(1)
    freq = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32, device=device) * (-math.log(10000.0) / dim))
    codes = torch.zeros(length, dim, device=device)
    codes[:, 0::2] = torch.sin(pos * freq)
    codes[:, 1::2] = torch.cos(pos * freq)[:, : dim // 2]
    return codes


@dataclass
class FusionOutput:
    """Output of :class:`FusionEncoder`.

    Attributes:
        cls: ``[B, d]`` fused vector (output at CLS).
        cls_attention: ``[B, layers, 3]`` attention mass of the CLS query on audio, text and
            special tokens (``ATTENTION_PARTS``), averaged over heads; rows sum to 1.
    """

    cls: Tensor
    cls_attention: Tensor


class FusionLayer(nn.Module):
    """Post-norm Transformer layer (BERT style) that also returns the CLS attention row.

    With ``bert=True`` it is exactly a Hugging Face ``BertLayer``: LayerNorm ε = 1e-12 and no
    dropout between the feed-forward's GELU and its output projection.

    Shapes:
        - x ``[B, S, d]``, key_padding_mask ``[B, S]`` (True = ignore) → ``[B, S, d]``, ``[B, S]``.
    """

    def __init__(self, width: int, heads: int, ffn: int, dropout: float, bert: bool = False) -> None:
        super().__init__()
        eps = BERT_LAYER_NORM_EPS if bert else 1e-5
        self.attn = nn.MultiheadAttention(width, heads, dropout=dropout, batch_first=True)
        self.norm1 = nn.LayerNorm(width, eps=eps)
        self.norm2 = nn.LayerNorm(width, eps=eps)
        self.ff = nn.Sequential(nn.Linear(width, ffn), nn.GELU(), nn.Identity() if bert else nn.Dropout(dropout),
                                nn.Linear(ffn, width))
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor, key_padding_mask: Tensor | None) -> tuple[Tensor, Tensor]:
        a, weights = self.attn(x, x, x, key_padding_mask=key_padding_mask, need_weights=True,
                               average_attn_weights=True)  # (B, S, d), (B, S, S)
        x = self.norm1(x + self.dropout(a))
        x = self.norm2(x + self.dropout(self.ff(x)))
        return x, weights[:, 0]


class FusionEncoder(nn.Module):
    r"""Fusion Transformer over ``[CLS; H_a; SEP; H_t; SEP]``.

    Default (``faithful=False``): learned CLS/SEP vectors, modality-type embeddings (special,
    audio, text), sinusoidal positions restarting in each segment and key-padding masks, so
    padded frames/tokens change nothing. ``faithful=True`` reproduces the published version, a
    Hugging Face ``BertModel`` fed ``inputs_embeds``: zero CLS/SEP tokens, BERT's embeddings —
    learned absolute positions ``0 … S−1`` over the whole concatenation and the learned
    token-type embedding of type 0 at every position (the reference passes no
    ``token_type_ids``), summed with the input, then LayerNorm and dropout — no padding mask
    (padding is attended to), and sequences longer than ``max_positions`` cut to that length.

    Args:
        width: model width ``d`` (reference 1024).
        layers: encoder layers (reference 6).
        heads: attention heads (reference 8).
        ffn: feed-forward width (reference 4096).
        dropout: dropout rate.
        faithful: reproduce the published unmasked, zero-token BERT version.
        max_positions: learned position table size in faithful mode (reference 2800).

    Shapes:
        - h_a ``[B, T_a, d]``, mask_a ``[B, T_a]``, h_t ``[B, T_t, d]``, mask_t ``[B, T_t]``
        - output: cls ``[B, d]``, cls_attention ``[B, layers, 3]``
    """

    def __init__(self, width: int, layers: int = 2, heads: int = 4, ffn: int = 256, dropout: float = 0.1,
                 faithful: bool = False, max_positions: int = 2800) -> None:
        super().__init__()
        self.width = width
        self.faithful = faithful
        self.max_positions = max_positions
        if faithful:  # BERT's learned embedding tables, initialised N(0, 0.02) as BERT does
            self.position_embedding = nn.Embedding(max_positions, width)
            self.token_type_embedding = nn.Embedding(2, width)  # BERT's type_vocab_size; only type 0 is used
            for table in (self.position_embedding, self.token_type_embedding):
                nn.init.normal_(table.weight, std=0.02)
        self.cls = nn.Parameter(torch.randn(width) * 0.02)
        self.sep = nn.Parameter(torch.randn(width) * 0.02)
        self.type_embedding = nn.Embedding(3, width)  # 0 special, 1 audio, 2 text
        self.norm = nn.LayerNorm(width, eps=BERT_LAYER_NORM_EPS if faithful else 1e-5)
        self.dropout = nn.Dropout(dropout)
        self.layers = nn.ModuleList(FusionLayer(width, heads, ffn, dropout, bert=faithful) for _ in range(layers))

    def forward(self, h_a: Tensor, mask_a: Tensor, h_t: Tensor, mask_t: Tensor) -> FusionOutput:
        B, T_a, d = h_a.shape
        T_t = h_t.shape[1]
        device = h_a.device
        one = torch.ones(B, 1, dtype=torch.bool, device=device)
        # segment of each position: 0 special, 1 audio, 2 text; (B, S) with S = T_a + T_t + 3
        special = torch.zeros(1, dtype=torch.long, device=device)
        segment = torch.cat([special, torch.full((T_a,), 1, device=device), special,
                             torch.full((T_t,), 2, device=device), special])  # (S,)
        if self.faithful:
            zero = h_a.new_zeros(B, 1, d)
            x = torch.cat([zero, h_a, zero, h_t, zero], dim=1)[:, : self.max_positions]  # (B, S, d)
            segment = segment[: self.max_positions]
            x = x + self.position_embedding.weight[: x.shape[1]] + self.token_type_embedding.weight[0]
            key_padding_mask = None
        else:
            cls = self.cls.expand(B, 1, d)
            sep = self.sep.expand(B, 1, d)
            a = h_a + sinusoidal_positions(T_a, d, device)
            t = h_t + sinusoidal_positions(T_t, d, device)
            x = torch.cat([cls, a, sep, t, sep], dim=1) + self.type_embedding(segment)  # (B, S, d)
            key_padding_mask = ~torch.cat([one, mask_a, one, mask_t, one], dim=1)  # (B, S), True = ignore
        x = self.dropout(self.norm(x))
        rows = []
        for layer in self.layers:
            x, cls_row = layer(x, key_padding_mask)  # cls_row (B, S)
            rows.append(cls_row)
        attn = torch.stack(rows, dim=1)  # (B, layers, S)
        parts = torch.nn.functional.one_hot(segment, 3).to(attn.dtype)  # (S, 3): special, audio, text
        mass = attn @ parts  # (B, layers, 3)
        mass = mass[..., [1, 2, 0]]  # reorder to ATTENTION_PARTS (a, t, special)
        return FusionOutput(x[:, 0], mass)
