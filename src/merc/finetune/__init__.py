"""Context-aware fine-tuning of a Hugging Face text encoder (``merc finetune``; docs/finetune.md)."""

from merc.finetune.inputs import build_inputs
from merc.finetune.run import FinetuneConfig, export_features, finetune, load_finetuned, predict_proba

__all__ = ["FinetuneConfig", "build_inputs", "export_features", "finetune", "load_finetuned", "predict_proba"]
