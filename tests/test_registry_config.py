"""Registry, typed configs, overrides and every bundled YAML."""

from __future__ import annotations

from importlib import resources

import pytest
import yaml

from merc.config import ExperimentConfig, apply_overrides, bundled_defaults, resolve_model_options
from merc.errors import ConfigError, MercError
from merc.registry import BACKBONES, METHODS, Registry


def test_registry_register_create_list_and_unknown():
    reg: Registry = Registry("widget")

    @reg.register("a")
    def make_a(size: int = 1) -> dict:
        """An a."""
        return {"size": size}

    assert reg.list() == ["a"]
    assert reg.create("a", size=3) == {"size": 3}
    assert reg.describe() == {"a": "An a."}
    with pytest.raises(MercError, match="unknown widget 'b'; valid choices: a"):
        reg.create("b")
    with pytest.raises(MercError, match="unknown option.*sise.*valid options: size"):
        reg.create("a", sise=2)
    with pytest.raises(MercError, match="already registered"):
        reg.register("a")(lambda: None)


def test_builtin_registries_have_the_backbones_and_methods():
    assert {"late_fusion", "mmgcn", "dialogue_gcn", "mm_dfn"} <= set(BACKBONES.list())
    assert {"none", "dnr", "drkf"} <= set(METHODS.list())


def test_config_unknown_keys_and_validation():
    with pytest.raises(ConfigError, match="unknown key.*lrr.*valid keys"):
        ExperimentConfig.from_dict({"trainer": {"lrr": 1}})
    with pytest.raises(ConfigError, match="unknown key.*bogus"):
        ExperimentConfig.from_dict({"bogus": {}})
    with pytest.raises(ConfigError, match="modalities"):
        ExperimentConfig.from_dict({"data": {"modalities": "tx"}})
    with pytest.raises(ConfigError, match="selection"):
        ExperimentConfig.from_dict({"trainer": {"selection": "test"}})


def test_overrides_are_parsed_as_yaml_and_nested():
    raw = apply_overrides({}, ["trainer.lr=3e-4", "trainer.seeds=[1, 2]", "model.backbone_options.hidden=8"])
    cfg = ExperimentConfig.from_dict(raw)
    assert cfg.trainer.lr == pytest.approx(3e-4) and cfg.trainer.seeds == [1, 2]
    assert cfg.model.backbone_options == {"hidden": 8}
    with pytest.raises(ConfigError):
        apply_overrides({}, ["trainer.lr"])


def test_user_options_win_over_bundled_defaults():
    cfg = ExperimentConfig.from_dict({"model": {"backbone": "late_fusion", "backbone_options": {"hidden": 8}}})
    resolved = resolve_model_options(cfg.model)
    assert resolved.backbone_options["hidden"] == 8
    assert set(bundled_defaults("backbones", "late_fusion")) <= set(resolved.backbone_options)


def _bundled(kind: str) -> list[str]:
    root = resources.files("merc") / "configs" / kind
    if not root.is_dir():
        return []
    return sorted(p.name[:-5] for p in root.iterdir() if p.name.endswith(".yaml"))


@pytest.mark.parametrize("name", _bundled("backbones"))
def test_every_bundled_backbone_yaml_builds(name):
    options = bundled_defaults("backbones", name)
    assert name in BACKBONES.list(), f"bundled config for unregistered backbone {name}"
    BACKBONES.create(name, input_dims={"t": 12, "a": 10, "v": 8}, num_classes=4, num_speakers=2, **options)


@pytest.mark.parametrize("name", _bundled("methods"))
def test_every_bundled_method_yaml_is_accepted(name):
    options = bundled_defaults("methods", name)
    assert name in METHODS.list()
    from merc.registry import check_kwargs

    check_kwargs(METHODS.get(name), {"input_dims": {}, "num_classes": 2, "num_speakers": 2, "backbone": "late_fusion",
                                     "backbone_options": {}, **options}, name)


@pytest.mark.parametrize("name", _bundled("experiments"))
def test_every_bundled_experiment_yaml_validates(name):
    root = resources.files("merc") / "configs" / "experiments" / f"{name}.yaml"
    ExperimentConfig.from_dict(yaml.safe_load(root.read_text()))


def _readme_main_command() -> list[str]:
    from pathlib import Path
    import shlex

    readme = Path(__file__).resolve().parents[1] / "README.md"
    if not readme.is_file():
        pytest.skip("README.md not beside the tests (installed package run)")
    line = next(l for l in readme.read_text(encoding="utf-8").splitlines() if "&& merc train" in l)
    return shlex.split(line.split("&& merc train", 1)[1])


def test_readme_main_command_is_the_bundled_main_experiment():
    from merc.cli import build_parser
    from merc.commands.train import config_from_args

    parser = build_parser()
    from_readme = config_from_args(parser.parse_args(["train", *_readme_main_command()]))
    bundled = config_from_args(parser.parse_args(["train", "--config", "main"]))
    assert from_readme == bundled
    assert (bundled.model.method, bundled.model.backbone, bundled.data.dataset) == ("dnr", "mmgcn", "synthetic-iemocap")


def test_unknown_bundled_experiment_lists_the_choices():
    from merc.config import load_experiment_yaml

    with pytest.raises(ConfigError, match="bundled: .*main"):
        load_experiment_yaml("no-such-experiment")
