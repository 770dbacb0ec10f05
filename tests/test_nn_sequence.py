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


@pytest.mark.parametrize("cell", ["gru", "lstm"])
@pytest.mark.parametrize("layers", [1, 2])
def test_projected_input_equals_the_concatenated_input_in_training(cell, layers):
    torch.manual_seed(0)
    dims = {"t": 3, "a": 4, "v": 2}
    rnn = MaskedRNN(sum(dims.values()), 5, layers, dropout=0.0, cell=cell).train()
    mask = torch.arange(6).unsqueeze(0) < torch.tensor([6, 2, 4]).unsqueeze(1)
    parts = {m: torch.randn(3, 6, d) for m, d in dims.items()}
    plain = rnn(torch.cat(list(parts.values()), dim=-1), mask)
    grads = torch.autograd.grad(plain.sum(), list(rnn.parameters()))
    proj = rnn.input_projections(dims)
    assert [p.bias is not None for p in proj.values()] == [True, False, False]  # the bias counted once
    gates = sum(proj[m](x) for m, x in parts.items())
    assert gates.shape == (3, 6, 2 * (3 if cell == "gru" else 4) * 5)
    fast = rnn(gates, mask, projected=True)
    torch.testing.assert_close(fast, plain, atol=1e-6, rtol=1e-5)
    for g_fast, g in zip(torch.autograd.grad(fast.sum(), list(rnn.parameters())), grads):
        torch.testing.assert_close(g_fast, g, atol=1e-5, rtol=1e-4)


def test_padded_path_applies_inter_layer_dropout_in_training():
    torch.manual_seed(0)
    rnn = torch.nn.GRU(3, 4, 2, dropout=0.5, batch_first=True)
    x, lengths = torch.randn(2, 5, 3), torch.tensor([5, 3])
    train = run_padded(rnn, x, lengths)
    rnn.eval()
    assert not torch.allclose(train, run_padded(rnn, x, lengths))  # the eval path has no dropout
    assert torch.allclose(run_padded(rnn, x, lengths), run_packed(rnn, x, lengths), atol=1e-6)


def test_input_projection_blocks_must_cover_the_input():
    with pytest.raises(ValueError, match="input size"):
        MaskedRNN(9, 5).input_projections({"t": 3, "a": 4})
