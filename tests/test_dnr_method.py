"""DnRMethod: config, Divide stage (optimiser groups, plateau stop, freezing), every backbone, custom backbones."""

from __future__ import annotations

from importlib import resources

import pytest
import torch
import yaml
from _dnr_helpers import DIMS, NUM_CLASSES, make_dialogues, tiny_backbone_options
from torch import Tensor, nn

from merc.backbones.base import Backbone, BackboneOutput
from merc.data.collate import make_loader
from merc.errors import ConfigError, MercError
from merc.methods.base import FitContext
from merc.methods.dnr import DnRConfig, DnRMethod
from merc.methods.dnr.divide_stage import DivideModule, default_trainer_factory
from merc.registry import BACKBONES, METHODS


def loader(lengths=(3, 7, 2, 5, 4, 6), dims=DIMS, shuffle=True):  # type: ignore[no-untyped-def]
    return make_loader(make_dialogues(list(lengths), dims), list(dims), 3, shuffle=shuffle, seed=0)


def build(backbone: str = "late_fusion", dims=DIMS, **options) -> DnRMethod:  # type: ignore[no-untyped-def]
    torch.manual_seed(0)
    return METHODS.create("dnr", input_dims=dims, num_classes=NUM_CLASSES, num_speakers=2, backbone=backbone,
                          backbone_options=tiny_backbone_options(backbone), dim=4, **options)


def context(train_loader) -> FitContext:  # type: ignore[no-untyped-def]
    return FitContext(train_loader, None, default_trainer_factory, seed=0, log=lambda _: None)


# -- configuration ---------------------------------------------------------------------------

def test_config_rejects_unknown_and_bad_values() -> None:
    with pytest.raises(ConfigError, match="valid options: .*lambda_corr"):
        DnRConfig.from_options({"lamda_corr": 1.0})
    with pytest.raises(ConfigError, match="synergy_mode"):
        DnRConfig(synergy_mode="hinge")
    with pytest.raises(ConfigError, match="tau"):
        DnRConfig(tau=0)
    with pytest.raises(ConfigError, match="sigmas"):
        DnRConfig(sigmas=[])
    assert DnRConfig(sigmas=[], augment=False).sigmas == []
    with pytest.raises(MercError, match="unknown option"):
        METHODS.create("dnr", input_dims=DIMS, num_classes=3, backbone="late_fusion", nope=1)


def test_bundled_yaml_matches_dataclass_defaults() -> None:
    text = (resources.files("merc") / "configs" / "methods" / "dnr.yaml").read_text(encoding="utf-8")
    bundled = yaml.safe_load(text)
    assert bundled == DnRConfig().to_dict()
    assert DnRConfig.from_options(bundled) == DnRConfig()


def test_reference_defaults() -> None:
    c = DnRConfig()
    assert (c.dim, c.lambda_corr, c.lambda_syn, c.grl_strength, c.tau, c.refine_weight) == (256, 5.0, 0.5, 0.5, 0.7, 0.1)
    assert (c.divide_lr, c.synergy_lr_mult, c.divide_weight_decay, c.divide_clip) == (1e-4, 3.0, 1e-8, 2.0)
    assert c.sigmas == [0.2, 0.1] and c.synergy_mode == "corrected"


# -- Divide stage ------------------------------------------------------------------------------

def test_divide_optimiser_groups_by_module() -> None:
    method = build()
    opt = DivideModule(method.decomposer, method.divide_heads, method.config).configure_optimizers()
    base, syn = opt.param_groups
    assert base["lr"] == pytest.approx(1e-4) and syn["lr"] == pytest.approx(3e-4)
    syn_ids = {id(p) for p in syn["params"]}
    expected = {id(p) for b in method.decomposer.branches.values() for p in b.synergy.parameters()}
    expected |= {id(p) for p in method.divide_heads.synergy_joint.parameters()}
    expected |= {id(p) for p in method.divide_heads.synergy_single.parameters()}
    assert syn_ids == expected
    everything = {id(p) for p in [*method.decomposer.parameters(), *method.divide_heads.parameters()]}
    assert syn_ids | {id(p) for p in base["params"]} == everything
    assert opt.defaults["weight_decay"] == pytest.approx(1e-8)


@pytest.mark.parametrize("mode", ["corrected", "published"])
def test_pre_fit_trains_stops_on_plateau_and_freezes(mode: str) -> None:
    # min_delta larger than any possible improvement → a plateau is declared after `patience` epochs
    method = build(divide_max_epochs=50, divide_patience=2, divide_min_delta=1e6, synergy_mode=mode,
                   divide_lr=1e-2)
    before = {k: v.clone() for k, v in method.decomposer.state_dict().items()}
    logs: list[str] = []
    method.pre_fit(FitContext(loader(), None, default_trainer_factory, 0, log=logs.append))
    assert "after 3 epoch(s)" in logs[-1]  # epoch 1 sets the best, 2 more without improvement
    after = method.decomposer.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)
    method.train()
    assert not method.decomposer.training and not method.divide_heads.training
    assert method.backbone.training
    assert not any(p.requires_grad for p in method.decomposer.parameters())
    assert bool(method.divided)


def test_divide_loss_decreases() -> None:
    method = build(divide_max_epochs=1, divide_lr=1e-2)
    dl = loader()
    module = DivideModule(method.decomposer, method.divide_heads, method.config)
    first = sum(module.training_step(b, 0).item() for b in dl)
    method.config.divide_max_epochs = 6
    method.pre_fit(context(dl))
    module.eval()
    last = sum(module.training_step(b, 0).item() for b in dl)
    assert last < first


