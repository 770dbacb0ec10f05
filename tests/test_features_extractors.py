"""Text, audio and visual extractors on tiny real inputs (espeak-ng speech, generated images)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from merc.errors import ConfigError, DataError, MercError
from merc.registry import EXTRACTORS


@pytest.fixture(scope="module")
def speech(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed")
    path = tmp_path_factory.mktemp("audio") / "hello.wav"
    subprocess.run(["espeak-ng", "-w", str(path), "hello there, how are you"], check=True, capture_output=True)
    return path


def test_registry_lists_builtin_extractors() -> None:
    assert {"minilm", "sentence-transformers", "wordllama", "librosa", "opensmile", "image-stats"} <= set(EXTRACTORS.list())
    with pytest.raises(MercError, match="valid options"):
        EXTRACTORS.create("librosa", n_mfccs=13)


def test_minilm_sentence_embeddings_are_semantic() -> None:
    ext = EXTRACTORS.create("minilm")
    a, b, c = ext.extract(["I am so happy today!", "What a joyful day, I'm delighted.", "The invoice is overdue."])
    assert a.shape == (384,) and a.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(a), 1.0, atol=1e-4)  # the model normalises
    assert a @ b > a @ c + 0.2


def test_minilm_token_level_and_pooling() -> None:
    frames = EXTRACTORS.create("minilm", level="frame").extract(["hello there", "a much longer utterance than that"])
    assert frames[0].ndim == 2 and frames[0].shape[1] == 384 and frames[1].shape[0] > frames[0].shape[0]
    mean = EXTRACTORS.create("minilm", pooling="mean").extract(["hello there"])[0]
    np.testing.assert_allclose(mean, frames[0].mean(0), atol=1e-5)
    with pytest.raises(ConfigError, match="pooling"):
        EXTRACTORS.create("minilm", pooling="median")


def test_wordllama_is_offline_and_sized() -> None:
    ext = EXTRACTORS.create("wordllama", dim=64)
    out = ext.extract(["hello there", "goodbye"])
    assert [o.shape for o in out] == [(64,), (64,)] and ext.dim == 64


def test_librosa_functionals_and_frames(speech: Path) -> None:
    ext = EXTRACTORS.create("librosa")
    (vec,) = ext.extract([str(speech)])
    assert vec.shape == (ext.dim,) == (265,) and np.isfinite(vec).all()
    assert 1.0 < vec[-1] < 4.0  # duration in seconds of the synthesised phrase
    frames = EXTRACTORS.create("librosa", level="frame").extract([str(speech)])[0]
    assert frames.shape[1] == 66 and frames.shape[0] == pytest.approx(vec[-1] * 100, abs=3)  # 10 ms hop
    silence = ext.descriptors(np.zeros(50, dtype=np.float32))
    assert np.isfinite(silence).all()


def test_audio_errors_name_the_file(tmp_path: Path) -> None:
    ext = EXTRACTORS.create("librosa")
    with pytest.raises(DataError, match="missing.wav.*not found"):
        ext.extract([str(tmp_path / "missing.wav")])
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not audio at all")
    with pytest.raises(DataError, match="bad.wav.*cannot decode"):
        ext.extract([str(bad)])


def test_opensmile_is_optional() -> None:
    try:
        import opensmile  # noqa: F401
    except ImportError:
        with pytest.raises(MercError, match="pip install"):
            EXTRACTORS.create("opensmile").settings()
    else:  # pragma: no cover - only where the extra is installed
        assert EXTRACTORS.create("opensmile").dim == 88


def test_image_stats_images_and_frame_folders(tmp_path: Path) -> None:
    from PIL import Image

    rng = np.random.default_rng(0)
    frames = tmp_path / "clip"
    frames.mkdir()
    for i in range(3):
        Image.fromarray(rng.integers(0, 255, (48, 40, 3), dtype=np.uint8)).save(frames / f"{i:03d}.png")
    red = np.zeros((32, 32, 3), dtype=np.uint8)
    red[..., 0] = 255
    Image.fromarray(red).save(tmp_path / "red.png")
    ext = EXTRACTORS.create("image-stats")
    clip, plain = ext.extract([str(frames), str(tmp_path / "red.png")])
    assert clip.shape == plain.shape == (170,)
    assert plain[0] == pytest.approx(1.0)  # all pixels in the first hue bin (red)
    assert plain[24:24 + 144].sum() == pytest.approx(0.0, abs=1e-6)  # flat image: no gradients
    per_frame = EXTRACTORS.create("image-stats", level="frame").extract([str(frames)])[0]
    assert per_frame.shape == (3, 170)
    np.testing.assert_allclose(per_frame.mean(0), clip, atol=1e-6)
    with pytest.raises(DataError, match="clip.mp4"):
        ext.extract([str(tmp_path / "clip.mp4")])
