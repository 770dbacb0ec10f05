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

Loading validates before it allocates or trusts anything: every file is read through
:mod:`merc.io_utils` (regular files only, bounded size), the metadata types are checked
(``labels.json`` a list of distinct names, one per class; ``info.json``/``metrics.json``
mappings; the architecture's dims positive integers), the method is first built on PyTorch's
``meta`` device (no memory) and every weight's shape compared with the file's, and weights
holding NaN/inf are refused.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors
from safetensors.torch import save_file

from merc.config import ExperimentConfig, save_yaml
from merc.data.modality_subsets import STAND_IN_FILE, load_stand_in, save_stand_in
from merc.errors import DataError, MercError
from merc.io_utils import atomic_path, atomic_write_json, load_json_file, load_yaml_file, read_bytes_bounded
from merc.methods.base import Method
from merc.registry import METHODS

WEIGHTS = "model.safetensors"
CONFIG = "config.yaml"
LABELS = "labels.json"
METRICS = "metrics.json"
INFO = "info.json"

#: Backbone options added after model directories were first written, with the value that
#: older directories were trained with (their saved, fully resolved config predates the option).
LEGACY_BACKBONE_OPTIONS: dict[str, dict[str, Any]] = {
    "dialogue_gcn": {"edge_attention_layer": "graphconv", "nodal_scores": "bilinear"}}


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
    present = [name for name in (CONFIG, LABELS, WEIGHTS, INFO) if (root / name).exists()]
    if not present:
        raise MercError(f"{root}: is not a model directory (none of {CONFIG}, {LABELS}, {WEIGHTS}, {INFO}); "
                        "pass a seed directory written by 'merc train', e.g. runs/default/seed_0")
    for name in (CONFIG, LABELS, WEIGHTS, INFO):
        if name not in present:
            raise MercError(f"{root}: incomplete model directory, missing {name}; retrain or copy the whole directory")
    raw = load_yaml_file(root / CONFIG)
    if not isinstance(raw, dict) or not isinstance(raw.get("experiment"), dict):
        raise DataError(root / CONFIG, "is not a model config (no 'experiment' mapping)", field="experiment",
                        fix="retrain or restore the directory")
    config = with_legacy_options(ExperimentConfig.from_dict(raw["experiment"], source=str(root / CONFIG)))
    architecture = check_architecture(raw.get("architecture"), root / CONFIG)
    label_names = check_label_names(load_json_file(root / LABELS), architecture["num_classes"], root / LABELS)
    metrics = _mapping(load_json_file(root / METRICS), root / METRICS) if (root / METRICS).exists() else {}
    info = _mapping(load_json_file(root / INFO), root / INFO)
    return ModelBundle(load_checked_method(config, architecture, root), config, label_names, architecture, metrics,
                       info, root, load_stand_in(root / STAND_IN_FILE))


def load_checked_method(config: ExperimentConfig, architecture: dict[str, Any], root: Path) -> Method:
    """The method described by ``config``/``architecture`` with ``root/model.safetensors`` loaded, in
    eval mode; every tensor's shape is checked on the ``meta`` device first, so a forged config
    cannot make us allocate."""
    state = read_weights(root)
    with torch.device("meta"):
        probe = build_from(config, architecture)
    check_shapes(probe.state_dict(), state, root / WEIGHTS)
    method = build_from(config, architecture)
    method.load_state_dict(state, strict=True)
    return method.eval()


def _mapping(value: Any, path: Path) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise DataError(path, f"holds a {type(value).__name__}, not a JSON object",
                        fix="retrain or restore the directory")
    return value


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def check_architecture(arch: Any, path: Path) -> dict[str, Any]:
    """The ``architecture`` section of a model's ``config.yaml``, type-checked."""
    fix = "retrain or restore the directory"
    if not isinstance(arch, dict):
        raise DataError(path, "has no 'architecture' mapping", field="architecture", fix=fix)
    dims = arch.get("input_dims")
    if (not isinstance(dims, dict) or not dims or not set(dims) <= set("tav")
            or not all(_positive_int(d) for d in dims.values())):
        raise DataError(path, f"input_dims must map modalities t/a/v to positive integers, got {dims!r}"[:300],
                        field="architecture.input_dims", fix=fix)
    for key in ("num_classes", "num_speakers"):
        if not _positive_int(arch.get(key)):
            raise DataError(path, f"{key} must be a positive integer, got {arch.get(key)!r}"[:300],
                            field=f"architecture.{key}", fix=fix)
    return arch


def check_label_names(value: Any, num_classes: int, path: Path) -> list[str]:
    """``labels.json``: a list of ``num_classes`` distinct non-empty strings."""
    fix = "write the class names in index order, e.g. [\"neutral\", \"joy\"]"
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise DataError(path, f"must be a list of class names, got {type(value).__name__}", fix=fix)
    if len(set(value)) != len(value):
        raise DataError(path, "lists a class name twice", fix=fix)
    if len(value) != num_classes:
        raise DataError(path, f"lists {len(value)} classes, the model has {num_classes}", fix=fix)
    return list(value)


def check_shapes(expected: dict[str, torch.Tensor], state: dict[str, torch.Tensor], path: Path) -> None:
    """Every tensor of ``expected`` (a state dict, possibly on ``meta``) present in ``state`` with its shape."""
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        raise MercError(f"{path}: weights do not match the recorded architecture (missing {len(missing)}, "
                        f"unexpected {len(unexpected)}); the directory was mixed up")
    for key, tensor in expected.items():
        if tuple(state[key].shape) != tuple(tensor.shape):
            raise DataError(path, f"tensor has shape {tuple(state[key].shape)}, config.yaml's architecture needs "
                            f"{tuple(tensor.shape)}", field=key,
                            fix="the directory was mixed up; retrain or restore it")


def with_legacy_options(config: ExperimentConfig) -> ExperimentConfig:
    """``config`` with :data:`LEGACY_BACKBONE_OPTIONS` filled in where a saved config lacks them,
    so a directory written before an option existed reloads as the model it was trained as."""
    model = config.model
    missing = {k: v for k, v in LEGACY_BACKBONE_OPTIONS.get(model.backbone, {}).items()
               if k not in model.backbone_options}
    if not missing:
        return config
    return replace(config, model=replace(model, backbone_options={**model.backbone_options, **missing}))


def read_weights(root: str | Path) -> dict[str, torch.Tensor]:
    """The state dict in ``root/model.safetensors`` (no code runs, bounded read); a one-line error if it
    is corrupt or holds NaN/inf weights."""
    path = Path(root) / WEIGHTS
    data = read_bytes_bounded(path)
    try:
        state = load_safetensors(data)
    except (SafetensorError, ValueError, RuntimeError) as exc:
        raise MercError(f"{path}: corrupted weights file ({exc}); retrain or restore it") from None
    for key, tensor in state.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise DataError(path, "holds NaN/inf weights", field=key,
                            fix="training diverged or the file is damaged; retrain or restore it")
    return state


def load_state_into(method: Method, state: dict[str, torch.Tensor]) -> None:
    """Load an in-memory state dict (e.g. the best epoch's copy) into ``method``."""
    method.load_state_dict(state, strict=True)
