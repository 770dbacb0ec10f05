"""Hugging Face style model directories: ``save_pretrained`` / ``load_pretrained`` / ``push_to_hub``.

Layout (what the Hub expects of a PyTorch model repository)::

    MODEL_DIR/
      config.json         everything needed to rebuild the model: merc version, the experiment
                          config, the architecture (input dims, classes, speakers), the label
                          names, the feature spec (encoder, revision, pooling, dim per modality),
                          the metrics and the training provenance
      model.safetensors   the weights (no code is ever executed when loading)
      README.md           the model card (label set, data + licence, splits, seeds, metrics,
                          feature spec, how to reproduce)

``load_pretrained`` also takes the older ``merc train`` model directories (``config.yaml`` +
``labels.json`` + ``metrics.json`` + ``info.json``), the names of the models shipped with the
package (:data:`BUNDLED`, e.g. ``meld-text``) and, when online, a Hub repository id.
"""

from __future__ import annotations

import os
import tempfile
from importlib import resources
from pathlib import Path
from typing import Any, Mapping

from safetensors.torch import save_file

from merc.config import ExperimentConfig
from merc.errors import MercError
from merc.hub.card import render_card
from merc.hub.spec import model_spec
from merc.io_utils import atomic_path, atomic_write_json, atomic_write_text, load_json_file
from merc.registry import EXTRACTORS
from merc.data.modality_subsets import STAND_IN_FILE, load_stand_in, save_stand_in
from merc.training.model_dir import (CONFIG, WEIGHTS, ModelBundle, check_architecture, check_label_names,
                                     load_checked_method, load_model_dir, with_legacy_options)

CONFIG_JSON = "config.json"
CARD = "README.md"
MODEL_TYPE = "merc"
#: models shipped inside the package (``src/merc/pretrained/<name>/``)
BUNDLED = ("meld-text",)


def bundled_path(name: str) -> Path:
    """The directory of a model shipped with the package."""
    return Path(str(resources.files("merc") / "pretrained" / name))


def save_pretrained(bundle: ModelBundle, path: str | Path, card: Mapping[str, Any] | None = None) -> Path:
    """Write ``bundle`` as ``config.json`` + ``model.safetensors`` + ``README.md`` into ``path``.

    Args:
        bundle: a loaded model (e.g. ``Predictor.bundle`` or :func:`load_pretrained`'s result).
        path: the output directory (created; ``config.json`` is written last, so a directory
            without it is incomplete).
        card: model-card facts beyond what the bundle knows (``title``, ``dataset``,
            ``licence``, ``splits``, ``seeds``, ``summary`` with mean ± std, ``reproduce``);
            kept in ``config.json`` under ``card`` so a re-save keeps them.
    """
    from merc import __version__
    from merc.training.model_dir import architecture_of

    out = Path(path)
    out.mkdir(parents=True, exist_ok=True)
    (out / CONFIG_JSON).unlink(missing_ok=True)
    card_facts = {**dict(bundle.info.get("card") or {}), **dict(card or {})}
    info = {k: v for k, v in bundle.info.items() if k not in ("card", "extractors", "feature_spec")}
    config = {"model_type": MODEL_TYPE, "merc_version": __version__, "method": bundle.config.model.method,
              "backbone": bundle.config.model.backbone, "labels": list(bundle.label_names),
              "architecture": architecture_of(bundle.method),
              "feature_spec": model_spec(bundle.info),
              "experiment": bundle.config.to_dict(), "metrics": bundle.metrics, "info": info, "card": card_facts}
    state = {k: v.detach().cpu().contiguous().clone() for k, v in bundle.method.state_dict().items()}
    with atomic_path(out / WEIGHTS) as tmp:
        save_file(state, str(tmp), metadata={"format": "pt", "merc_version": __version__})
    if bundle.stand_in is not None:  # absent-modality stand-ins of the interaction explanation
        save_stand_in(out / STAND_IN_FILE, bundle.stand_in)
    atomic_write_text(out / CARD, render_card(config))
    atomic_write_json(out / CONFIG_JSON, config)
    return out


def resolve(name_or_path: str | Path, revision: str | None = None) -> Path:
    """A local directory for a bundled name, a local path or (online) a Hub repository id."""
    text = str(name_or_path)
    if text in BUNDLED:
        return bundled_path(text)
    local = Path(text).expanduser()
    if local.exists():
        return local
    if text.count("/") == 1 and not text.startswith((".", "/", "~")):
        try:
            from huggingface_hub import snapshot_download

            return Path(snapshot_download(text, revision=revision))
        except ImportError:
            raise MercError(f"'{text}' looks like a Hub repository but huggingface_hub is not installed; "
                            "pip install 'merc[hf]'") from None
        except Exception as exc:  # noqa: BLE001 - offline, unknown repo, auth: all end the same way
            raise MercError(f"cannot fetch model '{text}' from the Hugging Face Hub ({type(exc).__name__}); "
                            f"check the name and your connection (HF_HUB_OFFLINE={os.environ.get('HF_HUB_OFFLINE', '0')})"
                            f", or use a local directory or a bundled model: {', '.join(BUNDLED)}") from None
    raise MercError(f"{text}: no such model directory or bundled model; use a directory written by merc train / "
                    f"save_pretrained, or one of: {', '.join(BUNDLED)}")


