"""Fetch the public transcripts of named datasets (MELD, EmoryNLP), verified by SHA-256.

``fetch_dataset("meld")`` downloads the CSVs from their public origin (the declare-lab/MELD
repository at a pinned commit) or, with ``source_dir=``, copies them from a local folder; every
file is checked against the checksums below. Files are staged in a temporary folder next to the
destination and only moved into place (one atomic rename each) after *all* of them verified,
so a failed or corrupted fetch leaves nothing behind.

The cache root is ``$MERC_DATA_DIR`` or ``~/.cache/merc/datasets``; a dataset lands in
``<root>/<name>/``.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from merc.errors import DataError

_MELD_COMMIT = "2d2011b409d3ca2d7e94460cd007d434b1d0a102"
_BASE_URL = f"https://raw.githubusercontent.com/declare-lab/MELD/{_MELD_COMMIT}/data"


@dataclass(frozen=True)
class RemoteDataset:
    """A fetchable dataset: ``files`` maps file name → SHA-256; ``url`` is the folder URL."""

    name: str
    url: str
    files: dict[str, str]
    licence: str


REMOTE_DATASETS: dict[str, RemoteDataset] = {
    "meld": RemoteDataset("meld", f"{_BASE_URL}/MELD", {
        "train_sent_emo.csv": "d2fa2d6529cf03cac2989efec05c9b27d8fd2f4c8fc5974c7ae88aa537fa02db",
        "dev_sent_emo.csv": "2e89c6f8aa182d6f62f8c6331aece905ac7273ca4999660bfb5213e1d0370c1c",
        "test_sent_emo.csv": "8d37103938f7067600839fe29d5a114a6cd1bcdafb75bec101e06464c5006888",
    }, "GPL-3.0 (declare-lab/MELD)"),
    "emorynlp": RemoteDataset("emorynlp", f"{_BASE_URL}/emorynlp", {
        "emorynlp_train_final.csv": "462c66c333783adb801836d12d1424f48489bef4fb8ddfec7fbb2f08ce8211d5",
        "emorynlp_dev_final.csv": "20edc9d5917fe705b17b849f7f288e495d4132a60353a6247c3800445bdf8734",
        "emorynlp_test_final.csv": "dbc4b5638acd12c92a5f48def829e04f1c765cddffb4eedbe34216312e0d2d78",
    }, "Apache-2.0 (emorynlp/emotion-detection)"),
}


def data_root() -> Path:
    """The dataset cache root: ``$MERC_DATA_DIR`` or ``~/.cache/merc/datasets``."""
    env = os.environ.get("MERC_DATA_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "merc" / "datasets"


def dataset_dir(name: str, root: str | Path | None = None) -> Path:
    """Where fetched dataset ``name`` lives (``<root>/<name>``)."""
    return (Path(root).expanduser() if root is not None else data_root()) / name


def sha256_of(path: Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def is_fetched(name: str, root: str | Path | None = None) -> bool:
    """True when every file of ``name`` is present (checksums are verified at fetch time)."""
    target = dataset_dir(name, root)
    return all((target / f).is_file() for f in _remote(name).files)


def _remote(name: str) -> RemoteDataset:
    if name not in REMOTE_DATASETS:
        raise DataError(name, "is not a fetchable dataset", field="name",
                        fix=f"choose from: {', '.join(REMOTE_DATASETS)}")
    return REMOTE_DATASETS[name]


def _local_source(source_dir: Path, spec: RemoteDataset) -> Path:
    """``source_dir`` itself or its ``<name>`` sub-folder, whichever holds the files."""
    for candidate in (source_dir, source_dir / spec.name):
        if all((candidate / f).is_file() for f in spec.files):
            return candidate
    missing = [f for f in spec.files if not (source_dir / f).is_file()]
    raise DataError(source_dir, f"lacks {', '.join(missing)}", field="--from",
                    fix=f"point --from at the folder holding {', '.join(spec.files)}")


def _download(url: str, dest: Path, timeout: float) -> None:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, open(dest, "wb") as out:
            shutil.copyfileobj(response, out, length=1 << 20)
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise DataError(url, f"download failed ({reason})", fix="check the network, or fetch with --from DIR "
                        "from a local copy") from None


def fetch_dataset(name: str, dest_root: str | Path | None = None, source_dir: str | Path | None = None,
                  force: bool = False, timeout: float = 60.0) -> Path:
    """Download (or copy from ``source_dir``) dataset ``name`` and verify every checksum.

    Args:
        name: ``meld`` or ``emorynlp``.
        dest_root: cache root (default :func:`data_root`); files land in ``<dest_root>/<name>``.
        source_dir: a local folder holding the files (or a parent with a ``<name>`` folder)
            to copy instead of downloading.
        force: fetch again even when the files are already present and valid.
        timeout: seconds per download.

    Returns:
        The folder holding the verified files.

    Raises:
        DataError: unknown name, missing source files, download failure or checksum mismatch;
            nothing new is left on disk in that case.
    """
    spec = _remote(name)
    target = dataset_dir(name, dest_root)
    if not force and all((target / f).is_file() and sha256_of(target / f) == h for f, h in spec.files.items()):
        return target
    local = _local_source(Path(source_dir).expanduser(), spec) if source_dir is not None else None
    target.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".fetch-{name}-", dir=target))
    try:
        for file_name, expected in spec.files.items():
            staged = staging / file_name
            if local is not None:
                shutil.copyfile(local / file_name, staged)
            else:
                _download(f"{spec.url}/{file_name}", staged, timeout)
            actual = sha256_of(staged)
            if actual != expected:
                origin = local / file_name if local is not None else f"{spec.url}/{file_name}"
                raise DataError(origin, f"checksum mismatch (sha256 {actual[:12]}…, expected {expected[:12]}…)",
                                field=file_name, fix="the file is corrupted or a different version; fetch a clean copy")
        for file_name in spec.files:
            with open(staging / file_name, "rb+") as fh:
                os.fsync(fh.fileno())
            os.replace(staging / file_name, target / file_name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        if target.is_dir() and not any(target.iterdir()):
            target.rmdir()
    return target
