"""Masked recurrent encoders: the padded inference path equals the packed one."""

from __future__ import annotations

import pytest
import torch

from merc.nn.sequence import MaskedRNN, PartyRNN, run_packed, run_padded, run_rnn


@pytest.mark.parametrize("cell", [torch.nn.LSTM, torch.nn.GRU])
@pytest.mark.parametrize("bidirectional", [True, False])
@pytest.mark.parametrize("layers", [1, 2])
def test_run_padded_equals_run_packed(cell, bidirectional, layers):
    torch.manual_seed(0)
    rnn = cell(7, 5, layers, bidirectional=bidirectional, batch_first=True).eval()
    lengths = torch.tensor([9, 3, 1, 6])
    x = torch.randn(4, 9, 7)
    x[torch.arange(9).unsqueeze(0) >= lengths.unsqueeze(1)] = 5.0  # padding content must not matter
    packed, padded = run_packed(rnn, x, lengths), run_padded(rnn, x, lengths)
    assert padded.shape == packed.shape == (4, 9, 5 * (1 + bidirectional))
    assert torch.allclose(padded, packed, atol=1e-6)
    assert padded[1, 3:].abs().sum() == 0  # zeros after each sequence's end


def test_run_rnn_uses_the_packed_path_when_training():
    rnn = torch.nn.GRU(3, 2, 2, dropout=0.5, batch_first=True)
    x, lengths = torch.randn(2, 4, 3), torch.tensor([4, 2])
    torch.manual_seed(1)
    a = run_rnn(rnn, x, lengths)
    torch.manual_seed(1)
    b = run_packed(rnn, x, lengths)
    assert torch.equal(a, b)


def test_masked_and_party_rnn_eval_paths_match_packed(monkeypatch):
    torch.manual_seed(0)
    mask = torch.arange(6).unsqueeze(0) < torch.tensor([6, 4, 2]).unsqueeze(1)
    speakers = torch.tensor([[0, 1, 0, 0, 1, 1], [0, 0, 1, 1, 0, 0], [0, 1, 0, 0, 0, 0]])
    x = torch.randn(3, 6, 5)
    masked, party = MaskedRNN(5, 4, 2, cell="lstm").eval(), PartyRNN(5, 4, 2).eval()
    fast = masked(x, mask), party(x, mask, speakers)
    monkeypatch.setattr("merc.nn.sequence.run_padded", run_packed)
    slow = masked(x, mask), party(x, mask, speakers)
    for a, b in zip(fast, slow):
        assert torch.allclose(a, b, atol=1e-6)
