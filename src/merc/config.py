"""Typed experiment configuration: dataclasses, YAML loading, dotted overrides, saving.

An experiment is ``data`` + ``model`` + ``trainer`` + ``output``. YAML files mirror this
nesting; ``key=value`` overrides use dotted paths (``trainer.lr=3e-4``). Unknown keys are
errors naming the valid ones, at every level.

Backbone and method defaults live in bundled YAML files
(``merc/configs/backbones/<name>.yaml``, ``merc/configs/methods/<name>.yaml``); the resolved
config saved with every model records the values actually used.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Iterable

import yaml

from merc.errors import ConfigError


PROTOCOLS = ("split", "leave-one-group-out", "iemocap4-loso")


@dataclass
class DataConfig:
    """Which data to train on and how to batch it."""

    dataset: str = "synthetic-small"
    """Catalog name (``merc datasets``) or a path to a data file/directory."""
    path: str | None = None
    """File or directory for catalog datasets that read local files (e.g. MELD CSV folder)."""
    format: str | None = None
    """Force a file format instead of auto-detection (see docs/formats.md)."""
    modalities: str = "tav"
    """Subset of ``t`` (text), ``a`` (audio), ``v`` (visual) to use, e.g. ``ta``."""
    dev_fraction: float = 0.1
    """Share of train dialogues carved out as dev when the dataset has no official dev split."""
    dev_seed: int = 0
    """Seed of that carve-out (recorded with results)."""
    batch_size: int = 16
    """Dialogues per batch."""
    clean: bool = False
    """Opt in to replacing NaN/inf features by 0 (reported) instead of refusing the data."""
    options: dict[str, Any] = field(default_factory=dict)
    """Extra keyword options for the dataset builder (e.g. synthetic sizes)."""
    protocol: str = "split"
    """``split``: the dataset's train/dev/test split. ``leave-one-group-out``: one fold per
    value of ``group_key`` (tested once, validation carved from the other groups).
    ``iemocap4-loso``: DRKF's protocol — IEMOCAP-6 labels merged to IEMOCAP-4, then
    leave-one-session-out (docs/drkf.md)."""
    group_key: str = "session"
    """Dialogue meta key naming the group of a leave-one-group-out protocol."""

    def __post_init__(self) -> None:
        if self.protocol not in PROTOCOLS:
            raise ConfigError(f"data.protocol must be one of {', '.join(PROTOCOLS)}, got '{self.protocol}'")
        if not self.modalities or set(self.modalities) - set("tav") or len(set(self.modalities)) != len(self.modalities):
            raise ConfigError(f"data.modalities must be a non-empty subset of 'tav' without repeats, got '{self.modalities}'")
        if not 0.0 < self.dev_fraction < 1.0:
            raise ConfigError(f"data.dev_fraction must be in (0, 1), got {self.dev_fraction}")
        if self.batch_size < 1:
            raise ConfigError(f"data.batch_size must be ≥ 1, got {self.batch_size}")


@dataclass
class ModelConfig:
    """What to train: a method wrapping a backbone."""

    method: str = "none"
    """``none`` (backbone alone), ``dnr`` or ``drkf`` (``merc methods``)."""
    backbone: str = "late_fusion"
    """Registered backbone name (``merc backbones``)."""
    backbone_options: dict[str, Any] = field(default_factory=dict)
    """Backbone hyperparameters overriding its bundled defaults."""
    method_options: dict[str, Any] = field(default_factory=dict)
    """Method hyperparameters overriding its bundled defaults."""


@dataclass
class TrainerConfig:
    """How to train and select."""

    max_epochs: int = 40
    lr: float = 1e-3
    weight_decay: float = 1e-8
    gradient_clip: float = 2.0
    """Clip the gradient norm to this value (0: no clipping)."""
    optimizer: str = "adam"
    """``adam`` (weight decay as L2) or ``adamw`` (decoupled weight decay)."""
    schedule: str = "constant"
    """Learning-rate decay after warm-up: ``constant``, ``cosine`` or ``linear`` (per step)."""
    warmup_epochs: float = 0.0
    """Linear learning-rate warm-up, in epochs (fractions allowed; 0: none)."""
    min_lr_ratio: float = 0.0
    """Floor of the decayed learning rate, as a fraction of ``lr``."""
    patience: int = 10
    """Early stopping patience in epochs on the selection metric (0 disables)."""
    class_weights: bool = False
    """Weight cross-entropy by inverse class frequency of the training split."""
    class_weight_power: float = 1.0
    """Exponent ``p`` of those weights, ``(N / (C · n_c))^p``: 1 = inverse frequency, 0.5 =
    square-root (milder: rare classes get predicted without giving up the frequent ones)."""
    selection: str = "dev"
    """``dev``: select the epoch with best dev weighted F1 (default). ``test-legacy``: select on
    the test set ("best test epoch"), only to reproduce old numbers; labelled in every output."""
    seeds: list[int] = field(default_factory=lambda: [0])
    devices: int = 1
    num_nodes: int = 1
    strategy: str = "auto"
    accelerator: str = "cpu"
    progress: bool = True
    """Show progress bars."""
    threads: int = 0
    """torch intra-op threads (0: leave torch's default)."""
    resume: bool = False
    """Continue an interrupted run from ``<seed dir>/checkpoints/last.ckpt``; seeds whose model
    directory is complete are not retrained (docs/reliability.md)."""
    checkpoint_every: int = 1
    """Write ``last.ckpt`` every this many epochs of the main stage (0: no checkpoints)."""
    modality_dropout: float = 0.0
    """Main-stage probability of replacing each modality of a training dialogue by its training
    mean (the stand-in of absent modalities; see ``merc.data.modality_subsets``), so that
    missing-modality inputs and the subset explanations are on-distribution. 0 disables."""
    modality_dropout_unit: str = "both"
    """``dialogue`` (a modality dropped from a whole dialogue), ``utterance`` (from single
    utterances, context kept) or ``both`` (each dialogue one way or the other, equal odds)."""

    def __post_init__(self) -> None:
        if not 0.0 <= self.modality_dropout < 1.0:
            raise ConfigError(f"trainer.modality_dropout must be in [0, 1), got {self.modality_dropout}")
        if self.modality_dropout_unit not in ("dialogue", "utterance", "both"):
            raise ConfigError("trainer.modality_dropout_unit must be dialogue, utterance or both, got "
                              f"'{self.modality_dropout_unit}'")
        if not 0.0 < self.class_weight_power <= 2.0:
            raise ConfigError(f"trainer.class_weight_power must be in (0, 2], got {self.class_weight_power}")
        if self.checkpoint_every < 0:
            raise ConfigError(f"trainer.checkpoint_every must be ≥ 0, got {self.checkpoint_every}")
        if self.selection not in ("dev", "test-legacy"):
            raise ConfigError(f"trainer.selection must be 'dev' or 'test-legacy', got '{self.selection}'")
        if self.max_epochs < 1:
            raise ConfigError(f"trainer.max_epochs must be ≥ 1, got {self.max_epochs}")
        if not self.seeds:
            raise ConfigError("trainer.seeds must list at least one seed")
        self.seeds = [int(s) for s in self.seeds]
        if self.lr <= 0:
            raise ConfigError(f"trainer.lr must be > 0, got {self.lr}")
        from merc.training.recipe import OPTIMIZERS, SCHEDULES

        if self.optimizer not in OPTIMIZERS:
            raise ConfigError(f"trainer.optimizer must be one of {', '.join(OPTIMIZERS)}, got '{self.optimizer}'")
        if self.schedule not in SCHEDULES:
            raise ConfigError(f"trainer.schedule must be one of {', '.join(SCHEDULES)}, got '{self.schedule}'")
        if not 0.0 <= self.warmup_epochs < self.max_epochs:
            raise ConfigError(f"trainer.warmup_epochs must be in [0, max_epochs), got {self.warmup_epochs}")
        if not 0.0 <= self.min_lr_ratio <= 1.0:
            raise ConfigError(f"trainer.min_lr_ratio must be in [0, 1], got {self.min_lr_ratio}")


@dataclass
class OutputConfig:
    """Where results go."""

    dir: str = "runs/default"
    """Output directory; one sub-directory per seed holds a model directory."""
    explain: bool = False
    """After training, write explanations and plots for the test split (methods that offer them)."""


@dataclass
class ExperimentConfig:
    """A whole experiment."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    output: OutputConfig = field(default_factory=OutputConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any], source: str = "config") -> "ExperimentConfig":
        return _build(cls, raw or {}, source)


def _build(cls: type, raw: Any, where: str) -> Any:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a mapping, got {type(raw).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}; valid keys: {', '.join(fields)}")
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for name, value in raw.items():
        f = fields[name]
        nested = f.default_factory if f.default_factory is not dataclasses.MISSING else None
        if nested is not None and dataclasses.is_dataclass(nested):
            kwargs[name] = _build(nested, value, f"{where}.{name}")
        else:
            kwargs[name] = _coerce(value, hints[name], f"{where}.{name}")
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def _coerce(value: Any, hint: Any, where: str) -> Any:
    """Convert ``value`` to the field type ``hint`` (ints, floats, bools, strings, lists, dicts)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        hint = next(a for a in args if a is not type(None))
        origin, args = typing.get_origin(hint), typing.get_args(hint)
    try:
        if hint is bool:
            if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no", "1", "0"):
                return value.lower() in ("true", "yes", "1")
            if isinstance(value, bool):
                return value
            raise ValueError
        if hint is int:
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError
            return int(value)
        if hint is float:
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        if hint is str:
            if isinstance(value, (dict, list)):
                raise ValueError
            return str(value)
        if origin is list:
            items = value if isinstance(value, (list, tuple)) else [value]
            return [_coerce(v, args[0], where) for v in items] if args else list(items)
        if origin is dict:
            if not isinstance(value, dict):
                raise ValueError
            return dict(value)
    except (ValueError, TypeError):
        name = getattr(hint, "__name__", str(hint))
        raise ConfigError(f"{where}: expected {name}, got {value!r}") from None
    return value


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping; errors name the file."""
    from merc.io_utils import load_yaml_file

    p = Path(path)
    data = load_yaml_file(p)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: a config file must be a mapping of sections (data, model, trainer, output)")
    return data


def parse_override(text: str) -> tuple[list[str], Any]:
    """``"trainer.lr=3e-4"`` → ``(["trainer", "lr"], 0.0003)`` (value parsed as YAML)."""
    if "=" not in text:
        raise ConfigError(f"override '{text}' must look like section.key=value")
    key, value = text.split("=", 1)
    path = [k for k in key.strip().split(".") if k]
    if not path:
        raise ConfigError(f"override '{text}' has an empty key")
    try:
        parsed = yaml.safe_load(value) if value.strip() else ""
    except yaml.YAMLError:
        parsed = value
    return path, parsed


def bundled_experiments() -> list[str]:
    """Names of the experiment configs shipped with merc (usable as ``--config NAME``)."""
    root = resources.files("merc") / "configs" / "experiments"
    if not root.is_dir():
        return []
    return sorted(p.name[:-5] for p in root.iterdir() if p.name.endswith(".yaml"))


def load_experiment_yaml(path_or_name: str | Path) -> tuple[dict[str, Any], str]:
    """Read ``--config``: a YAML file, or the name of a bundled experiment (e.g. ``main``).

    Returns the raw mapping and a description of its source for error messages.
    """
    p = Path(path_or_name)
    if p.exists() or p.suffix in (".yaml", ".yml") or len(p.parts) > 1:
        return load_yaml(p), str(p)
    name = str(path_or_name)
    ref = resources.files("merc") / "configs" / "experiments" / f"{name}.yaml"
    if not ref.is_file():
        choices = ", ".join(bundled_experiments()) or "none"
        raise ConfigError(f"--config {name}: no such file and no bundled experiment of that name "
                          f"(bundled: {choices}); pass a path to a YAML file")
    data = yaml.safe_load(ref.read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"bundled experiment {name}.yaml is not a mapping")
    return data, f"bundled experiment '{name}'"


def apply_overrides(raw: dict[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    """Set dotted ``key=value`` overrides into a nested dict (validated later by the dataclasses)."""
    for item in overrides:
        path, value = parse_override(item)
        node = raw
        for key in path[:-1]:
            node = node.setdefault(key, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override '{item}': '{key}' is not a section")
        node[path[-1]] = value
    return raw


def deep_merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """Recursively merge ``update`` into a copy of ``base``."""
    out = dict(base)
    for k, v in update.items():
        out[k] = deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def bundled_defaults(kind: str, name: str) -> dict[str, Any]:
    """The bundled default options for a backbone or method (empty if none are bundled)."""
    ref = resources.files("merc") / "configs" / kind / f"{name}.yaml"
    if not ref.is_file():
        return {}
    data = yaml.safe_load(ref.read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"bundled config {kind}/{name}.yaml is not a mapping")
    return data


def resolve_model_options(model: ModelConfig) -> ModelConfig:
    """Bundled defaults merged under the user's options (the user's values win), each value coerced
    to the type the backbone/method declares (:mod:`merc.options`; unknown names are errors)."""
    from merc.options import coerce_model_options

    backbone_options, method_options = coerce_model_options(
        model.backbone, model.method,
        deep_merge(bundled_defaults("backbones", model.backbone), model.backbone_options),
        deep_merge(bundled_defaults("methods", model.method), model.method_options))
    return ModelConfig(method=model.method, backbone=model.backbone, backbone_options=backbone_options,
                       method_options=method_options)


def save_yaml(data: dict[str, Any], path: str | Path) -> None:
    """Write ``data`` as YAML atomically."""
    from merc.io_utils import atomic_write_text

    atomic_write_text(path, yaml.safe_dump(data, sort_keys=False))
