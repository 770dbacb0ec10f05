"""Typed configuration of DnR (Divide and Refine); every weight, temperature, σ, D and stage length.

Defaults are the reference values (METHODS.md §1); the bundled ``configs/methods/dnr.yaml``
repeats them so ``merc methods -v`` shows them.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from merc.errors import ConfigError

SYNERGY_MODES = ("corrected", "published")


@dataclass
class DnRConfig:
    """Options of the DnR method (``model.method_options`` when ``model.method: dnr``)."""

    # ---- Divide: decomposer and its pretraining losses -------------------------------------
    dim: int = 256
    """D: width of every component u_m, r_m, s_m."""
    lambda_corr: float = 5.0
    """Weight of L_corr = L_unco + L_cross in the Divide loss."""
    lambda_syn: float = 0.5
    """Weight of the synergy loss L_syn in the Divide loss."""
    corr_eps: float = 1e-6
    """ε in the Pearson denominator of push/pull."""
    synergy_mode: str = "corrected"
    """``corrected``: single-modality synergy heads learn to predict y from s_m while the branch
    producing s_m gets the reversed gradient (GRL); L_syn = L_joint + L_single + L_guard.
    ``published``: the reference's exact arithmetic — the same GRL on each s_m, then L_single
    only inside the hinge ``L_joint + ReLU(margin − clamp(L_single − L_joint, 0, cap))``."""
    grl_strength: float = 0.5
    """Gradient-reversal strength applied to the s_m branch (both modes, as in the reference)."""
    published_margin: float = 0.3
    """Margin of the published hinge."""
    published_cap: float = 3.0
    """Upper clamp of ``L_single − L_joint`` in the published hinge."""
    synergy_dropout: float = 0.1
    """Dropout inside the synergy joint head."""
    # ---- Divide: optimisation and stopping --------------------------------------------------
    divide_lr: float = 1e-4
    """Adam learning rate of the Divide stage."""
    synergy_lr_mult: float = 3.0
    """Learning-rate multiplier of the synergy modules (s heads, joint and single synergy heads)."""
    divide_weight_decay: float = 1e-8
    """Adam weight decay of the Divide stage."""
    divide_clip: float = 2.0
    """Gradient-norm clip of the Divide stage (0 disables)."""
    divide_max_epochs: int = 200
    """Upper bound on Divide epochs (reference: 200–300); 0 skips Divide (random frozen decomposer)."""
    divide_patience: int = 10
    """Stop Divide when the epoch-mean Divide loss has not improved by ``divide_min_delta`` (relative) for this many epochs."""
    divide_min_delta: float = 1e-2
    """Minimum *relative* improvement of the epoch-mean Divide loss over the best so far
    (``loss < best · (1 − divide_min_delta)``) that resets the plateau counter: with the
    defaults Divide stops once 10 epochs in a row have not lowered the loss by 1 %."""
    decomposer_from: str | None = None
    """Reuse the frozen decomposer of an existing DnR model directory instead of running Divide
    (``{seed}`` in the path is replaced by the run's seed). Input dims, ``dim`` and the number of
    classes must match. Divide does not depend on the backbone, so one Divide serves every backbone."""
    # ---- Divide: opt-in separation losses (beyond the paper; separation_losses.py) ---------
    separation_decorrelation: str = "none"
    """``none`` (faithful), ``cross_covariance`` (every column against every column) or ``hsic``
    (normalised HSIC, Gaussian kernels) between u, r, s within and across modalities; added to
    the Divide loss with ``separation_decorrelation_weight``."""
    separation_decorrelation_weight: float = 1.0
    """Weight of the separation decorrelation term (when switched on)."""
    separation_infonce_weight: float = 0.0
    """Weight of an InfoNCE pulling r_m toward r_p of the same utterance (0: off)."""
    separation_tau: float = 0.2
    """Temperature of that InfoNCE."""
    separation_adversary_weight: float = 0.0
    """Weight of the adversary predicting u_m from the other modalities' features, with u_m behind a
    gradient-reversal layer so u becomes unpredictable from them (0: off)."""
    separation_grl: float = 1.0
    """Gradient-reversal strength on u_m for that adversary."""
    # ---- Refine ----------------------------------------------------------------------------
    cross_features: bool = True
    """Append cross terms u_m − u_p and u_m ⊙ u_p for every other *present* modality p."""
    masked_views: bool = True
    """Build one masked view per present modality (only that modality's x̃ kept)."""
    augment: bool = True
    """Build the r-augmented views (only r_m perturbed by σ·ε)."""
    sigmas: list[float] = field(default_factory=lambda: [0.2, 0.1])
    """Noise scales of the augmented views."""
    tau: float = 0.7
    """InfoNCE temperature."""
    refine_weight: float = 0.1
    """Weight of L_ref in the stage-2 loss ``CE + refine_weight · L_ref``."""
    divide_only: bool = False
    """Ablation: skip the Refine objective; train the backbone on divided features with CE only."""
    view_fraction: float = 0.2
    """Expected share of the contrastive views computed per training step. Below 1 every step
    draws a random subset of views and reweights the Refine terms they cover by their inclusion
    probability, so the sampled loss is an unbiased estimate of the full L_ref
    (:func:`~merc.methods.dnr.refine.sample_terms`; docs/dnr.md, "Cost")."""
    batch_views: bool = True
    """Stack all views along the batch dimension into one backbone call (False: one call per view,
    as the reference does; only useful to measure the difference)."""
    view_chunk: int = 0
    """0: all views of a step in one backbone call. k > 0: calls of k views, each checkpointed
    (its activations recomputed in backward), so peak memory holds one chunk's activations;
    the gradients are the same."""
    cache_components: bool = True
    """Compute the frozen decomposer's parts of each training dialogue once and reuse them in later
    Refine steps (keyed by dialogue id and a fingerprint of its features, so changed features are
    recomputed; memory ``N_train · M · 3 · D`` floats). The values are the same as without it."""
    # ---- Explanations ------------------------------------------------------------------------
    explain_tau: float = 1.0
    """Temperature of softmax(c/τ) used for the pairwise symmetric KL between components."""
    explain_draws: int = 3
    """Donor utterances per coalition of the on-distribution Shapley attribution (0 disables it;
    the zero-ablation ``kl``/``kind_kl`` measures are always computed)."""
    explain_seed: int = 0
    """Seed of the Shapley attribution's donor draws."""

    def __post_init__(self) -> None:
        positive = {"dim": self.dim, "tau": self.tau, "divide_lr": self.divide_lr,
                    "synergy_lr_mult": self.synergy_lr_mult, "corr_eps": self.corr_eps,
                    "explain_tau": self.explain_tau}
        for name, value in positive.items():
            if not value > 0:
                raise ConfigError(f"model.method_options.{name} must be > 0, got {value}")
        non_negative = {"lambda_corr": self.lambda_corr, "lambda_syn": self.lambda_syn,
                        "grl_strength": self.grl_strength, "published_margin": self.published_margin,
                        "published_cap": self.published_cap, "divide_weight_decay": self.divide_weight_decay,
                        "divide_clip": self.divide_clip, "divide_max_epochs": self.divide_max_epochs,
                        "divide_patience": self.divide_patience, "divide_min_delta": self.divide_min_delta,
                        "refine_weight": self.refine_weight}
        for name, value in non_negative.items():
            if value < 0:
                raise ConfigError(f"model.method_options.{name} must be ≥ 0, got {value}")
        if self.view_chunk < 0:
            raise ConfigError(f"model.method_options.view_chunk must be ≥ 0, got {self.view_chunk}")
        if isinstance(self.explain_draws, bool) or not isinstance(self.explain_draws, int) or self.explain_draws < 0:
            raise ConfigError(f"model.method_options.explain_draws must be an integer ≥ 0, got {self.explain_draws!r}")
        if self.separation_decorrelation not in ("none", "cross_covariance", "hsic"):
            raise ConfigError("model.method_options.separation_decorrelation must be one of none, cross_covariance, "
                              f"hsic, got '{self.separation_decorrelation}'")
        for name in ("separation_decorrelation_weight", "separation_infonce_weight", "separation_adversary_weight",
                     "separation_grl"):
            if getattr(self, name) < 0:
                raise ConfigError(f"model.method_options.{name} must be ≥ 0, got {getattr(self, name)}")
        if not self.separation_tau > 0:
            raise ConfigError(f"model.method_options.separation_tau must be > 0, got {self.separation_tau}")
        if not 0.0 < self.view_fraction <= 1.0:
            raise ConfigError(f"model.method_options.view_fraction must be in (0, 1], got {self.view_fraction}")
        if self.synergy_mode not in SYNERGY_MODES:
            raise ConfigError(f"model.method_options.synergy_mode must be one of {', '.join(SYNERGY_MODES)}, "
                              f"got '{self.synergy_mode}'")
        if not 0.0 <= self.synergy_dropout < 1.0:
            raise ConfigError(f"model.method_options.synergy_dropout must be in [0, 1), got {self.synergy_dropout}")
        if self.dim < 2:
            raise ConfigError(f"model.method_options.dim must be ≥ 2, got {self.dim}")
        if self.decomposer_from is not None:
            if not isinstance(self.decomposer_from, str) or not self.decomposer_from.strip():
                raise ConfigError("model.method_options.decomposer_from must be a model directory path, "
                                  f"got {self.decomposer_from!r}")
        self.sigmas = [float(s) for s in self.sigmas]
        if self.augment and (not self.sigmas or any(s <= 0 for s in self.sigmas)):
            raise ConfigError(f"model.method_options.sigmas must list positive noise scales, got {self.sigmas}; "
                              "or set augment: false")

    @classmethod
    def from_options(cls, options: dict[str, Any]) -> "DnRConfig":
        """Build from a mapping; unknown keys are errors naming the valid ones."""
        valid = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(options) - set(valid))
        if unknown:
            raise ConfigError(f"method 'dnr' got unknown option(s) {', '.join(unknown)}; "
                              f"valid options: {', '.join(valid)}")
        return cls(**options)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
