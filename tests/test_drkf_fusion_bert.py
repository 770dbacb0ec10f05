"""DRKF ``faithful`` fusion = the reference's Hugging Face ``BertModel`` fed ``inputs_embeds``
(zero CLS/SEP, learned absolute positions, token type 0, no attention mask), checked against
``transformers.BertModel`` itself with the same weights."""

from __future__ import annotations

import pytest
import torch

from merc.methods.drkf.fusion import FusionEncoder

transformers = pytest.importorskip("transformers")

W, HEADS, FFN, LAYERS, MAX_POS = 8, 2, 16, 2, 12


def _bert_and_fusion() -> tuple[torch.nn.Module, FusionEncoder]:
    torch.manual_seed(0)
    config = transformers.BertConfig(hidden_size=W, num_hidden_layers=LAYERS, num_attention_heads=HEADS,
                                      intermediate_size=FFN, max_position_embeddings=MAX_POS, vocab_size=4,
                                      attn_implementation="eager")
    bert = transformers.BertModel(config).double().eval()
    fusion = FusionEncoder(W, LAYERS, HEADS, FFN, dropout=0.1, faithful=True, max_positions=MAX_POS).double().eval()
    emb = bert.embeddings
    with torch.no_grad():
        fusion.position_embedding.weight.copy_(emb.position_embeddings.weight)
        fusion.token_type_embedding.weight.copy_(emb.token_type_embeddings.weight)
        fusion.norm.load_state_dict(emb.LayerNorm.state_dict())
        for ours, theirs in zip(fusion.layers, bert.encoder.layer):
            att = theirs.attention
            ours.attn.in_proj_weight.copy_(torch.cat([att.self.query.weight, att.self.key.weight, att.self.value.weight]))
            ours.attn.in_proj_bias.copy_(torch.cat([att.self.query.bias, att.self.key.bias, att.self.value.bias]))
            ours.attn.out_proj.load_state_dict(att.output.dense.state_dict())
            ours.norm1.load_state_dict(att.output.LayerNorm.state_dict())
            ours.ff[0].load_state_dict(theirs.intermediate.dense.state_dict())
            ours.ff[3].load_state_dict(theirs.output.dense.state_dict())
            ours.norm2.load_state_dict(theirs.output.LayerNorm.state_dict())
    return bert, fusion


def _inputs(T_a: int, T_t: int) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(1)
    h_a = torch.randn(3, T_a, W, generator=g, dtype=torch.float64)
    h_t = torch.randn(3, T_t, W, generator=g, dtype=torch.float64)
    mask_a = torch.ones(3, T_a, dtype=torch.bool)
    mask_a[0, -1] = False  # the reference attends to padding anyway
    return h_a, mask_a, h_t, torch.ones(3, T_t, dtype=torch.bool)


def _reference_cls(bert: torch.nn.Module, h_a: torch.Tensor, h_t: torch.Tensor) -> torch.Tensor:
    zero = h_a.new_zeros(h_a.shape[0], 1, W)
    embeds = torch.cat([zero, h_a, zero, h_t, zero], dim=1)[:, :MAX_POS]  # the reference's truncation
    return bert(inputs_embeds=embeds).last_hidden_state[:, 0]


@pytest.mark.parametrize("T_a, T_t", [(4, 3), (6, 7)])  # (6, 7): 16 positions > 12, truncated
def test_faithful_fusion_equals_hugging_face_bert(T_a: int, T_t: int) -> None:
    bert, fusion = _bert_and_fusion()
    h_a, mask_a, h_t, mask_t = _inputs(T_a, T_t)
    with torch.no_grad():
        torch.testing.assert_close(fusion(h_a, mask_a, h_t, mask_t).cls, _reference_cls(bert, h_a, h_t))


def test_faithful_positions_are_learned_and_token_type_zero_is_used() -> None:
    _, fusion = _bert_and_fusion()
    h_a, mask_a, h_t, mask_t = _inputs(4, 3)
    with torch.no_grad():
        before = fusion(h_a, mask_a, h_t, mask_t).cls
        fusion.token_type_embedding.weight[1].add_(torch.randn(W, dtype=torch.float64))  # type 1: never used
        torch.testing.assert_close(fusion(h_a, mask_a, h_t, mask_t).cls, before)
        fusion.position_embedding.weight[3].add_(torch.randn(W, dtype=torch.float64))  # an audio position
        assert not torch.allclose(fusion(h_a, mask_a, h_t, mask_t).cls, before)
