"""The feature cache: hits on re-extraction, resumes after interruption, rebuilds corrupted chunks."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pytest

from merc.data.schema import Dialogue, DialogueDataset
from merc.features import FeatureCache, build_extractors, extract_features
from merc.features.base import Extractor


class CountingExtractor(Extractor):
    """Deterministic text 'features' (length and character codes) that counts its calls."""

    modality = "t"
    name = "counting"

    def __init__(self, level: str = "utterance", fail_after: int | None = None) -> None:
        self.level = level
        self.calls = 0
        self.items_seen = 0
        self.fail_after = fail_after

    def settings(self) -> dict[str, Any]:
        return {"level": self.level, "version": 1}

    @property
    def dim(self) -> int:
        return 3

    def extract(self, items: Sequence[Any]) -> list[np.ndarray]:
        if self.fail_after is not None and self.calls >= self.fail_after:
            raise KeyboardInterrupt  # simulates the user pressing Ctrl-C mid-extraction
        self.calls += 1
        self.items_seen += len(items)
        rows = [np.array([[len(t), ord(t[0]), ord(t[-1])]] * (1 + len(t) % 3), dtype=np.float32) for t in items]
        return rows if self.level == "frame" else [r[0] for r in rows]


def toy_dataset(n_dialogues: int = 4, length: int = 3) -> DialogueDataset:
    dialogues = [Dialogue(f"d{i}", ["A", "B", "A"][:length], texts=[f"utt {i}-{j}{'!' * j}" for j in range(length)],
                          labels=np.zeros(length, dtype=np.int64)) for i in range(n_dialogues)]
    return DialogueDataset("toy", dialogues, ["x", "y"], {"train": [d.id for d in dialogues]})


def test_second_extraction_hits_cache(tmp_path: Path) -> None:
    ds = toy_dataset()
    extractor = CountingExtractor()
    cache = FeatureCache(tmp_path, chunk_size=5, progress=False)
    first = extract_features(ds, {"t": extractor}, cache)
    assert extractor.calls == 3 and cache.stats.computed == 3  # 12 utterances in chunks of 5
    second = extract_features(ds, {"t": extractor}, cache)
    assert extractor.calls == 3, "a cached entry must never be recomputed"
    assert cache.stats.hits == 3
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a.features["t"], b.features["t"])
    assert first.dialogues[1].features["t"].shape == (3, 3)
    assert first.meta["extractors"]["t"]["dim"] == 3


def test_changed_settings_or_text_miss_the_cache(tmp_path: Path) -> None:
    ds = toy_dataset()
    cache = FeatureCache(tmp_path, chunk_size=5, progress=False)
    extract_features(ds, {"t": CountingExtractor()}, cache)
    frame = CountingExtractor(level="frame")
    extract_features(ds, {"t": frame}, cache)
    assert frame.calls == 3  # other settings → other key
    ds.dialogues[0].texts[0] = "edited"
    again = CountingExtractor()
    extract_features(ds, {"t": again}, cache)
    assert again.calls == 1 and again.items_seen == 5  # only the chunk holding the edited text


def test_interrupted_extraction_resumes(tmp_path: Path) -> None:
    ds = toy_dataset()
    cache = FeatureCache(tmp_path, chunk_size=4, progress=False)
    with pytest.raises(KeyboardInterrupt):
        extract_features(ds, {"t": CountingExtractor(fail_after=2)}, cache)
    resumed = CountingExtractor()
    out = extract_features(ds, {"t": resumed}, cache)
    assert resumed.calls == 1, "only the chunk not finished before the interruption is extracted"
    fresh = extract_features(ds, {"t": CountingExtractor()}, use_cache=False, progress=False)
    for a, b in zip(out, fresh):
        np.testing.assert_array_equal(a.features["t"], b.features["t"])


@pytest.mark.parametrize("damage", ["flip_byte", "truncate", "drop_checksum"])
def test_corrupted_chunk_is_detected_and_rebuilt(tmp_path: Path, damage: str) -> None:
    ds = toy_dataset()
    cache = FeatureCache(tmp_path, chunk_size=5, progress=False)
    reference = extract_features(ds, {"t": CountingExtractor()}, cache)
    chunk = sorted(tmp_path.rglob("00001-*.npz"))[0]
    raw = bytearray(chunk.read_bytes())
    if damage == "flip_byte":
        raw[len(raw) // 2] ^= 0xFF
        chunk.write_bytes(bytes(raw))
    elif damage == "truncate":
        chunk.write_bytes(bytes(raw[:20]))
    else:
        chunk.with_suffix(".json").unlink()
    extractor = CountingExtractor()
    rebuilt = extract_features(ds, {"t": extractor}, cache)
    assert extractor.calls == 1 and cache.stats.rebuilt == 1
    for a, b in zip(reference, rebuilt):
        np.testing.assert_array_equal(a.features["t"], b.features["t"])
    third = CountingExtractor()
    extract_features(ds, {"t": third}, cache)
    assert third.calls == 0, "the rebuilt chunk is trusted again"


def test_frame_level_round_trips_through_cache(tmp_path: Path) -> None:
    ds = toy_dataset(2)
    cache = FeatureCache(tmp_path, chunk_size=4, progress=False)
    first = extract_features(ds, {"t": CountingExtractor(level="frame")}, cache)
    second = extract_features(ds, {"t": CountingExtractor(level="frame")}, cache)
    for a, b in zip(first, second):
        assert [s.shape for s in a.sequences["t"]] == [s.shape for s in b.sequences["t"]]
        for x, y in zip(a.sequences["t"], b.sequences["t"]):
            np.testing.assert_array_equal(x, y)
        np.testing.assert_allclose(a.features["t"], np.stack([s.mean(0) for s in a.sequences["t"]]))


def test_minilm_extraction_twice_hits_cache(tmp_path: Path) -> None:
    ds = toy_dataset(2)
    cache = FeatureCache(tmp_path, chunk_size=4, progress=False)
    first = extract_features(ds, build_extractors({"t": "minilm"}), cache)
    assert cache.stats.computed == 2 and first.dims == {"t": 384}
    second = extract_features(ds, build_extractors({"t": "minilm"}), cache)
    assert cache.stats.hits == 2 and cache.stats.computed == 2
    np.testing.assert_array_equal(first.dialogues[0].features["t"], second.dialogues[0].features["t"])
    settings = first.meta["extractors"]["t"]["settings"]
    assert settings["model"].endswith("all-MiniLM-L6-v2") and len(settings["revision"]) == 16