def load_pretrained(name_or_path: str | Path, revision: str | None = None) -> ModelBundle:
    """Load a bundled model (``"meld-text"``), an HF-style or ``merc train`` directory, or a Hub repo."""
    root = resolve(name_or_path, revision)
    if not (root / CONFIG_JSON).is_file() and (root / CONFIG).is_file():
        return load_model_dir(root)  # a merc train directory (config.yaml + labels.json + ...)
    if not root.is_dir():
        raise MercError(f"{root}: not a model directory; pass the directory written by merc train or save_pretrained")
    if not (root / CONFIG_JSON).is_file() or not (root / WEIGHTS).is_file():
        raise MercError(f"{root}: incomplete model directory, needs {CONFIG_JSON} and {WEIGHTS}; copy the whole "
                        "directory or save it again")
    raw = load_json_file(root / CONFIG_JSON)
    if not isinstance(raw, dict) or raw.get("model_type") != MODEL_TYPE:
        found = raw.get("model_type") if isinstance(raw, dict) else type(raw).__name__
        raise MercError(f"{root / CONFIG_JSON}: model_type is {found!r}, not 'merc'; this is not "
                        "a merc model (a plain transformers model belongs in merc finetune --encoder)")
    try:
        config = with_legacy_options(ExperimentConfig.from_dict(raw["experiment"], source=str(root / CONFIG_JSON)))
        architecture = check_architecture(raw.get("architecture"), root / CONFIG_JSON)
        labels = check_label_names(raw.get("labels"), architecture["num_classes"], root / CONFIG_JSON)
        spec = {m: dict(r) for m, r in dict(raw.get("feature_spec") or {}).items()}
        # records of registered extractors can be rebuilt by Predictor; others (merc finetune's
        # context features) only check supplied features
        info = {**dict(raw.get("info") or {}), "card": dict(raw.get("card") or {}),
                "extractors": {m: r for m, r in spec.items() if r.get("name") in EXTRACTORS},
                "feature_spec": {m: r for m, r in spec.items() if r.get("name") not in EXTRACTORS}}
        metrics = dict(raw.get("metrics") or {})
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise MercError(f"{root / CONFIG_JSON}: unreadable model config ({type(exc).__name__}); save the model "
                        "again or restore the file") from None
    method = load_checked_method(config, architecture, root)
    return ModelBundle(method, config, labels, architecture, metrics, info, root, load_stand_in(root / STAND_IN_FILE))


def push_to_hub(bundle: ModelBundle, repo_id: str, private: bool = False, token: str | None = None,
                commit_message: str = "Upload merc model", card: Mapping[str, Any] | None = None) -> str:
    """Save ``bundle`` with :func:`save_pretrained` and upload it to Hub repository ``repo_id``
    (created if needed). Needs network access and a token (``huggingface-cli login``). Returns the
    URL of the commit. ``load_pretrained(repo_id)`` (or ``Predictor.from_pretrained``) reads it back."""
    try:
        from huggingface_hub import HfApi
    except ImportError:
        raise MercError("push_to_hub needs huggingface_hub; pip install 'merc[hf]'") from None
    if repo_id.count("/") != 1 or repo_id.startswith(("/", ".", "~")) or repo_id.endswith("/"):
        raise MercError(f"push_to_hub: repo_id {repo_id!r} is not a Hub repository id; use 'user/name' or "
                        "'organisation/name'")
    api = HfApi(token=token)
    with tempfile.TemporaryDirectory(prefix="merc-push-") as tmp:
        save_pretrained(bundle, tmp, card)
        try:
            api.create_repo(repo_id, private=private, exist_ok=True)
            info = api.upload_folder(repo_id=repo_id, folder_path=tmp, commit_message=commit_message)
        except Exception as exc:  # noqa: BLE001 - offline, no token, no write access: all end the same way
            first_line = (str(exc).strip().splitlines() or [""])[0][:160]
            reason = f"{type(exc).__name__}: {first_line}" if first_line else type(exc).__name__
            raise MercError(f"push_to_hub: cannot upload to '{repo_id}' ({reason}"
                            f"); check your connection and log in with `huggingface-cli login` or pass token= "
                            f"(HF_HUB_OFFLINE={os.environ.get('HF_HUB_OFFLINE', '0')})") from None
    return str(getattr(info, "commit_url", info))
