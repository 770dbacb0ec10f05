"""The subspace planting: each kind lives in its own block, identifiable from one modality."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from merc.data.synthetic import PRESETS, generate_with_planting
from merc.errors import ConfigError
from merc.registry import DATASETS


@pytest.fixture(scope="module")
def planted():
    dataset, planting = generate_with_planting(PRESETS["synthetic-subspace-small"], seed=0)
    flat = {k: np.concatenate([d.meta[k] for d in dataset.dialogues]) for k in ("interaction", "evidence_mask")}
    flat["x"] = {m: np.concatenate([d.features[m] for d in dataset.dialogues]) for m in "tav"}
    flat["y"] = np.concatenate([d.labels for d in dataset.dialogues])
    return flat, planting


def _probe(x: np.ndarray, y: np.ndarray) -> float:
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500))
    return float(cross_val_score(model, x, y, cv=3).mean())


def test_unique_in_t_is_decodable_from_t_only(planted):
    flat, _ = planted
    rows = (flat["interaction"] == 0) & (flat["evidence_mask"] == 1)
    y = flat["y"][rows]
    assert _probe(flat["x"]["t"][rows], y) > 0.9
    for m in "av":  # 4 classes: chance is about 0.25-0.4 (class imbalance of a small sample)
        assert _probe(flat["x"][m][rows], y) < 0.5


def test_kind_is_decodable_from_one_modality(planted):
    flat, _ = planted
    carriers = (flat["evidence_mask"] & 1) > 0  # text carries some evidence
    kind = flat["interaction"][carriers]
    majority = np.bincount(kind).max() / kind.size
    assert _probe(flat["x"]["t"][carriers], kind) > majority + 0.25


def test_synergy_only_from_the_combination(planted):
    flat, planting = planted
    rows = (flat["interaction"] == 2) & (flat["evidence_mask"] == 3)  # synergy pair (t, a)
    y = flat["y"][rows]
    assert rows.sum() > 30
    for m in "ta":
        assert _probe(flat["x"][m][rows], y) < 0.5
    # the generator's own rule: read each key from its S block, add them modulo C
    keys = [np.argmax(planting.block(m, flat["x"][m][rows], "S") @ planting.protos[m]["S"].T, axis=1) for m in "ta"]
    assert np.mean((keys[0] + keys[1]) % 4 == y) > 0.9


def test_redundant_evidence_is_one_shared_latent(planted):
    flat, planting = planted
    rows = flat["interaction"] == 1
    y = flat["y"][rows]
    blocks = {m: planting.block(m, flat["x"][m][rows], "R") for m in "tav"}
    # the same prototypes in every modality, plus one shared noise draw: residuals correlate (≈ 0.5)
    residual = {m: b - planting.protos[m]["R"][y] for m, b in blocks.items()}
    corr = np.corrcoef(residual["t"].ravel(), residual["a"].ravel())[0, 1]
    assert 0.35 < corr < 0.65
    assert planting.protos["t"]["R"] is planting.protos["v"]["R"]
    assert not np.allclose(planting.protos["t"]["U"], planting.protos["a"]["U"])
    # non-redundant utterances leave the R block empty: its residual is noise only, uncorrelated across modalities
    other = flat["interaction"] != 1
    noise = [planting.block(m, flat["x"][m][other], "R").ravel() for m in "ta"]
    assert abs(np.corrcoef(*noise)[0, 1]) < 0.1


def test_subspace_presets_registered_and_validated():
    assert {"synthetic-subspace", "synthetic-subspace-small"} <= set(DATASETS.list())
    with pytest.raises(ConfigError, match="planting"):
        PRESETS["synthetic-subspace-small"].replace(planting="mixed")
    with pytest.raises(ConfigError, match="text_dim"):  # 3 blocks of 4 + 4 nuisance = 16 latent dimensions
        PRESETS["synthetic-subspace-small"].replace(text_dim=12)