def test_zero_divide_epochs_skips_but_freezes() -> None:
    method = build(divide_max_epochs=0)
    method.pre_fit(context(loader()))
    assert bool(method.divided) and not any(p.requires_grad for p in method.decomposer.parameters())


def test_stage_two_trains_backbone_only_and_reload_stays_frozen() -> None:
    method = build(divide_max_epochs=1)
    method.pre_fit(context(loader()))
    groups = method.param_groups(1e-3, 0.0)
    ids = {id(p) for g in groups for p in g["params"]}
    assert ids == {id(p) for p in method.backbone.parameters()}
    decomposer_before = {k: v.clone() for k, v in method.decomposer.state_dict().items()}
    opt = torch.optim.Adam(groups)
    method.train()
    for batch in loader():
        loss, _, _ = method.training_loss(batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert all(torch.equal(decomposer_before[k], v) for k, v in method.decomposer.state_dict().items())
    fresh = build(divide_max_epochs=1)
    assert any(p.requires_grad for p in fresh.decomposer.parameters())
    fresh.load_state_dict(method.state_dict())
    assert bool(fresh.divided) and not any(p.requires_grad for p in fresh.decomposer.parameters())
    fresh.train()
    assert not fresh.decomposer.training
    batch = next(iter(loader(shuffle=False)))
    fresh.eval(), method.eval()
    torch.testing.assert_close(fresh(batch).logits, method(batch).logits)


# -- the Python API for a user's own backbone ------------------------------------------------------

class TinyGRUBackbone(Backbone):
    """A user's backbone: one bidirectional GRU over the concatenated modalities."""

    def __init__(self, input_dims: dict[str, int], num_classes: int, num_speakers: int = 2, hidden: int = 8) -> None:
        super().__init__(input_dims, num_classes, num_speakers)
        self.rnn = nn.GRU(sum(input_dims.values()), hidden, batch_first=True, bidirectional=True)
        self.out = nn.Linear(2 * hidden, num_classes)

    def forward(self, features: dict[str, Tensor], mask: Tensor, speakers: Tensor) -> BackboneOutput:
        x = torch.cat([features[m] for m in self.modalities], dim=-1)  # (B, L, Σd)
        h, _ = self.rnn(x)  # (B, L, 2H); padding sits after the real utterances
        h = h[mask]  # (N, 2H) batch-major
        logits = self.out(h)
        return BackboneOutput(logits, {}, h)


def test_wrapping_a_custom_backbone_takes_a_few_lines() -> None:
    if "tiny_gru_test" not in BACKBONES:
        BACKBONES.register("tiny_gru_test")(TinyGRUBackbone)
    torch.manual_seed(0)
    # --- what docs/dnr.md shows -----------------------------------------------------------
    method = METHODS.create("dnr", input_dims=DIMS, num_classes=NUM_CLASSES, backbone="tiny_gru_test",
                            backbone_options={"hidden": 8}, dim=8, divide_max_epochs=2)
    dl = loader()
    method.fit_divide(dl)
    opt = torch.optim.Adam(method.param_groups(lr=3e-3, weight_decay=0.0))
    losses = []
    for _ in range(6):
        for batch in dl:
            loss, terms, _ = method.training_loss(batch)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(terms["ce"].item())
    # --------------------------------------------------------------------------------------
    assert isinstance(method.backbone, TinyGRUBackbone)
    assert method.backbone.input_dims == {m: 7 * 8 for m in DIMS}
    assert sum(losses[-2:]) < sum(losses[:2])
    assert method.explain(batch)["per_utterance"]["kl"].shape[1] == 9


def test_divide_plateau_is_relative() -> None:
    from types import SimpleNamespace

    from merc.methods.dnr.divide_stage import RelativePlateau

    def run(losses: list[float], patience: int = 2, min_delta: float = 1e-2) -> int | None:
        stop = RelativePlateau("divide_loss", patience, min_delta)
        trainer = SimpleNamespace(callback_metrics={}, current_epoch=0, should_stop=False)
        for epoch, value in enumerate(losses):
            trainer.callback_metrics["divide_loss"], trainer.current_epoch = torch.tensor(value), epoch
            stop.on_train_epoch_end(trainer, None)  # type: ignore[arg-type]
            if trainer.should_stop:
                return epoch
        return None

    # a loss of ~6 falling by 0.01 per epoch: 0.17 % per epoch is a plateau for a 1 % threshold,
    # while an absolute 1e-3 threshold would never stop it
    assert run([6.0 - 0.01 * i for i in range(20)]) == 2
    # the same relative decrease at any scale behaves the same
    assert run([600.0 - 1.0 * i for i in range(20)]) == 2
    # steady 2 % decreases are progress
    assert run([6.0 * 0.98 ** i for i in range(20)]) is None
    # slow decreases accumulate against the best: 0.6 % + 0.6 % > 1 % resets the counter
    assert run([6.0 * 0.994 ** i for i in range(20)], patience=2) is None


def test_kind_wide_removal_sensitivity() -> None:
    """``kind_kl`` removes a kind from every modality at once; with one modality it is ``kl``."""
    method = build()
    batch = next(iter(loader(shuffle=False)))
    per = method.explain(batch)["per_utterance"]
    assert per["kind_kl"].shape == (per["kl"].shape[0], 3)
    assert (per["kind_kl"] >= 0).all()
    single = build(dims={"t": DIMS["t"]})
    batch = next(iter(make_loader(make_dialogues([3, 5], {"t": DIMS["t"]}), ["t"], 2, shuffle=False)))
    per = single.explain(batch)["per_utterance"]
    assert per["kind_kl"] == pytest.approx(per["kl"], abs=1e-6)
