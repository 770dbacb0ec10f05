"""``--method dnr``: Divide and Refine wrapped around any registered backbone (METHODS.md §1).

The backbone is built with ``input_dims = {m: width of x̃_m}`` and never learns that DnR
exists. Stage 1 (:meth:`DnRMethod.pre_fit`) pretrains and freezes the decomposer; stage 2 is
the engine's ordinary training loop calling :meth:`DnRMethod.training_loss`, which trains the
backbone only (:meth:`DnRMethod.param_groups`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.utils.checkpoint
import yaml
from torch import Tensor

from merc.backbones.base import Backbone, BackboneOutput
from merc.data.collate import Batch
from merc.errors import MercError
from merc.methods.base import FitContext, Method, MethodOutput
from merc.methods.dnr.attribution import kind_players, shapley_attributions
from merc.methods.dnr.component_cache import ComponentCache
from merc.methods.dnr.config import DnRConfig
from merc.methods.dnr.decomposer import COMPONENT_KINDS, Components, Decomposer, DivideHeads
from merc.methods.dnr.divide_losses import labelled_cross_entropy
from merc.methods.dnr.divide_stage import default_trainer_factory, flat_features, run_divide
from merc.methods.dnr.losses import info_nce
from merc.methods.dnr.refine import (ORIGINAL, RefineTerm, ViewSpec, component_drop_views, contrastive_views,
                                     kind_drop_views, pad_views, project_views, refine_terms, refined_dim,
                                     refined_inputs, sample_terms, split_views, stack_views)
from merc.registry import BACKBONES, METHODS


@METHODS.register("dnr")
class DnRMethod(Method):
    """DnR (Divide and Refine) around any backbone: explicit unique/redundant/synergy parts per modality.

    Args:
        input_dims: modality → raw feature dimension.
        num_classes: number of classes ``C``.
        num_speakers: maximum parties per dialogue.
        backbone: registered backbone name (``merc backbones``).
        backbone_options: keyword options of the backbone.
        **options: :class:`~merc.methods.dnr.config.DnRConfig` fields (unknown names are errors).

    Example::

        method = METHODS.create("dnr", input_dims={"t": 768, "a": 512}, num_classes=6,
                                backbone="mmgcn", divide_max_epochs=50)
    """

    explanation_kind = "components"

    options_class = DnRConfig

    def __init__(self, input_dims: dict[str, int], num_classes: int, num_speakers: int = 2,
                 backbone: str = "late_fusion", backbone_options: dict[str, Any] | None = None,
                 **options: Any) -> None:
        super().__init__(input_dims, num_classes, num_speakers)
        self.config = DnRConfig.from_options(options)
        c = self.config
        self.decomposer = Decomposer(self.input_dims, c.dim)
        self.divide_heads = DivideHeads(self.modalities, c.dim, num_classes, c.synergy_dropout)
        width = refined_dim(c.dim, len(self.modalities), c.cross_features)
        self.backbone: Backbone = BACKBONES.create(backbone, input_dims={m: width for m in self.modalities},
                                                   num_classes=num_classes, num_speakers=num_speakers,
                                                   **(backbone_options or {}))
        # True once Divide has run; saved with the weights so a reloaded model stays frozen.
        self.register_buffer("divided", torch.tensor(False))
        self.register_load_state_dict_post_hook(lambda module, keys: module._sync_frozen())
        # frozen decomposer outputs per training dialogue (not part of the state dict)
        self.component_cache = ComponentCache(self.modalities)
        self.decomposer.register_load_state_dict_pre_hook(lambda *args: self.component_cache.clear())
        self.views: list[ViewSpec] = [] if c.divide_only else contrastive_views(
            self.modalities, c.masked_views, c.augment, c.sigmas)
        self.terms: list[RefineTerm] = refine_terms(self.views)

    # -- stage 1 ---------------------------------------------------------------------------
    def pre_fit(self, context: FitContext) -> None:
        """Divide: pretrain the decomposer on the training split, then freeze it.

        With ``decomposer_from`` the frozen decomposer (and its pretraining heads) of that DnR
        model directory is loaded instead and Divide does not run.
        """
        if self.config.decomposer_from is not None:
            source = self.load_decomposer(self.config.decomposer_from.replace("{seed}", str(context.seed)))
            context.log(f"dnr: decomposer loaded from {source} (Divide skipped)")
            return
        run_divide(self.decomposer, self.divide_heads, self.config, context.train_loader,
                   context.trainer_factory, context.log)
        self.freeze_decomposer()

    def load_decomposer(self, model_dir: str | Path) -> Path:
        """Load and freeze the pretrained decomposer and Divide heads of DnR model directory ``model_dir``.

        Only ``config.yaml`` and ``model.safetensors`` are read (no code runs, the source's
        backbone is not built). Raises :class:`~merc.errors.MercError` when the directory is not
        a complete DnR model directory with a trained decomposer, or when its input dims,
        ``dim`` or number of classes differ from this model's. Returns the directory.
        """
        from merc.io_utils import load_yaml_file
        from merc.training.model_dir import CONFIG, INFO, WEIGHTS, read_weights  # deferred: training imports methods

        root = Path(model_dir)
        where = f"decomposer_from {root}"
        for name in (CONFIG, WEIGHTS, INFO):
            if not (root / name).is_file():
                raise MercError(f"{where}: not a complete model directory (missing {name}); "
                                "pass the seed directory written by 'merc train --method dnr'")
        try:
            raw = load_yaml_file(root / CONFIG)
            model, arch = raw["experiment"]["model"], raw["architecture"]
            method, options = model["method"], dict(model.get("method_options") or {})
            dims, classes = {m: int(d) for m, d in arch["input_dims"].items()}, int(arch["num_classes"])
        except (yaml.YAMLError, UnicodeDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
            raise MercError(f"{where}: unreadable config.yaml ({type(exc).__name__})") from None
        if method != "dnr":
            raise MercError(f"{where}: trained with --method {method}, not dnr; it has no decomposer")
        mine = {m: int(d) for m, d in self.input_dims.items()}
        if dims != mine:
            raise MercError(f"{where}: input dims {dims} differ from this run's {mine} "
                            "(same modalities and features needed)")
        dim = int(options.get("dim", DnRConfig().dim))
        if dim != self.config.dim:
            raise MercError(f"{where}: component width dim={dim} differs from this run's dim={self.config.dim}")
        if classes != self.num_classes:
            raise MercError(f"{where}: {classes} classes differ from this run's {self.num_classes}")
        state = read_weights(root)
        if not bool(state.get("divided", torch.tensor(False))):
            raise MercError(f"{where}: its decomposer was never trained (no Divide stage ran)")
        parts = {"decomposer": self.decomposer, "divide_heads": self.divide_heads}
        for prefix, module in parts.items():
            sub = {k[len(prefix) + 1:]: v for k, v in state.items() if k.startswith(prefix + ".")}
            try:
                module.load_state_dict(sub, strict=True)
            except RuntimeError:
                raise MercError(f"{where}: its {prefix} weights do not match this run's architecture") from None
        self.freeze_decomposer()
        return root

    def fit_divide(self, train_loader: Any, **trainer_overrides: Any) -> "DnRMethod":
        """Run the Divide stage outside the engine (Python API); returns ``self``."""
        run_divide(self.decomposer, self.divide_heads, self.config, train_loader,
                   lambda stage, epochs, callbacks: default_trainer_factory(stage, epochs, callbacks,
                                                                           **trainer_overrides))
        self.freeze_decomposer()
        return self

    def freeze_decomposer(self) -> None:
        """Eval mode and no gradients for the decomposer and its pretraining heads, for good."""
        self.divided.fill_(True)
        self._sync_frozen()

    def _sync_frozen(self) -> None:
        if bool(self.divided):
            for module in (self.decomposer, self.divide_heads):
                module.eval()
                module.requires_grad_(False)

    def train(self, mode: bool = True) -> "DnRMethod":
        super().train(mode)
        self._sync_frozen()  # a frozen decomposer stays in eval mode
        return self

    # -- stage 2 ---------------------------------------------------------------------------
    def components(self, batch: Batch) -> dict[str, Components]:
        """The frozen decomposer's parts of the real utterances (batch-major, ``labels_flat`` order).

        With ``cache_components`` (default) they come from :attr:`component_cache` when every
        dialogue of the batch is cached with unchanged features; batches computed in training
        mode are stored there (the decomposer is frozen, so the values are the same).
        """
        with torch.no_grad():
            features = flat_features(batch, self.modalities)
            cache = self.component_cache
            # off, not frozen yet, or nothing to read and nothing to store (evaluation, prediction)
            if not (self.config.cache_components and bool(self.divided)) or not (self.training or len(cache)):
                return self.decomposer(features)
            lengths = batch.lengths.tolist()
            fingerprints = cache.fingerprint(features)
            stacked = cache.lookup(batch.dialogue_ids, lengths, fingerprints)
            if stacked is not None:
                return cache.unstack(stacked)
            components = self.decomposer(features)
            if self.training:
                cache.store(batch.dialogue_ids, lengths, fingerprints, cache.stack(components))
            return components

    def run_views(self, components: dict[str, Components], views: list[ViewSpec],
                  batch: Batch) -> list[BackboneOutput]:
        """Backbone outputs of every view of ``batch``, in order.

        Views are stacked along the batch dimension: one backbone call (``batch_views``, the
        default), one call per view (``batch_views: false``), or calls of ``view_chunk`` views,
        each checkpointed in training so that only one chunk's activations are alive at a time
        (recomputed in backward; same gradients, less memory, one more forward per chunk).
        A backbone with :meth:`~merc.backbones.base.Backbone.input_projections` gets the views
        after its first layer (:func:`project_views`), otherwise the padded x̃ of each call.
        """
        mask, speakers, cross = batch.mask, batch.speakers, self.config.cross_features
        layers = self.backbone.input_projections()
        flat = project_views(components, views, cross, layers) if layers is not None else None

        def call(part: slice) -> BackboneOutput:
            k = len(views[part])
            if flat is not None:
                feats = {m: pad_views(x[part], mask) for m, x in flat.items()}
                return self.backbone(feats, mask.repeat(k, 1), speakers.repeat(k, 1), projected=True)
            return self.backbone(stack_views(components, views[part], cross, mask), mask.repeat(k, 1),
                                 speakers.repeat(k, 1))

        chunk = (self.config.view_chunk or len(views)) if self.config.batch_views else 1
        checkpoint = self.config.view_chunk > 0 and torch.is_grad_enabled() and self.training
        outs: list[BackboneOutput] = []
        for start in range(0, len(views), chunk):
            part = slice(start, start + chunk)
            out = (torch.utils.checkpoint.checkpoint(call, part, use_reentrant=False) if checkpoint
                   else call(part))
            k = len(views[part])
            mods = {m: split_views(x, k) for m, x in out.modality_logits.items()}
            outs += [BackboneOutput(lg, {m: x[v] for m, x in mods.items()}, rp)
                     for v, (lg, rp) in enumerate(zip(split_views(out.logits, k), split_views(out.representation, k)))]
        return outs

    def forward(self, batch: Batch) -> MethodOutput:
        """Prediction from the original view only."""
        out = self.run_views(self.components(batch), [ORIGINAL], batch)[0]
        return MethodOutput(out.logits, out.representation, {"modality_logits": out.modality_logits})

    def utterance_encoding(self, features: dict[str, Tensor]) -> dict[str, Tensor]:
        """The frozen decomposer's parts turned into the backbone's first-layer outputs (x̃ itself for
        backbones without :meth:`~merc.backbones.base.Backbone.input_projections`) — all per utterance.

        Shapes:
            - features: modality → ``[N, d_m]``; output: modality → ``[N, H_m]``
        """
        with torch.no_grad():
            comps = self.decomposer({m: features[m] for m in self.modalities})
        layers = self.backbone.input_projections()
        if layers is None:
            return refined_inputs(comps, self.config.cross_features)
        return {m: x[0] for m, x in project_views(comps, [ORIGINAL], self.config.cross_features, layers).items()}

    def forward_encoded(self, encoded: dict[str, Tensor], mask: Tensor, speakers: Tensor) -> Tensor:
        """Logits ``[N, C]`` of the original view from padded :meth:`utterance_encoding` outputs ``[B, L, H_m]``."""
        if self.backbone.input_projections() is None:
            return self.backbone(encoded, mask, speakers).logits
        return self.backbone(encoded, mask, speakers, projected=True).logits

    def training_loss(self, batch: Batch,
                      class_weights: Tensor | None = None) -> tuple[Tensor, dict[str, Tensor], MethodOutput]:
        """``CE(original view) + refine_weight · L̂_ref`` (CE only with ``divide_only``).

        ``L̂_ref`` is the full L_ref with ``view_fraction: 1`` and otherwise an unbiased
        estimate of it from a random share of its terms (:func:`sample_terms`)."""
        components = self.components(batch)
        views, terms = sample_terms(self.views, self.terms, self.config.view_fraction)
        outs = self.run_views(components, [ORIGINAL, *views], batch)
        original = outs[0]
        ce = labelled_cross_entropy(original.logits, batch.labels_flat, class_weights)
        output = MethodOutput(original.logits, original.representation,
                              {"modality_logits": original.modality_logits})
        if not self.views:
            return ce, {"ce": ce.detach()}, output
        reps = {ORIGINAL.name: original.representation, **{v.name: o.representation for v, o in zip(views, outs[1:])}}
        ref = self.refine_loss(reps, terms)
        loss = ce + self.config.refine_weight * ref
        return loss, {"ce": ce.detach(), "refine": ref.detach()}, output

    def refine_loss(self, reps: dict[str, Tensor], terms: list[RefineTerm] | None = None) -> Tensor:
        """``Σ_terms weight · InfoNCE(z_first, z_second)``; all terms of L_ref by default (:func:`refine_terms`).

        Shapes:
            - reps: view name (with ``original``) → ``[N, d]``; output: scalar
        """
        terms = self.terms if terms is None else terms
        total = reps[ORIGINAL.name].new_zeros(())
        for term in terms:
            total = total + term.weight * info_nce(reps[term.first], reps[term.second], self.config.tau)
        return total

    def param_groups(self, lr: float, weight_decay: float) -> list[dict[str, Any]]:
        """Only the backbone trains in stage 2."""
        return [{"params": [p for p in self.backbone.parameters() if p.requires_grad], "lr": lr,
                 "weight_decay": weight_decay}]

    # -- explanations ----------------------------------------------------------------------
    def component_names(self) -> list[str]:
        """``["t:U", "t:R", "t:S", "a:U", ...]`` in the order of every explanation array."""
        return [f"{m}:{k}" for m in self.modalities for k in COMPONENT_KINDS]

    @torch.no_grad()
    def explain(self, batch: Batch) -> dict[str, Any]:
        """Per-utterance component attributions (see docs/explanations.md).

        Returns ``{"per_utterance": {...}, "info": {...}}`` where every per-utterance array has
        ``N`` rows in ``labels_flat`` order: ``dialogue_id``, ``position``, ``label``, ``probs``
        ``[N, C]``, ``kl`` ``[N, K]`` (KL(P_full ‖ P_without_c)), ``kind_kl`` ``[N, 3]`` (KL(P_full ‖
        P_without kind k in every modality), columns U, R, S), ``gold_drop`` ``[N, K]`` (NaN where
        unlabelled), ``components`` ``[N, K, D]`` and ``meta:<key>`` for the batch's meta; ``K = 3M``.
        With ``explain_draws > 0`` also the on-distribution Shapley values of log p(predicted
        class) (:mod:`merc.methods.dnr.attribution`): ``shapley_kind`` ``[N, 4]`` (U, R, S, X =
        cross terms; 3 columns when there are none) and ``shapley_modality`` ``[N, M]``.
        """
        was_training = self.training
        self.eval()
        comps = self.components(batch)
        drops = component_drop_views(self.modalities)
        outs = self.run_views(comps, [ORIGINAL, *drops, *kind_drop_views(self.modalities)], batch)
        log_full = torch.log_softmax(outs[0].logits, dim=-1)  # (N, C)
        c = self.config
        shapley = shapley_attributions(self, comps, batch, log_full.argmax(-1), c.explain_draws, c.explain_seed) \
            if c.explain_draws > 0 else {}
        self.train(was_training)
        log_all = torch.stack([torch.log_softmax(o.logits, dim=-1) for o in outs[1:]], dim=1)  # (N, K + 3, C)
        kl_all = (log_full.exp().unsqueeze(1) * (log_full.unsqueeze(1) - log_all)).sum(-1)  # (N, K + 3)
        kl, kind_kl = kl_all[:, :len(drops)], kl_all[:, len(drops):]  # (N, K), (N, 3)
        log_without = log_all[:, :len(drops)]  # (N, K, C)
        labels = batch.labels_flat
        gold = labels.clamp(min=0)
        p_gold_full = log_full.exp().gather(1, gold[:, None])  # (N, 1)
        p_gold_without = log_without.exp().gather(2, gold[:, None, None].expand(-1, len(drops), 1)).squeeze(-1)
        gold_drop = torch.where((labels >= 0)[:, None], p_gold_full - p_gold_without, torch.nan)
        parts = torch.stack([comps[m].get(k) for m in self.modalities for k in COMPONENT_KINDS], dim=1)
        lengths = batch.lengths.tolist()
        per_utt: dict[str, Any] = {
            "dialogue_id": np.repeat(np.asarray(batch.dialogue_ids, dtype=object), lengths),
            "position": np.concatenate([np.arange(n) for n in lengths]),
            "label": labels.cpu().numpy(), "probs": log_full.exp().cpu().numpy(),
            "kl": kl.clamp(min=0).cpu().numpy(), "kind_kl": kind_kl.clamp(min=0).cpu().numpy(),
            "gold_drop": gold_drop.cpu().numpy(),
            "components": parts.cpu().numpy(),
            **{k: v.cpu().numpy() for k, v in shapley.items()},
        }
        for key, value in batch.meta.items():
            if isinstance(value, Tensor) and value.shape[:1] == labels.shape:
                per_utt[f"meta:{key}"] = value.cpu().numpy()
        info = {"component_names": self.component_names(), "modalities": list(self.modalities),
                "explain_tau": self.config.explain_tau,
                "shapley_kind_names": kind_players(c.cross_features, len(self.modalities))}
        return {"per_utterance": per_utt, "info": info}
