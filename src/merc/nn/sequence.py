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


def run_padded(rnn: nn.RNNBase, x: Tensor, lengths: Tensor, projected: bool = False) -> Tensor:
    """:func:`run_packed`'s result computed on the padded batch.

    A packed RNN on CPU runs its input projection one time step at a time; a padded one
    computes it for all steps in one matrix product. Padding sits after each sequence, so
    the forward direction never sees it before a real step, and the backward direction is
    run forward over each sequence reversed within its own length. Layers are run one at a
    time with the RNN's own weights; outputs equal :func:`run_packed`'s up to float rounding.
    In training mode the RNN's inter-layer dropout is applied to every layer's output but the
    last, as ``nn.GRU``/``nn.LSTM`` do (same distribution, not the same random draws). The RNN
    must be a ``batch_first`` :class:`~torch.nn.LSTM` (without ``proj_size``) or
    :class:`~torch.nn.GRU`.

    Args:
        rnn: the RNN whose weights are used.
        x: the input sequences, or with ``projected`` the first layer's input projections
            already applied (:func:`input_projection`: ``W_ih x + b_ih`` of every direction,
            concatenated), so that a caller whose inputs differ linearly (DnR's views) computes
            that product once. Layer 0 then runs on them with an identity input weight.
        lengths: true lengths.
        projected: see ``x``.

    Shapes:
        - x: ``[G, T, d]`` (``[G, T, directions·gates·h]`` with ``projected``); lengths ``[G]`` (all ≥ 1)
        - output: ``[G, T, h·directions]`` with zeros after each sequence's end.
    """
    G, T, _ = x.shape
    steps = torch.arange(T, device=x.device).unsqueeze(0)  # (1, T)
    lengths = lengths.to(x.device).unsqueeze(1)  # (G, 1)
    valid = steps < lengths  # (G, T)
    # flat row index that flips each sequence within its length (padding stays in place)
    reverse = (torch.where(valid, lengths - 1 - steps, steps) + T * torch.arange(G, device=x.device).unsqueeze(1)).reshape(-1)

    def flip(seq: Tensor) -> Tensor:  # (G, T, d) → (G, T, d); its own inverse
        return seq.reshape(G * T, -1).index_select(0, reverse).view(G, T, -1)

    layer = {nn.LSTM: torch.lstm, nn.GRU: torch.gru}[type(rnn)]
    h0 = x.new_zeros(1, G, rnn.hidden_size)
    hx = (h0, h0) if isinstance(rnn, nn.LSTM) else h0
    suffixes = ("", "_reverse")[:1 + int(rnn.bidirectional)]
    gates = rnn.weight_hh_l0.shape[0]  # 3h (GRU) or 4h (LSTM)
    out = x
    for k in range(rnn.num_layers):
        directions = []
        for d, suffix in enumerate(suffixes):
            params = [getattr(rnn, f"{name}_l{k}{suffix}") for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
                      if rnn.bias or name.startswith("weight")]
            inp = out
            if projected and k == 0:  # this direction's precomputed gates, through an identity input weight
                inp = out[..., d * gates:(d + 1) * gates]
                params[0] = torch.eye(gates, dtype=x.dtype, device=x.device)
                if rnn.bias:
                    params[2] = x.new_zeros(gates)
            y = layer(flip(inp) if suffix else inp, hx, params, rnn.bias, 1, 0.0, False, False, True)[0]  # (G, T, h)
            directions.append(flip(y) if suffix else y)
        out = torch.cat(directions, dim=-1) if len(directions) > 1 else directions[0]
        if rnn.training and rnn.dropout > 0 and k < rnn.num_layers - 1:
            out = nn.functional.dropout(out, rnn.dropout, training=True)
    return out * valid.unsqueeze(-1)


def run_rnn(rnn: nn.RNNBase, x: Tensor, lengths: Tensor) -> Tensor:
    """:func:`run_packed` when training, the faster equivalent :func:`run_padded` in eval mode."""
    if rnn.training or not rnn.batch_first or getattr(rnn, "proj_size", 0) or type(rnn) not in (nn.LSTM, nn.GRU):
        return run_packed(rnn, x, lengths)
    return run_padded(rnn, x, lengths)


class InputProjection(nn.Module):
    """A column block of an RNN's first-layer input weights, as a ``Linear`` (DnR's view trick).

    ``W = [W_ih^fwd; W_ih^rev][:, start:stop]`` (``[directions·gates·h, stop − start]``), and
    ``b = [b_ih^fwd; b_ih^rev]`` when ``with_bias`` (give it to exactly one block, so that the
    sum of all blocks' outputs is the layer's full input projection). Built on the fly from
    the RNN's own parameters: nothing new is stored, gradients reach the RNN's weights.

    Shapes:
        - x: ``[..., stop − start]`` → ``[..., directions·gates·h]``
    """

    def __init__(self, rnn: nn.RNNBase, start: int, stop: int, with_bias: bool) -> None:
        super().__init__()
        suffixes = ("", "_reverse")[:1 + int(rnn.bidirectional)]
        self.weight = torch.cat([getattr(rnn, f"weight_ih_l0{s}")[:, start:stop] for s in suffixes])
        self.bias = torch.cat([getattr(rnn, f"bias_ih_l0{s}") for s in suffixes]) if with_bias and rnn.bias else None

    def forward(self, x: Tensor) -> Tensor:
        return nn.functional.linear(x, self.weight, self.bias)


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

    def input_projections(self, dims: dict[str, int]) -> dict[str, InputProjection]:
        """The first layer's input projection split by the column blocks of a concatenated
        input (``dims``: block name → width, in concatenation order); the bias goes with the
        first block. ``Σ_m proj[m](x_m)`` equals the layer's input projection of ``[x_1; …]``."""
        if sum(dims.values()) != self.rnn.input_size:
            raise ValueError(f"input blocks {dims} do not add up to the RNN's input size {self.rnn.input_size}")
        out, start = {}, 0
        for i, (name, width) in enumerate(dims.items()):
            out[name] = InputProjection(self.rnn, start, start + width, with_bias=i == 0)
            start += width
        return out

    def forward(self, x: Tensor, mask: Tensor, projected: bool = False) -> Tensor:
        """``projected``: ``x`` is the summed output of :meth:`input_projections` (``[B, L,
        2·gates·hidden]``); the padded path then runs with it as layer 0's input (in training too)."""
        if projected:
            return run_padded(self.rnn, x, mask.sum(1), projected=True)
        return run_rnn(self.rnn, x, mask.sum(1))


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
        out = run_rnn(self.rnn, seqs, counts[present])  # (G, T, 2h)
        result = x.new_zeros(B, L, out.shape[-1])
        result[mask] = out[g, r]
        return result
