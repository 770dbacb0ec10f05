"""Padding-exact recurrent encoders over dialogues (context and speaker-level context)."""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence


def run_packed(rnn: nn.RNNBase, x: Tensor, lengths: Tensor) -> Tensor:
    """Run a ``batch_first`` RNN over ``x`` so that padding never reaches real steps.

    Args:
        rnn: a ``batch_first=True`` GRU/LSTM.
        x: ``[G, T, d]`` padded sequences.
        lengths: ``[G]`` true lengths (all ≥ 1).

    Shapes:
        - output: ``[G, T, h]`` with zeros after each sequence's end.
    """
    packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
    out, _ = rnn(packed)
    out, _ = pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
    return out


class MaskedRNN(nn.Module):
    """A bidirectional GRU/LSTM over each dialogue's real utterances.

    Args:
        in_dim: input width.
        hidden: hidden size per direction (output width ``2·hidden``).
        layers: stacked layers.
        dropout: dropout between stacked layers.
        cell: ``"gru"`` or ``"lstm"``.

    Shapes:
        - x: ``[B, L, in_dim]``; mask ``[B, L]``
        - output: ``[B, L, 2·hidden]`` (zeros at padding)
    """

    def __init__(self, in_dim: int, hidden: int, layers: int = 1, dropout: float = 0.0, cell: str = "gru") -> None:
        super().__init__()
        rnn_cls = {"gru": nn.GRU, "lstm": nn.LSTM}[cell]
        self.rnn = rnn_cls(in_dim, hidden, num_layers=layers, bidirectional=True, batch_first=True,
                           dropout=dropout if layers > 1 else 0.0)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        return run_packed(self.rnn, x, mask.sum(1))


class PartyRNN(nn.Module):
    """Speaker-level context: a bidirectional RNN over each party's own utterances.

    For every (dialogue, party) the utterances of that party are gathered in order, encoded
    by one shared RNN, and scattered back to their positions (as in DialogueCRN / MM-DFN's
    speaker-level encoder). Vectorised: one packed RNN call over ``B·S`` party sequences.

    Args:
        in_dim: input width.
        hidden: hidden size per direction (output width ``2·hidden``).
        layers: stacked layers.
        dropout: dropout between stacked layers.

    Shapes:
        - x: ``[B, L, in_dim]``; mask ``[B, L]``; speakers ``[B, L]``
        - output: ``[B, L, 2·hidden]`` (zeros at padding)
    """

    def __init__(self, in_dim: int, hidden: int, layers: int = 1, dropout: float = 0.0) -> None:
        super().__init__()
        self.rnn = nn.GRU(in_dim, hidden, num_layers=layers, bidirectional=True, batch_first=True,
                          dropout=dropout if layers > 1 else 0.0)

    def forward(self, x: Tensor, mask: Tensor, speakers: Tensor) -> Tensor:
        B, L, _ = x.shape
        S = int(speakers[mask].max()) + 1 if mask.any() else 1
        spk = speakers.clamp(0, S - 1)
        onehot = nn.functional.one_hot(spk, S) * mask.unsqueeze(-1)  # (B, L, S)
        rank = (onehot.cumsum(1) * onehot).sum(-1) - 1  # (B, L): position within the party's sequence
        group = torch.arange(B, device=x.device).unsqueeze(1) * S + spk  # (B, L)
        counts = onehot.sum(1).reshape(-1)  # (B·S,)
        present = counts > 0
        # compact ids of non-empty (dialogue, party) groups
        compact = torch.cumsum(present.long(), 0) - 1
        g = compact[group[mask]]  # (N,)
        r = rank[mask]  # (N,)
        seqs = x.new_zeros(int(present.sum()), int(counts.max()), x.shape[-1])
        seqs[g, r] = x[mask]
        out = run_packed(self.rnn, seqs, counts[present])  # (G, T, 2h)
        result = x.new_zeros(B, L, out.shape[-1])
        result[mask] = out[g, r]
        return result
