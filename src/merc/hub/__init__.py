"""Hugging Face conventions for merc models: ``save_pretrained`` / ``load_pretrained`` /
``push_to_hub``, model cards and feature specs (see ``docs/predict.md``)."""

from merc.hub.pretrained import BUNDLED, load_pretrained, push_to_hub, save_pretrained
from merc.hub.spec import check_feature_spec

__all__ = ["BUNDLED", "check_feature_spec", "load_pretrained", "push_to_hub", "save_pretrained"]
