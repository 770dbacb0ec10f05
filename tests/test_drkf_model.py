"""DRKFMethod: padding invariance, input modes, config validation, explanation, state round trip."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
import yaml

from merc.config import bundled_defaults
from merc.data.collate import Batch, collate_dialogues
from merc.data.schema import Dialogue
from merc.errors import ConfigError, DataError
from merc.methods.drkf import DRKFConfig, DRKFMethod
from merc.registry import METHODS

DIMS = {"t": 6, "a": 5}
SMALL = dict(width=16, layers=1, heads=2, ffn=32, ae_layers=[12, 8], n_blocks=2, dropout=0.0)


def make_dialogues(n: int = 2, length: int = 3, seed: int = 0, frames: bool = True) -> list[Dialogue]:
    rng = np.random.default_rng(seed)
    out = []
    for k in range(n):
        seqs = {m: [rng.normal(size=(int(rng.integers(2, 6)), d)).astype(np.float32) for _ in range(length)]
                for m, d in DIMS.items()} if frames else {}
        feats = {m: rng.normal(size=(length, d)).astype(np.float32) for m, d in DIMS.items()}
        out.append(Dialogue(f"d{k}", ["A", "B"] * (length // 2) + ["A"] * (length % 2), feats,
                            rng.integers(0, 3, size=length), sequences=seqs))
    return out


def make_method(**options: object) -> DRKFMethod:
    torch.manual_seed(0)
    return DRKFMethod(DIMS, 3, **{**SMALL, **options})


def with_garbage_padding(batch: Batch, extra: int, seed: int = 1) -> Batch:
    """Append ``extra`` padded frames full of large garbage and fill existing padding with garbage."""
    g = torch.Generator().manual_seed(seed)
    seqs = {}
    for m, (x, mask) in batch.sequences.items():
        N, T, d = x.shape
        x2 = torch.cat([x, torch.zeros(N, extra, d)], dim=1)
        mask2 = torch.cat([mask, torch.zeros(N, extra, dtype=torch.bool)], dim=1)
        garbage = 1e3 * torch.randn(N, T + extra, d, generator=g)
        seqs[m] = (torch.where(mask2.unsqueeze(-1), x2, garbage), mask2)
    return dataclasses.replace(batch, sequences=seqs)


def test_padding_changes_nothing_in_default_mode() -> None:
    method = make_method(input_mode="frames", ed_pairs=0).eval()
    batch = collate_dialogues(make_dialogues())
    padded = with_garbage_padding(batch, extra=4)
    out, out_p = method(batch), method(padded)
    torch.testing.assert_close(out.logits, out_p.logits, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out.extras["cls_attention"], out_p.extras["cls_attention"], atol=1e-5, rtol=1e-5)
    terms, terms_p = method.orl_terms(method.encode(batch)), method.orl_terms(method.encode(padded))
    for name in terms:
        torch.testing.assert_close(terms[name], terms_p[name], atol=1e-5, rtol=1e-5)
    torch.manual_seed(3)
    loss = method.training_loss(batch)[0]
    torch.manual_seed(3)
    torch.testing.assert_close(loss, method.training_loss(padded)[0], atol=1e-5, rtol=1e-5)


def test_faithful_mode_lets_padding_leak() -> None:
    method = make_method(input_mode="frames", faithful=True).eval()
    batch = collate_dialogues(make_dialogues())
    assert not torch.allclose(method(batch).logits, method(with_garbage_padding(batch, 4)).logits, atol=1e-3)


def test_faithful_mode_uses_zero_special_tokens_and_no_modality_type_embeddings() -> None:
    method = make_method(input_mode="frames", faithful=True).eval()
    batch = collate_dialogues(make_dialogues())
    before = method(batch).logits
    with torch.no_grad():  # random shifts (a constant one would be removed by the LayerNorm)
        method.fusion.cls.add_(torch.randn(16))
        method.fusion.sep.add_(torch.randn(16))
        method.fusion.type_embedding.weight.add_(torch.randn(3, 16))
    torch.testing.assert_close(method(batch).logits, before)
    default = make_method(input_mode="frames").eval()
    before = default(batch).logits
    with torch.no_grad():
        default.fusion.cls.add_(torch.randn(16))
    assert not torch.allclose(default(batch).logits, before)


def test_ed_padding_invariant_with_fixed_pairs() -> None:
    method = make_method(input_mode="frames").eval()
    batch = collate_dialogues(make_dialogues())
    i, j = torch.tensor([0, 1, 4]), torch.tensor([2, 5, 0])
    a = method.fuse(method.encode(batch), i, j).cls
    b = method.fuse(method.encode(with_garbage_padding(batch, 3)), i, j).cls
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_training_loss_terms_and_gradients() -> None:
    method = make_method(input_mode="frames", ed_pairs=8)
    batch = collate_dialogues(make_dialogues())
    loss, terms, out = method.training_loss(batch)
    assert set(terms) >= {"ce", "ed", "ntx_t", "ntx_a", "infonce_at", "mse_t", "mse_a", "kl", "tau"}
    assert out.logits.shape == (batch.num_utterances, 3)
    cfg = method.config
    expected = (cfg.w_ce * terms["ce"] + cfg.w_ed * terms["ed"]
                + cfg.w_contrastive * (terms["ntx_t"] + terms["ntx_a"] + terms["infonce_at"])
                + cfg.w_recon * (terms["mse_t"] + terms["mse_a"]) + cfg.w_kl * terms["kl"])
    torch.testing.assert_close(loss.detach(), expected)
    loss.backward()
    # ORL gradients reach the trainable adapters; the temperature learns
    assert method.inputs["frames"].adapters["a"].net[0].weight.grad.abs().sum() > 0
    assert method.temperature.theta.grad is not None


def test_orl_gradients_alone_reach_adapter() -> None:
    method = make_method(input_mode="frames")
    terms = method.orl_terms(method.encode(collate_dialogues(make_dialogues())))
    sum(terms.values()).backward()
    assert method.inputs["frames"].adapters["t"].net[0].weight.grad.abs().sum() > 0


def test_auto_mode_resolves_and_is_saved() -> None:
    method = make_method()
    assert method.input_mode is None
    method(collate_dialogues(make_dialogues(frames=False)))
    assert method.input_mode == "lite"
    frames_model = make_method()
    frames_model(collate_dialogues(make_dialogues()))
    assert frames_model.input_mode == "frames"
    state = frames_model.state_dict()
    fresh = make_method()
    fresh.load_state_dict(state)
    assert fresh.input_mode == "frames"
    with pytest.raises(DataError, match="frame-level"):
        fresh(collate_dialogues(make_dialogues(frames=False)))


def test_lite_chunks() -> None:
    method = make_method(input_mode="lite", lite_chunks=3)
    seqs = method.encode(collate_dialogues(make_dialogues(frames=False)))
    assert seqs["t"][0].shape == (6, 3, 16) and bool(seqs["a"][1].all())
    method.training_loss(collate_dialogues(make_dialogues(frames=False)))[0].backward()


def test_frames_mode_without_frames_is_a_clear_error() -> None:
    method = make_method(input_mode="frames")
    with pytest.raises(DataError, match="input_mode=lite"):
        method(collate_dialogues(make_dialogues(frames=False)))


def test_config_errors() -> None:
    with pytest.raises(ConfigError, match="text and audio"):
        DRKFMethod({"t": 4, "v": 3}, 3)
    with pytest.raises(ConfigError, match="no backbone"):
        DRKFMethod(DIMS, 3, backbone="mmgcn")
    with pytest.raises(ConfigError, match="valid options"):
        DRKFMethod(DIMS, 3, widht=8)
    with pytest.raises(ConfigError, match="kl_mode"):
        DRKFConfig(kl_mode="kl")
    with pytest.raises(ConfigError, match="divisible"):
        DRKFConfig(width=10, heads=4)
    with pytest.raises(ConfigError, match="end2end"):
        DRKFConfig(input_mode="end2end")


def test_visual_is_ignored_and_registry_builds() -> None:
    method = METHODS.create("drkf", input_dims={**DIMS, "v": 7}, num_classes=3, num_speakers=2,
                            backbone="late_fusion", backbone_options={"hidden": 8}, **SMALL)
    assert method.modalities == ["t", "a"]


def test_bundled_yaml_is_valid_and_matches_dataclass_defaults() -> None:
    raw = bundled_defaults("methods", "drkf")
    cfg = DRKFConfig.from_options(raw)
    assert cfg == DRKFConfig()
    assert DRKFConfig.reference().width == 1024 and DRKFConfig.reference().layers == 6
    yaml.safe_dump(dataclasses.asdict(cfg))


def test_explain_attention_mass() -> None:
    method = make_method(input_mode="frames")
    batch = collate_dialogues(make_dialogues())
    exp = method.explain(batch)
    assert method.training  # restored
    per = exp["per_utterance"]
    assert per["attention"].shape == (batch.num_utterances, 3)
    assert per["attention_layers"].shape == (batch.num_utterances, 1, 3)
    np.testing.assert_allclose(per["attention"].sum(1), 1.0, atol=1e-5)
    assert set(per["dominant"]) <= {"a", "t"}
    assert exp["info"]["parts"] == ["a", "t", "special"]
    assert DRKFMethod.explanation_kind == "modality_attention"


def test_published_kl_mode_runs() -> None:
    method = make_method(input_mode="lite", kl_mode="published")
    loss, terms, _ = method.training_loss(collate_dialogues(make_dialogues(frames=False)))
    assert torch.isfinite(loss)


def test_unlabelled_batch_gives_finite_loss() -> None:
    dialogues = make_dialogues(frames=False)
    for d in dialogues:
        d.labels = np.full(len(d), -1)
    loss, terms, _ = make_method(input_mode="lite").training_loss(collate_dialogues(dialogues))
    assert torch.isfinite(loss) and terms["ce"].item() == 0.0


def test_auto_mode_leaves_no_parameter_unused() -> None:
    """Whichever mode auto resolves to, every parameter gets a gradient (DDP needs no unused-parameter search)."""
    for frames in (True, False):
        method = make_method()
        method.training_loss(collate_dialogues(make_dialogues(frames=frames)))[0].backward()
        unused = [n for n, p in method.named_parameters() if p.grad is None]
        assert unused == [], unused
