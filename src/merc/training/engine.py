"""The one training loop (Lightning): one seed of one experiment → one model directory.

Protocol: the method's extra stages run first (``pre_fit``: DnR's Divide), then the main
stage trains with the optimisation recipe of :mod:`merc.training.recipe` (Adam or AdamW,
optional warm-up and cosine/linear decay), gradient clipping and early stopping; the epoch with the best dev
weighted F1 is selected and its weights are restored; dev and test are then evaluated once.

Reliability (docs/reliability.md): the main stage writes ``<out>/checkpoints/last.ckpt``
atomically every ``trainer.checkpoint_every`` epochs (weights, optimiser, loop position,
selection tracker, early stopping and random-generator states); ``trainer.resume`` continues
from it and ends with the same metrics as an uninterrupted run. Multi-process training
(docs/distributed.md) keeps ``data.batch_size`` as the batch per optimiser step over all
processes; only the global-zero process writes files.
``trainer.selection = test-legacy`` selects on the test set instead ("best test epoch"), only
to reproduce published numbers, and is labelled as such in every output.
"""

from __future__ import annotations

import json
import logging
import os
import time
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Sequence

import lightning as L
import numpy as np
import torch

from merc.config import ExperimentConfig, resolve_model_options
from merc.data.collate import make_loader
from merc.data.modality_subsets import training_means
from merc.data.schema import DialogueDataset
from merc.errors import ConfigError, MercError
from merc.evaluation.metrics import compute_metrics
from merc.evaluation.predict import predict_dialogues
from merc.io_utils import load_json_file
from merc.methods.base import FitContext, Method
from merc.training.progress import progress_callbacks
from merc.training.callbacks import BestStateTracker, RunIdentityCheck, StopOnSignal
from merc.training.checkpoints import (AtomicCheckpointIO, RNGStateCallback, checkpoint_callback, remove_checkpoints,
                                       resume_checkpoint)
from merc.training.distributed import is_global_zero, planned_world_size, resolve_strategy
from merc.training.lightning_module import EVAL_SPLITS_DEV, EVAL_SPLITS_LEGACY, LitMethod
from merc.training.model_dir import INFO, METRICS, build_from, load_state_into, save_model_dir
from merc.training.recipe import Recipe

LEGACY_LABEL = "test-legacy (best TEST epoch selected: optimistic, not comparable to dev-selected results)"


@dataclass
class RunResult:
    """Outcome of one seed.

    Attributes:
        seed: the seed.
        model_dir: where the model directory was written.
        metrics: ``{"dev": {...}, "test": {...}}`` (see :func:`compute_metrics`).
        best_epoch: the selected epoch (0-based).
        epochs_run: epochs actually trained in the main stage.
        seconds: wall time of the whole run.
        epoch_seconds: mean wall time of one main-stage training epoch.
    """

    seed: int
    model_dir: Path
    metrics: dict[str, Any]
    best_epoch: int
    epochs_run: int
    seconds: float
    epoch_seconds: float = float("nan")
    extras: dict[str, Any] = field(default_factory=dict)


def quiet_lightning() -> None:
    """Silence Lightning's informational chatter (tips, device summaries)."""
    for name in ("lightning", "lightning.pytorch", "lightning.fabric", "pytorch_lightning"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=".*LeafSpec.*")
    warnings.filterwarnings("ignore", message=".*number of training batches.*")
    warnings.filterwarnings("ignore", message=".*exists and is not empty.*")  # resumed runs reuse their dirs
    warnings.filterwarnings("ignore", message=".*module\\(s\\) in eval mode.*")  # frozen DnR decomposer


def architecture_for(config: ExperimentConfig, dataset: DialogueDataset) -> dict[str, Any]:
    """Input dims / classes / speakers of a model trained on ``dataset``."""
    modalities = [m for m in config.data.modalities if m in dataset.dims]
    return {"input_dims": {m: dataset.dims[m] for m in modalities}, "num_classes": dataset.num_classes,
            "num_speakers": dataset.max_parties()}


def build_method(config: ExperimentConfig, dataset: DialogueDataset) -> Method:
    """The method described by ``config``, sized for ``dataset`` (fresh weights)."""
    return build_from(config, architecture_for(config, dataset))


def class_weights_for(dataset: DialogueDataset, power: float = 1.0) -> torch.Tensor:
    """Inverse-frequency weights ``(N / (C · n_c))^power`` over the training split (1 for absent
    classes); ``[C]``."""
    counts = dataset.class_counts("train").astype(np.float64)
    weights = np.where(counts > 0, counts.sum() / (len(counts) * np.maximum(counts, 1)), 1.0) ** power
    return torch.tensor(weights, dtype=torch.float32)


