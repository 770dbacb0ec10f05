"""``merc finetune``: context inputs, one fine-tuning step on a few MELD dialogues, the saved
encoder, direct prediction and the exported features feeding ``merc train``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from merc.cli import main
from merc.data.formats.user_format import read_user_dataset
from merc.data.schema import Dialogue
from merc.errors import DataError
from merc.finetune import build_inputs, load_finetuned, predict_proba
from merc.finetune.inputs import BucketBatchSampler, bucketed_batches, collate
from merc.finetune.run import encoder_path, load_encoder
from merc.inference import Predictor


@pytest.fixture(scope="module")
def tokenizer():
    return load_encoder("minilm")[0]


def test_context_inputs_keep_the_target_and_the_most_recent_context(tokenizer) -> None:
    lines = ["one two three four five six", "seven eight nine ten", "the target line"]
    dialogue = Dialogue("d", ["Ann", "Bob", "Ann"], texts=lines, labels=np.array([0, 1, 2]))
    inputs = build_inputs([dialogue], tokenizer, context=8, max_length=16)
    assert len(inputs) == 3 and inputs.labels.tolist() == [0, 1, 2]
    pieces = tokenizer([f"{s}: {t}" for s, t in zip(dialogue.speakers, lines)], add_special_tokens=False)["input_ids"]
    ids, seg = inputs.ids[2], inputs.segments[2]
    assert len(ids) == 16 and ids[0] == tokenizer.cls_token_id and ids[seg - 1] == ids[-1] == tokenizer.sep_token_id
    assert ids[seg:-1] == pieces[2]  # the target is whole ...
    past = pieces[0] + pieces[1]
    assert ids[1:seg - 1] == past[len(past) - (seg - 2):]  # ... and the oldest context went first
    assert inputs.ids[0][1] == tokenizer.sep_token_id  # no context before the first utterance
    assert build_inputs([dialogue], tokenizer, context=0, max_length=64).segments == [2, 2, 2]
    batch = collate(inputs, [0, 2])
    assert batch["input_ids"].shape == (2, 16) and batch["attention_mask"][0].sum() == len(inputs.ids[0])
    assert batch["token_type_ids"][1, seg:].tolist() == [1] * (16 - seg) and batch["token_type_ids"][1, :seg].sum() == 0


def test_context_that_fits_is_kept_whole(tokenizer) -> None:
    # regression: a negative slice start kept only the last (budget - len(past)) context tokens
    lines = ["one two three four five six", "seven eight nine ten", "the target line"]
    dialogue = Dialogue("d", ["Ann", "Bob", "Ann"], texts=lines, labels=np.array([0, 1, 2]))
    pieces = tokenizer([f"{s}: {t}" for s, t in zip(dialogue.speakers, lines)], add_special_tokens=False)["input_ids"]
    inputs = build_inputs([dialogue], tokenizer, context=8, max_length=128)
    ids, seg = inputs.ids[2], inputs.segments[2]
    assert ids[1:seg - 1] == pieces[0] + pieces[1] and ids[seg:-1] == pieces[2]
    assert len(ids) == len(pieces[0]) + len(pieces[1]) + len(pieces[2]) + 3
    assert build_inputs([dialogue], tokenizer, context=1, max_length=128).ids[2][1:seg - 1 - len(pieces[0])] == pieces[1]


def test_bucketed_batches_cover_every_sample_once_with_little_padding() -> None:
    rng = np.random.default_rng(0)
    lengths = rng.integers(5, 120, size=1003).tolist()
    batches = bucketed_batches(lengths, 16, seed=3, epoch=0, pool=50)
    assert sorted(i for b in batches for i in b) == list(range(1003))
    assert all(1 <= len(b) <= 16 for b in batches)
    padded = lambda bs: sum(max(lengths[i] for i in b) * len(b) for b in bs)  # noqa: E731
    plain = bucketed_batches(lengths, 16, seed=3, epoch=0, pool=1)
    assert padded(batches) < 0.8 * padded(plain) and padded(batches) >= sum(lengths)
    assert bucketed_batches(lengths, 16, 3, 1, 50) != batches  # reshuffled every epoch ...
    assert bucketed_batches(lengths, 16, 3, 0, 50) == batches  # ... reproducibly
    sampler = BucketBatchSampler(lengths, 16, seed=3, pool=50)
    first, second = list(sampler), list(sampler)
    assert first == batches and second != first and len(sampler) == len(first) == len(second)
    assert len(BucketBatchSampler(lengths, 16, pool=1)) == len(plain) == 63
    with pytest.raises(ValueError, match="at least 1"):
        bucketed_batches(lengths, 0)


def test_one_finetuning_step_on_meld_dialogues_then_train_on_its_features(shared_data: Path, tmp_path: Path) -> None:
    out, feats = tmp_path / "ft", tmp_path / "ft_features.csv"
    code = main(["finetune", "meld", "--data-path", str(shared_data / "meld"), "--out", str(out),
                 "--limit-dialogues", "2", "--max-steps", "1", "--max-length", "32", "--batch-size", "8", "--bucket", "1",
                 "--threads", "1", "--accelerator", "cpu", "--no-progress", "--export-features", str(feats)])
    assert code == 0
    record = json.loads((out / "finetune.json").read_text())
    assert record["timing"]["steps"] == 1 and record["timing"]["train_samples"] == 8
    assert set(record["metrics"]) == {"dev", "test"} and record["precision"] == "32-true"

    model, _, _ = load_finetuned(out)
    base = load_encoder("minilm")[1]
    name = "embeddings.word_embeddings.weight"
    assert not torch.equal(dict(model.encoder.named_parameters())[name], dict(base.named_parameters())[name])
    assert Path(encoder_path("minilm")).is_dir()

    data = read_user_dataset(feats)
    assert data.dims == {"t": 384} and len(data) == 6  # 2 dialogues of each split
    spec = data.meta["feature_spec"]["t"]
    assert spec["name"] == "merc-finetune" and spec["settings"]["max_length"] == 32 and spec["dim"] == 384
    # the classifier predicts directly: probabilities = softmax(head(exported features))
    probs = predict_proba(out, data.dialogues)
    x = torch.from_numpy(np.concatenate([d.features["t"] for d in data.dialogues]))
    with torch.no_grad():
        expected = torch.softmax(model.head(x), -1).numpy()
    np.testing.assert_allclose(probs, expected, atol=1e-5)
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-5)

    assert main(["train", "--dataset", str(feats), "--modalities", "t", "--epochs", "1", "--seeds", "0",
                 "--out", str(tmp_path / "run"), "--no-progress"]) == 0
    # new conversations: encode them with the fine-tuned encoder, then predict with the trained backbone
    conv = tmp_path / "new.csv"
    conv.write_text("dialogue_id,speaker,text\nc1,Ann,We won!\nc1,Bob,No way!\n", encoding="utf-8")
    assert main(["finetune", str(conv), "--trained", str(out), "--export-features", str(tmp_path / "new_ft.csv"),
                 "--no-progress"]) == 0
    rows = Predictor.from_dir(tmp_path / "run" / "seed_0").predict(tmp_path / "new_ft.csv")
    assert len(rows) == 2 and all(sum(r["probabilities"].values()) == pytest.approx(1.0, abs=1e-5) for r in rows)
    with pytest.raises(DataError, match="features__t"):  # raw text alone: merc cannot recompute these features
        Predictor.from_dir(tmp_path / "run" / "seed_0").predict(conv)


def test_class_weighted_finetuning_loss() -> None:
    """``--class-weight-power`` weights the cross-entropy with the train split's class weights."""
    from merc.finetune.model import LitContextClassifier
    from merc.finetune.run import FinetuneConfig
    from merc.errors import ConfigError

    class Tiny(torch.nn.Module):
        def forward(self, input_ids, attention_mask, token_type_ids):
            return torch.nn.functional.one_hot(input_ids[:, 0], 3).float() * 2.0  # (B, C)

    batch = {"input_ids": torch.tensor([[0], [1], [2], [2]]), "attention_mask": torch.ones(4, 1, dtype=torch.long),
             "token_type_ids": torch.zeros(4, 1, dtype=torch.long), "labels": torch.tensor([1, 1, 2, -1])}
    weights = torch.tensor([1.0, 3.0, 0.5])
    plain = LitContextClassifier(Tiny(), ["a", "b", "c"])
    weighted = LitContextClassifier(Tiny(), ["a", "b", "c"], class_weights=weights)
    for module in (plain, weighted):
        module.log = lambda *a, **k: None
    logits = Tiny()(batch["input_ids"], None, None)[:3]
    per = torch.nn.functional.cross_entropy(logits, batch["labels"][:3], reduction="none")
    assert plain.training_step(batch, 0).item() == pytest.approx(per.mean().item())
    expected = (per * weights[batch["labels"][:3]]).sum() / weights[batch["labels"][:3]].sum()
    assert weighted.training_step(batch, 0).item() == pytest.approx(expected.item())
    assert "class_weights" not in weighted.state_dict()
    with pytest.raises(ConfigError, match="class-weight-power"):
        FinetuneConfig(class_weight_power=-1)
