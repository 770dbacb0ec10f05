"""DnR ``decomposer_from``: reuse one pretrained (frozen) decomposer for any backbone, skipping Divide."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from merc.config import DataConfig, ExperimentConfig
from merc.data.loading import load_dataset
from merc.errors import MercError
from merc.registry import METHODS
from merc.training.engine import train_run
from merc.training.model_dir import load_model_dir


@pytest.fixture(scope="module")
def small():
    return load_dataset(DataConfig(dataset="synthetic-small"))


def _config(tmp: Path, backbone: str, **options) -> ExperimentConfig:  # type: ignore[no-untyped-def]
    raw = {"data": {"dataset": "synthetic-small", "batch_size": 8},
           "model": {"method": "dnr", "backbone": backbone, "backbone_options": {"hidden": 16},
                     "method_options": {"dim": 8, "divide_max_epochs": 2, "divide_lr": 1e-2, **options}},
           "trainer": {"max_epochs": 1, "patience": 0, "progress": False, "checkpoint_every": 0},
           "output": {"dir": str(tmp)}}
    return ExperimentConfig.from_dict(raw)


def _parts(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v for k, v in state.items() if k.startswith(("decomposer.", "divide_heads."))}


def test_second_backbone_reuses_the_decomposer_and_skips_divide(small, tmp_path, monkeypatch):
    first = train_run(_config(tmp_path, "late_fusion"), 3, small, tmp_path / "lf" / "seed_3")
    source = _parts(load_file(str(first.model_dir / "model.safetensors")))
    assert source

    import merc.methods.dnr.method as dnr_method

    def no_divide(*args, **kwargs):  # noqa: ANN002, ANN003
        raise AssertionError("Divide ran although decomposer_from was given")

    monkeypatch.setattr(dnr_method, "run_divide", no_divide)
    # `{seed}` is replaced by the run's seed; the Divide options of the second run are ignored
    config = _config(tmp_path, "mmgcn", decomposer_from=str(tmp_path / "lf" / "seed_{seed}"), divide_max_epochs=50)
    second = train_run(config, 3, small, tmp_path / "mmgcn")
    reused = _parts(load_file(str(second.model_dir / "model.safetensors")))
    assert reused.keys() == source.keys()
    assert all(torch.equal(reused[k], source[k]) for k in source)
    bundle = load_model_dir(second.model_dir)  # reloads without the source directory's help
    assert bool(bundle.method.divided)
    assert not any(p.requires_grad for p in bundle.method.decomposer.parameters())


def test_mismatches_are_one_line_errors(small, tmp_path):
    train_run(_config(tmp_path, "late_fusion"), 0, small, tmp_path / "src")
    dims = dict(small.dims)

    def method(**over):  # type: ignore[no-untyped-def]
        args = {"input_dims": dims, "num_classes": small.num_classes, "backbone": "late_fusion", "dim": 8,
                "backbone_options": {"hidden": 16}}
        args.update(over)
        return METHODS.create("dnr", **args)

    method().load_decomposer(tmp_path / "src")  # the matching case loads
    wrong_dims = {m: d + 1 for m, d in dims.items()}
    cases = [(method(dim=16), "dim=8 differs"),
             (method(input_dims=wrong_dims), "input dims"),
             (method(input_dims={m: dims[m] for m in list(dims)[:2]}), "input dims"),
             (method(num_classes=small.num_classes + 1), "classes differ")]
    for m, message in cases:
        with pytest.raises(MercError, match=message) as info:
            m.load_decomposer(tmp_path / "src")
        assert "\n" not in str(info.value)
    with pytest.raises(MercError, match="missing config.yaml"):
        method().load_decomposer(tmp_path / "nowhere")
