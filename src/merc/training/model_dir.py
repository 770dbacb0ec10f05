"""A trained model is a directory, loadable without executing code from it.

Layout::

    MODEL_DIR/
      model.safetensors   the method's weights (decomposer + backbone for DnR, ...)
      config.yaml         the resolved experiment config + architecture facts (input dims, ...)
      labels.json         class names in index order
      metrics.json        dev/test metrics, selected epoch, seed, selection mode
      info.json           library version, dataset provenance, extractors used for features
      stand_in.safetensors  training mean of each modality: the stand-in of an absent modality
                          (modality dropout, subset explanations; absent in older directories)

Every file is written atomically; ``model.safetensors`` is written last-but-one and
``info.json`` last, so a directory without ``info.json`` is incomplete and is refused.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import yaml
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from merc.config import ExperimentConfig, save_yaml
from merc.data.modality_subsets import STAND_IN_FILE, load_stand_in, save_stand_in
from merc.errors import MercError
from merc.io_utils import atomic_path, atomic_write_json
from merc.methods.base import Method
from merc.registry import METHODS

WEIGHTS = "model.safetensors"
CONFIG = "config.yaml"
LABELS = "labels.json"
METRICS = "metrics.json"
INFO = "info.json"


@dataclass
class ModelBundle:
    """A loaded model directory.

    Attributes:
        method: the method, in eval mode.
        config: the experiment config it was trained with.
        label_names: class names in index order.
        architecture: input dims, number of classes and speakers.
        metrics: the metrics recorded at training time.
        info: provenance (version, dataset, extractors).
        path: the directory.
        stand_in: modality → ``[d_m]`` training mean (``None`` for directories that predate it).
    """

    method: Method
    config: ExperimentConfig
    label_names: list[str]
    architecture: dict[str, Any]
    metrics: dict[str, Any] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None
    stand_in: dict[str, torch.Tensor] | None = None

    @property
    def modalities(self) -> list[str]:
        return list(self.architecture["input_dims"])


def architecture_of(method: Method) -> dict[str, Any]:
    """The facts needed to rebuild ``method`` before loading its weights."""
    return {"input_dims": dict(method.input_dims), "num_classes": method.num_classes,
            "num_speakers": method.num_speakers}


def build_from(config: ExperimentConfig, architecture: dict[str, Any]) -> Method:
    """Instantiate the method described by ``config`` and ``architecture`` (fresh weights)."""
    model = config.model
    return METHODS.create(model.method, input_dims=dict(architecture["input_dims"]),
                          num_classes=int(architecture["num_classes"]),
                          num_speakers=int(architecture["num_speakers"]), backbone=model.backbone,
                          backbone_options=dict(model.backbone_options), **dict(model.method_options))


def save_model_dir(path: str | Path, method: Method, config: ExperimentConfig, label_names: list[str],
                   metrics: dict[str, Any], extra: dict[str, Any] | None = None,
                   stand_in: dict[str, Any] | None = None) -> Path:
    """Write ``method`` and everything needed to reload it into directory ``path``
    (with ``stand_in``, the modality stand-ins as ``stand_in.safetensors``)."""
    from merc import __version__

    out = Path(path)
    out.mkdir(parents=True, exist_ok=True)
    (out / INFO).unlink(missing_ok=True)  # mark incomplete while writing
    save_yaml({"experiment": config.to_dict(), "architecture": architecture_of(method)}, out / CONFIG)
    atomic_write_json(out / LABELS, list(label_names))
    atomic_write_json(out / METRICS, metrics)
    state = {k: v.detach().cpu().contiguous().clone() for k, v in method.state_dict().items()}
    with atomic_path(out / WEIGHTS) as tmp:
        save_file(state, str(tmp), metadata={"format": "pt", "merc_version": __version__})
    if stand_in is not None:
        save_stand_in(out / STAND_IN_FILE, stand_in)
    atomic_write_json(out / INFO, {"merc_version": __version__, **(extra or {})})
    return out


def load_model_dir(path: str | Path) -> ModelBundle:
    """Rebuild the method of a model directory and load its weights (no code is executed)."""
    root = Path(path)
    if not root.is_dir():
        raise MercError(f"{root}: not a model directory; pass the directory written by 'merc train'")
    for name in (CONFIG, LABELS, WEIGHTS, INFO):
        if not (root / name).is_file():
            raise MercError(f"{root}: incomplete model directory, missing {name}; retrain or copy the whole directory")
    try:
        raw = yaml.safe_load((root / CONFIG).read_text(encoding="utf-8"))
        config = ExperimentConfig.from_dict(raw["experiment"], source=str(root / CONFIG))
        architecture = raw["architecture"]
        label_names = json.loads((root / LABELS).read_text(encoding="utf-8"))
        metrics = json.loads((root / METRICS).read_text(encoding="utf-8")) if (root / METRICS).is_file() else {}
        info = json.loads((root / INFO).read_text(encoding="utf-8"))
    except (yaml.YAMLError, json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as exc:
        raise MercError(f"{root}: unreadable model directory metadata ({type(exc).__name__}); "
                        "retrain or restore the directory") from None
    method = build_from(config, architecture)
    state = read_weights(root)
    missing, unexpected = method.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise MercError(f"{root / WEIGHTS}: weights do not match the recorded architecture "
                        f"(missing {len(missing)}, unexpected {len(unexpected)}); the directory was mixed up")
    method.eval()
    return ModelBundle(method, config, list(label_names), architecture, metrics, info, root,
                       load_stand_in(root / STAND_IN_FILE))


def read_weights(root: str | Path) -> dict[str, torch.Tensor]:
    """The state dict in ``root/model.safetensors`` (no code runs); a one-line error if it is corrupt."""
    path = Path(root) / WEIGHTS
    try:
        return load_file(str(path))
    except (SafetensorError, OSError) as exc:
        raise MercError(f"{path}: corrupted weights file ({exc}); retrain or restore it") from None


def load_state_into(method: Method, state: dict[str, torch.Tensor]) -> None:
    """Load an in-memory state dict (e.g. the best epoch's copy) into ``method``."""
    method.load_state_dict(state, strict=True)