class EpochTimer(L.Callback):
    """Measures the wall time of each training epoch."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self._start = 0.0

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._start = time.perf_counter()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.times.append(time.perf_counter() - self._start)

    def state_dict(self) -> dict[str, Any]:  # resumed runs report the mean over all their epochs
        return {"times": list(self.times)}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.times = list(state_dict.get("times", []))


def make_trainer_factory(config: ExperimentConfig, out_dir: Path) -> Callable[..., L.Trainer]:
    """A function building Trainers that share the run's device/strategy/progress settings.

    Every Trainer writes checkpoints atomically and reads them with ``weights_only=True``
    (:class:`~merc.training.checkpoints.AtomicCheckpointIO`), and leaves data sharding to the
    loaders (``use_distributed_sampler=False``: :func:`merc.data.collate.make_loader` with
    ``distributed=True`` shards each global batch itself).
    """
    t = config.trainer
    strategy = resolve_strategy(t)

    def factory(stage: str, max_epochs: int, callbacks: Sequence[L.Callback] = (), **overrides: Any) -> L.Trainer:
        shown, bar = progress_callbacks(stage_label(config, stage), t.progress)
        callbacks = [*callbacks, StopOnSignal(), *shown]
        checkpointing = any(isinstance(c, L.pytorch.callbacks.ModelCheckpoint) for c in callbacks)
        kwargs: dict[str, Any] = dict(
            accelerator=t.accelerator, devices=t.devices, num_nodes=t.num_nodes, strategy=strategy,
            max_epochs=max_epochs, gradient_clip_val=t.gradient_clip or None, callbacks=callbacks,
            enable_progress_bar=bar, enable_model_summary=False, enable_checkpointing=checkpointing,
            logger=L.pytorch.loggers.CSVLogger(str(out_dir), name="logs", version=stage),
            num_sanity_val_steps=0, deterministic=True, default_root_dir=str(out_dir),
            use_distributed_sampler=False, plugins=[AtomicCheckpointIO()],
        )
        kwargs.update(overrides)
        return L.Trainer(**kwargs)

    return factory


def stage_label(config: ExperimentConfig, stage: str) -> str:
    """The name progress output gives a stage: DnR's main stage is ``refine``, others' ``train``."""
    if stage == "main":
        return "refine" if config.model.method == "dnr" else "train"
    return stage


def train_run(config: ExperimentConfig, seed: int, dataset: DialogueDataset, out_dir: str | Path,
              extra_info: dict[str, Any] | None = None) -> RunResult:
    """Train one seed of ``config`` on ``dataset`` and write a model directory to ``out_dir``.

    With ``config.trainer.resume``: a complete model directory of the same run is returned as
    is (not retrained); an interrupted one continues from its ``checkpoints/last.ckpt``.
    Without it, stale checkpoints in ``out_dir`` are discarded.
    """
    quiet_lightning()
    start = time.perf_counter()
    out = Path(out_dir)
    config = replace(config, model=resolve_model_options(config.model))
    t = config.trainer
    identity = run_identity(config, seed, dataset)
    if t.resume and (out / INFO).is_file() and (out / METRICS).is_file():
        return _finished_run(out, seed, identity, start)
    ckpt = resume_checkpoint(out) if t.resume else None
    if ckpt is None and is_global_zero():
        remove_checkpoints(out)
    if t.threads:
        torch.set_num_threads(t.threads)
    L.seed_everything(seed, workers=True, verbose=False)
    modalities = [m for m in config.data.modalities if m in dataset.dims]
    train, dev, test = dataset.split("train"), dataset.split("dev"), dataset.split("test")
    if not train:
        raise MercError(f"{dataset.source or dataset.name}: the train split is empty; nothing to train on")
    if not dev:
        raise MercError(f"{dataset.source or dataset.name}: the dev split is empty; raise data.dev_fraction")

    world = planned_world_size(t)
    for name, split in (("dev", dev), ("test", test)):
        if split and len(split) < world:
            raise ConfigError(f"the {name} split has {len(split)} dialogue(s), fewer than the {world} training "
                              "processes; use fewer --devices")

    method = build_method(config, dataset)
    bs = config.data.batch_size
    train_loader = make_loader(train, modalities, bs, shuffle=True, seed=seed, distributed=True)
    dev_loader = make_loader(dev, modalities, bs, shuffle=False, distributed=True)
    test_loader = make_loader(test, modalities, bs, shuffle=False, distributed=True) if test else None
    factory = make_trainer_factory(config, out)

    method.pre_fit(FitContext(train_loader, dev_loader, factory, seed, log=_log(t.progress)))

    legacy = t.selection == "test-legacy"
    if legacy and test_loader is None:
        raise MercError("trainer.selection=test-legacy needs a test split")
    eval_splits = EVAL_SPLITS_LEGACY if legacy else EVAL_SPLITS_DEV
    weights = class_weights_for(dataset, t.class_weight_power) if t.class_weights else None
    stand_in = training_means(train, modalities)  # absent-modality stand-ins (dropout, subset explanations)
    module = LitMethod(method, t.lr, t.weight_decay, dataset.label_names, weights, eval_splits,
                       "test" if legacy else "dev", Recipe.from_trainer(t), modality_dropout=t.modality_dropout,
                       stand_in={m: torch.from_numpy(v) for m, v in stand_in.items()}, seed=seed,
                       modality_dropout_unit=t.modality_dropout_unit)
    tracker, timer = BestStateTracker("select_wf1"), EpochTimer()
    callbacks: list[L.Callback] = [tracker, timer, RNGStateCallback(), RunIdentityCheck(identity)]
    if t.patience > 0:
        callbacks.append(L.pytorch.callbacks.EarlyStopping("select_wf1", mode="max", patience=t.patience))
    if t.checkpoint_every > 0:
        callbacks.append(checkpoint_callback(out, t.checkpoint_every))
    trainer = factory("main", t.max_epochs, callbacks)
    val_loaders = [dev_loader, test_loader] if legacy else [dev_loader]
    trainer.fit(module, train_loader, val_loaders, ckpt_path=ckpt, weights_only=True)

    if tracker.best_state is not None:
        load_state_into(method, tracker.best_state)
    metrics: dict[str, Any] = {"dev": _score(method, dev, modalities, dataset.label_names, bs)}
    if test:
        metrics["test"] = _score(method, test, modalities, dataset.label_names, bs)
    metrics.update(seed=seed, best_epoch=tracker.best_epoch, epochs_run=trainer.current_epoch,
                   selection=LEGACY_LABEL if legacy else "dev (best dev weighted F1)",
                   epoch_seconds=float(np.mean(timer.times)) if timer.times else float("nan"))
    info = {"dataset": dataset.name, "dataset_source": dataset.source,
            "dataset_meta": _jsonable(dataset.meta), "seed": seed, "run_identity": identity,
            "resumed_from": str(ckpt) if ckpt else None, **(extra_info or {})}
    if is_global_zero():
        save_model_dir(out, method, config, dataset.label_names, metrics, info, stand_in)
        remove_checkpoints(out)
    return RunResult(seed, out, metrics, tracker.best_epoch, trainer.current_epoch, time.perf_counter() - start,
                     metrics["epoch_seconds"])


def run_identity(config: ExperimentConfig, seed: int, dataset: DialogueDataset) -> dict[str, Any]:
    """What makes two runs the same run: config (minus bookkeeping), seed and data shape.

    Stored in checkpoints and model directories; resuming with a different identity is refused.
    """
    sizes = {name: len(dataset.splits.get(name, [])) for name in ("train", "dev", "test")}
    return {"config": identity_config(config), "seed": int(seed), "dataset": dataset.name, "split_sizes": sizes}


def identity_config(config: ExperimentConfig) -> dict[str, Any]:
    """The resolved config without bookkeeping keys (output dir, resume, progress, threads, seeds)."""
    raw = replace(config, model=resolve_model_options(config.model)).to_dict()
    raw.pop("output", None)
    for key in ("resume", "progress", "threads", "seeds", "checkpoint_every"):
        raw["trainer"].pop(key, None)
    return json.loads(json.dumps(raw))


def finished_metrics(out: str | Path, config: ExperimentConfig, seed: int) -> dict[str, Any] | None:
    """The metrics of a complete model directory of this config and seed in ``out``, else ``None``."""
    out = Path(out)
    try:
        stored = load_json_file(out / INFO).get("run_identity") or {}
        metrics = load_json_file(out / METRICS)
    except (MercError, AttributeError):
        return None
    if stored.get("seed") != int(seed) or stored.get("config") != identity_config(config):
        return None
    return metrics


def _finished_run(out: Path, seed: int, identity: dict[str, Any], start: float) -> RunResult:
    """The :class:`RunResult` of a complete model directory (``--resume`` skips it)."""
    try:
        metrics = load_json_file(out / METRICS)
        stored = load_json_file(out / INFO).get("run_identity")
    except (MercError, AttributeError) as exc:
        raise MercError(f"{out}: unreadable model directory ({type(exc).__name__}); delete it and train "
                        "again") from None
    if stored is not None and json.loads(json.dumps(identity)) != stored:
        raise ConfigError(f"{out}: holds a finished run of a different config/seed/dataset; use another --out "
                          "or drop --resume to overwrite it")
    return RunResult(seed, out, metrics, int(metrics.get("best_epoch", -1)), int(metrics.get("epochs_run", 0)),
                     time.perf_counter() - start, float(metrics.get("epoch_seconds", float("nan"))),
                     {"skipped": True})


def _score(method: Method, dialogues: list, modalities: list[str], label_names: list[str], bs: int) -> dict[str, Any]:
    preds = predict_dialogues(method, dialogues, modalities, bs)
    return compute_metrics(preds.labels, preds.predicted, label_names)


def _log(enabled: bool) -> Callable[[str], None]:
    def log(message: str) -> None:
        if enabled and int(os.environ.get("LOCAL_RANK", "0")) == 0:
            print(message, flush=True)

    return log


def _jsonable(meta: dict[str, Any]) -> dict[str, Any]:
    """Keep only JSON-friendly provenance entries."""
    out = {}
    for k, v in meta.items():
        if isinstance(v, (str, int, float, bool, type(None))) or (isinstance(v, (list, dict)) and len(str(v)) < 10000):
            out[k] = v
    return out
