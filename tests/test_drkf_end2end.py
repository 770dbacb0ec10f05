"""DRKF input mode 3: end to end with tiny randomly initialised Hugging Face encoders (no downloads)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from merc.data.collate import collate_dialogues
from merc.data.schema import Dialogue

SMALL = dict(width=16, layers=1, heads=2, ffn=32, ae_layers=[16, 8], n_blocks=2, ed_pairs=8)


def test_mode3_tiny_random_encoders_train_step(tmp_path: Path) -> None:
    import soundfile as sf

    from merc.methods.drkf import DRKFMethod

    rng = np.random.default_rng(0)
    dialogues = []
    for k in range(2):
        paths = []
        for u in range(2):
            p = tmp_path / f"d{k}u{u}.wav"
            n = int(16000 * (0.2 + 0.1 * (k + u)))
            sf.write(p, (0.1 * np.sin(np.arange(n) * 0.05 * (u + 1)) + 0.01 * rng.normal(size=n)).astype(np.float32),
                     16000)
            paths.append(str(p))
        dialogues.append(Dialogue(f"d{k}", ["A", "B"], {"t": np.zeros((2, 4), np.float32), "a": np.zeros((2, 3), np.float32)},
                                  np.array([0, 1]), texts=[f"hello number {k}", "a longer sentence here"],
                                  media={"a": paths}))
    text_cfg = {"model_type": "bert", "vocab_size": 300, "hidden_size": 16, "num_hidden_layers": 1,
                "num_attention_heads": 2, "intermediate_size": 32, "max_position_embeddings": 64}
    audio_cfg = {"model_type": "wav2vec2", "hidden_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2,
                 "intermediate_size": 32, "conv_dim": [8, 8], "conv_kernel": [10, 3], "conv_stride": [5, 2],
                 "num_feat_extract_layers": 2, "num_conv_pos_embeddings": 16, "num_conv_pos_embedding_groups": 2}
    torch.manual_seed(0)
    method = DRKFMethod({"t": 4, "a": 3}, 2, input_mode="end2end", text_encoder=text_cfg, audio_encoder=audio_cfg,
                        max_text_tokens=32, **SMALL)
    batch = collate_dialogues(dialogues, ["t", "a"])
    assert len(batch.media["a"]) == 4
    seqs = method.encode(batch)
    assert seqs["t"][0].shape[0] == 4 and seqs["a"][0].shape[-1] == 16
    lengths_a = seqs["a"][1].sum(1)
    assert bool((lengths_a[1:] >= lengths_a[:1]).all()) and int(lengths_a.min()) < seqs["a"][1].shape[1]
    opt = torch.optim.Adam(method.parameters(), 1e-3)
    before = method.inputs["end2end"].audio_model.feature_projection.projection.weight.detach().clone()
    loss, terms, out = method.training_loss(batch)
    loss.backward()
    opt.step()
    assert torch.isfinite(loss) and out.logits.shape == (4, 2)
    after = method.inputs["end2end"].audio_model.feature_projection.projection.weight
    assert not torch.equal(before, after)  # the encoders are trained end to end
