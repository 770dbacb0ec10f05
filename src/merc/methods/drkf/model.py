"""``--method drkf``: Decoupled Representations with Knowledge Fusion (arXiv 2508.01644).

Utterance-level (no dialogue context) text + audio model: dialogues are flattened into their
utterances (batch-major, as everywhere in the library). Per modality an input encoder
(:mod:`merc.methods.drkf.inputs`) yields ``H_m [N, T_m, d]``; ORL (projection heads, residual
autoencoder augmentation, contrastive, reconstruction and consistency terms) regularises it; KF
fuses ``[CLS; H_a; SEP; H_t; SEP]`` and classifies the CLS vector (EC), with emotion
discrimination (ED) over cross-utterance pairs as an auxiliary task.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from merc.data.collate import Batch
from merc.errors import ConfigError, DataError
from merc.methods.base import Method, MethodOutput
from merc.methods.drkf.config import DRKFConfig
from merc.methods.drkf.fusion import ATTENTION_PARTS, FusionEncoder, FusionOutput
from merc.methods.drkf.heads import EmotionClassifier, EmotionDiscriminator, sample_pairs
from merc.methods.drkf.inputs import DRKF_MODALITIES, INPUT_ENCODERS, Sequences, build_auto, has_frames
from merc.methods.drkf.losses import info_nce, label_consistency, masked_mean, masked_mse, nt_xent
from merc.methods.drkf.orl import LearnableTemperature, ProjectionHead, ResidualAugmenter
from merc.registry import METHODS

#: code of the input mode recorded in the ``resolved_mode`` buffer (0 = not resolved yet)
MODE_CODES = {"frames": 1, "lite": 2, "end2end": 3}
DEFAULT_BACKBONES = (None, "", "none", "late_fusion")


@dataclass
class DRKFParts:
    """Intermediate tensors of one forward pass (what the loss needs)."""

    sequences: Sequences
    fused: FusionOutput
    logits: Tensor


@METHODS.register("drkf")
class DRKFMethod(Method):
    """DRKF: ORL + knowledge fusion on text and audio, utterance-level (METHODS.md §3).

    Loss: ``w_ce·CE + w_ed·ED + w_contrastive·(NTX_t + NTX_a + InfoNCE_at) + w_recon·(MSE_t + MSE_a)
    + w_kl·KL`` (reference weights 1, 0.2, 0.2, 0.2, 1).

    Args:
        input_dims: modality → utterance feature dimension; needs ``t`` and ``a`` (``v`` is ignored).
        num_classes: number of classes ``C``.
        num_speakers: unused (DRKF has no dialogue context); kept for the method contract.
        backbone: DRKF has no backbone; only the default (``late_fusion``/``none``) is accepted and ignored.
        backbone_options: ignored.
        **options: :class:`~merc.methods.drkf.config.DRKFConfig` fields.

    Shapes:
        - forward: logits ``[N, C]``, representation ``[N, width]``, extras
          ``cls_attention [N, layers, 3]`` (audio, text, special).
    """

    explanation_kind = "modality_attention"

    options_class = DRKFConfig

    def __init__(self, input_dims: dict[str, int], num_classes: int, num_speakers: int = 2,
                 backbone: str | None = "late_fusion", backbone_options: dict[str, Any] | None = None,
                 **options: Any) -> None:
        missing = [m for m in DRKF_MODALITIES if m not in input_dims]
        if missing:
            raise ConfigError(f"method drkf uses text and audio; modality {', '.join(missing)} is missing "
                              f"(got {''.join(input_dims) or 'none'}); set data.modalities to include 'ta'")
        if backbone not in DEFAULT_BACKBONES:
            raise ConfigError(f"method drkf has no backbone; drop --backbone (got '{backbone}')")
        dims = {m: int(input_dims[m]) for m in DRKF_MODALITIES}
        super().__init__(dims, num_classes, num_speakers)
        self.config = DRKFConfig.from_options(options)
        cfg = self.config
        self.inputs = nn.ModuleDict(build_auto(dims, cfg) if cfg.input_mode == "auto"
                                    else {cfg.input_mode: INPUT_ENCODERS[cfg.input_mode](dims, cfg)})
        fixed = MODE_CODES.get(cfg.input_mode, 0)
        self.register_buffer("resolved_mode", torch.tensor(fixed, dtype=torch.long))
        w = cfg.width
        self.projection = nn.ModuleDict({m: ProjectionHead(w) for m in DRKF_MODALITIES})
        self.augmenter = nn.ModuleDict({m: ResidualAugmenter(w, cfg.ae_layers, cfg.n_blocks) for m in DRKF_MODALITIES})
        self.label_heads = nn.ModuleDict({m: nn.Linear(w, num_classes) for m in DRKF_MODALITIES})
        self.temperature = LearnableTemperature(cfg.temperature_init)
        self.fusion = FusionEncoder(w, cfg.layers, cfg.heads, cfg.ffn, cfg.dropout, cfg.faithful, cfg.max_positions)
        self.classifier = EmotionClassifier(w, num_classes, cfg.dropout)
        self.discriminator = EmotionDiscriminator(w)

    # -- input -----------------------------------------------------------------------------
    @property
    def input_mode(self) -> str | None:
        """The input mode in use (``None`` while ``auto`` has not seen a batch yet)."""
        code = int(self.resolved_mode)
        return next((m for m, c in MODE_CODES.items() if c == code), None)

    def encode(self, batch: Batch) -> Sequences:
        """Per-modality ``(H [N, T, width], mask [N, T])`` of the batch's utterances."""
        mode = self.input_mode
        if mode is None:  # auto, first batch: frames when the data carries them
            mode = "frames" if has_frames(batch) else "lite"
            self.resolved_mode.fill_(MODE_CODES[mode])
        elif mode == "frames" and self.config.input_mode == "auto" and not has_frames(batch):
            raise DataError("batch", "this DRKF model was trained on frame-level features but the data has none",
                            field="sequences", fix="extract the same frame-level features for this data")
        seqs = self.inputs[mode](batch)
        if self.config.faithful:  # published: padding counted in pooling and reconstruction
            seqs = {m: (h, torch.ones_like(k)) for m, (h, k) in seqs.items()}
        return seqs

    def fuse(self, seqs: Sequences, index_a: Tensor | None = None, index_t: Tensor | None = None) -> FusionOutput:
        """Fusion of audio utterances ``index_a`` with text utterances ``index_t`` (default: same)."""
        (h_a, m_a), (h_t, m_t) = seqs["a"], seqs["t"]
        if index_a is not None:
            h_a, m_a = h_a[index_a], m_a[index_a]
            h_t, m_t = h_t[index_t], m_t[index_t]
        return self.fusion(h_a, m_a, h_t, m_t)

    def parts(self, batch: Batch) -> DRKFParts:
        seqs = self.encode(batch)
        fused = self.fuse(seqs)
        return DRKFParts(seqs, fused, self.classifier(fused.cls))

    def forward(self, batch: Batch) -> MethodOutput:
        p = self.parts(batch)
        return MethodOutput(p.logits, p.fused.cls, {"cls_attention": p.fused.cls_attention})

    # -- objective ---------------------------------------------------------------------------
    def orl_terms(self, seqs: Sequences) -> dict[str, Tensor]:
        """ORL losses: NT-Xent per modality, InfoNCE a→t, masked MSE per modality, consistency KL."""
        cfg = self.config
        tau = self.temperature()
        z, z_hat, recon = {}, {}, {}
        for m in DRKF_MODALITIES:
            h, mask = seqs[m]
            pooled = h[:, 0] if (m == "t" and cfg.text_pool == "first") else masked_mean(h, mask)
            z[m] = self.projection[m](pooled)  # (N, d)
            h_hat = self.augmenter[m](h)  # (N, T, d)
            z_hat[m] = masked_mean(h_hat, mask)
            recon[m] = masked_mse(h_hat, h, mask)
        head_t = self.label_heads["t"]
        # the reference scores its "audio" term with the text classifier too (published mode ignores it)
        head_a = head_t if cfg.kl_mode == "published" else self.label_heads["a"]
        kl = label_consistency((head_t(z["t"]), head_t(z_hat["t"])), (head_a(z["a"]), head_a(z_hat["a"])),
                               cfg.kl_mode)
        return {"ntx_t": nt_xent(z["t"], z_hat["t"], tau), "ntx_a": nt_xent(z["a"], z_hat["a"], tau),
                "infonce_at": info_nce(z["a"], z["t"], tau, cfg.infonce_symmetric),
                "mse_t": recon["t"], "mse_a": recon["a"], "kl": kl}

    def ed_loss(self, seqs: Sequences, labels: Tensor) -> Tensor:
        """Emotion discrimination over sampled pairs ``(a_i, t_j)``, ``i ≠ j``: same label or not."""
        i, j, same = sample_pairs(labels, self.config.ed_pairs)
        if i.numel() == 0:
            return labels.new_zeros((), dtype=torch.float32)
        return F.cross_entropy(self.discriminator(self.fuse(seqs, i, j).cls), same)

    def training_loss(self, batch: Batch, class_weights: Tensor | None = None
                      ) -> tuple[Tensor, dict[str, Tensor], MethodOutput]:
        cfg = self.config
        p = self.parts(batch)
        labels = batch.labels_flat
        if bool((labels >= 0).any()):
            weight = class_weights.to(p.logits.device) if class_weights is not None else None
            ce = F.cross_entropy(p.logits, labels, weight=weight, ignore_index=-1)
        else:
            ce = p.logits.sum() * 0.0
        terms = self.orl_terms(p.sequences)
        terms["ce"] = ce
        terms["ed"] = self.ed_loss(p.sequences, labels) if cfg.w_ed > 0 else ce.new_zeros(())
        total = (cfg.w_ce * ce + cfg.w_ed * terms["ed"]
                 + cfg.w_contrastive * (terms["ntx_t"] + terms["ntx_a"] + terms["infonce_at"])
                 + cfg.w_recon * (terms["mse_t"] + terms["mse_a"]) + cfg.w_kl * terms["kl"])
        logged = {k: v.detach() for k, v in terms.items()}
        logged["tau"] = self.temperature().detach()
        return total, logged, MethodOutput(p.logits, p.fused.cls, {"cls_attention": p.fused.cls_attention})

    # -- explanation -------------------------------------------------------------------------
    @torch.no_grad()
    def explain(self, batch: Batch) -> dict[str, Any]:
        """CLS attention mass per modality for every prediction (see docs/drkf.md).

        Returns ``{"per_utterance": {...}, "info": {...}}``; per-utterance arrays have ``N`` rows
        in ``labels_flat`` order: ``dialogue_id``, ``position``, ``label``, ``probs [N, C]``,
        ``attention [N, 3]`` (mass of the CLS query on audio, text, special tokens in the last
        fusion layer, heads averaged), ``attention_layers [N, layers, 3]`` and ``dominant``
        (``"a"`` or ``"t"``, the modality with more mass).
        """
        was_training = self.training
        self.eval()
        p = self.parts(batch)
        self.train(was_training)
        mass = p.fused.cls_attention  # (N, layers, 3)
        last = mass[:, -1]  # (N, 3)
        lengths = batch.lengths.tolist()
        per_utt: dict[str, Any] = {
            "dialogue_id": np.repeat(np.asarray(batch.dialogue_ids, dtype=object), lengths),
            "position": np.concatenate([np.arange(n) for n in lengths]),
            "label": batch.labels_flat.cpu().numpy(),
            "probs": torch.softmax(p.logits, dim=-1).cpu().numpy(),
            "attention": last.cpu().numpy(),
            "attention_layers": mass.cpu().numpy(),
            "dominant": np.where((last[:, 0] >= last[:, 1]).cpu().numpy(), "a", "t"),
        }
        info = {"parts": list(ATTENTION_PARTS), "input_mode": self.input_mode, "faithful": self.config.faithful,
                "config": asdict(self.config)}
        return {"per_utterance": per_utt, "info": info}
