"""The synthetic generator: determinism, sizes, planted interaction types, inertia, presets, validation."""

from __future__ import annotations

import re
import time

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_score

from merc.data.collate import collate_dialogues
from merc.data.schema import MODALITIES, DialogueDataset
from merc.data.synthetic import CONTEXT_ONLY, REDUNDANT, SYNERGY, UNIQUE, SyntheticConfig, generate
from merc.errors import ConfigError
from merc.registry import DATASETS

# A probe-friendly configuration: many short dialogues, small dims, uniform classes.
PROBE = SyntheticConfig(train_dialogues=300, test_dialogues=1, min_length=8, max_length=12, text_dim=24,
                        audio_dim=24, visual_dim=24, evidence_dim=4, nuisance_dim=4, noise_rank=8,
                        unique=0.25, redundant=0.25, synergy=0.25, context_only=0.25, synergy_triple=0.0,
                        evidence_scale=5.0)


def flat(dataset: DialogueDataset) -> dict[str, np.ndarray]:
    """All utterances of ``dataset`` as flat arrays (features, labels, meta)."""
    out = {m: np.concatenate([d.features[m] for d in dataset]) for m in MODALITIES}
    out["y"] = np.concatenate([d.labels for d in dataset])
    for key in dataset.dialogues[0].meta:
        out[key] = np.concatenate([d.meta[key] for d in dataset])
    return out


@pytest.fixture(scope="module")
def probe_data() -> dict[str, np.ndarray]:
    return flat(generate(PROBE, seed=0))


def probe_accuracy(x: np.ndarray, y: np.ndarray) -> float:
    """3-fold cross-validated accuracy of a linear probe."""
    return float(cross_val_score(LogisticRegression(max_iter=500), x, y, cv=3).mean())


# -- determinism ----------------------------------------------------------------------------
def test_same_seed_gives_identical_arrays_and_other_seed_differs():
    config = SyntheticConfig(train_dialogues=6, test_dialogues=2)
    a, b, c = generate(config, 3), generate(config, 3), generate(config, 4)
    assert [d.id for d in a] == [d.id for d in b] and a.splits == b.splits
    for da, db in zip(a, b):
        assert da.speakers == db.speakers
        np.testing.assert_array_equal(da.labels, db.labels)
        for m in MODALITIES:
            np.testing.assert_array_equal(da.features[m], db.features[m])
        for key in da.meta:
            np.testing.assert_array_equal(da.meta[key], db.meta[key])
    assert not np.array_equal(flat(a)["t"][:50], flat(c)["t"][:50])
    assert [len(d) for d in a] != [len(d) for d in c] or not np.array_equal(flat(a)["y"], flat(c)["y"])


def test_changing_one_dimension_leaves_labels_and_other_modalities_unchanged():
    base = SyntheticConfig(train_dialogues=5, test_dialogues=2)
    a, b = flat(generate(base, 1)), flat(generate(base.replace(audio_dim=40), 1))
    np.testing.assert_array_equal(a["y"], b["y"])
    np.testing.assert_array_equal(a["interaction"], b["interaction"])
    np.testing.assert_array_equal(a["t"], b["t"])
    assert b["a"].shape[1] == 40


# -- sizes and structure --------------------------------------------------------------------
def test_synthetic_iemocap_has_iemocaps_exact_shape():
    start = time.perf_counter()
    ds = DATASETS.create("synthetic-iemocap", seed=0)
    elapsed = time.perf_counter() - start
    assert len(ds) == 151 and ds.num_utterances == 7433
    assert len(ds.splits["train"]) == 120 and sum(len(d) for d in ds.split("train")) == 5810
    assert len(ds.splits["test"]) == 31 and sum(len(d) for d in ds.split("test")) == 1623
    assert "dev" not in ds.splits  # carved from train by the loader
    assert ds.dims == {"t": 1024, "a": 1582, "v": 342}
    assert ds.label_names == ["hap", "sad", "neu", "ang", "exc", "fru"]
    assert set(ds.speaker_names()) == {"M", "F"} and ds.dialogues[0].texts is None
    assert all(d.features["a"].dtype == np.float32 for d in ds)
    assert elapsed < 10.0  # about half a second on an idle core; generous for shared CI machines


@pytest.mark.parametrize("total", [20 * 6, 20 * 11, 20 * 15])
def test_utterance_totals_are_met_exactly_within_the_length_range(total):
    config = SyntheticConfig(train_dialogues=20, test_dialogues=3, train_utterances=total, min_length=6,
                             max_length=15)
    ds = generate(config, 0)
    lengths = [len(d) for d in ds.split("train")]
    assert sum(lengths) == total and min(lengths) >= 6 and max(lengths) <= 15


def test_dev_split_is_generated_only_when_asked():
    ds = generate(SyntheticConfig(train_dialogues=4, dev_dialogues=2, test_dialogues=3), 0)
    assert [len(ds.splits[s]) for s in ("train", "dev", "test")] == [4, 2, 3]
    assert ds.meta["dev_split"] == "generated" and ds.meta["seed"] == 0


def test_turn_taking_and_party_counts():
    alternate = generate(SyntheticConfig(train_dialogues=5, turn_switch=1.0, speaker_names=("M", "F")), 0)
    for d in alternate:
        assert all(a != b for a, b in zip(d.speakers, d.speakers[1:]))
    monologue = generate(SyntheticConfig(train_dialogues=5, turn_switch=0.0), 0)
    assert all(len(set(d.speakers)) == 1 for d in monologue)
    many = generate(SyntheticConfig(train_dialogues=30, num_speakers=2, max_speakers=4, min_length=30,
                                    max_length=30, evidence_dim=4), 0)
    counts = {len(set(d.speakers)) for d in many}
    assert counts <= {2, 3, 4} and 4 in counts and many.max_parties() == 4


def test_meta_encoding_is_consistent(probe_data):
    inter, mod, mask = probe_data["interaction"], probe_data["evidence_modality"], probe_data["evidence_mask"]
    assert set(np.unique(inter)) == {UNIQUE, REDUNDANT, SYNERGY, CONTEXT_ONLY}
    u = inter == UNIQUE
    assert np.all(mod[~u] == -1) and np.all(np.isin(mod[u], [0, 1, 2]))
    np.testing.assert_array_equal(mask[u], 1 << mod[u])
    assert np.all(mask[inter == REDUNDANT] == 7) and np.all(mask[inter == CONTEXT_ONLY] == 0)
    assert set(np.unique(mask[inter == SYNERGY])) == {3, 5, 6}  # pairs only in PROBE
    shares = np.bincount(inter, minlength=4) / inter.size
    np.testing.assert_allclose(shares, PROBE.interaction_shares, atol=0.04)


def test_meta_flows_into_batches():
    ds = generate(SyntheticConfig(train_dialogues=3, test_dialogues=1), 0)
    batch = collate_dialogues(ds.dialogues, "tav")
    np.testing.assert_array_equal(batch.meta["interaction"].numpy(), flat(ds)["interaction"])


# -- planted interaction types --------------------------------------------------------------
def test_unique_evidence_is_readable_only_from_its_modality(probe_data):
    for mi, m in enumerate(MODALITIES):
        rows = (probe_data["interaction"] == UNIQUE) & (probe_data["evidence_modality"] == mi)
        y = probe_data["y"][rows]
        own = probe_accuracy(probe_data[m][rows], y)
        others = [probe_accuracy(probe_data[o][rows], y) for o in MODALITIES if o != m]
        assert own > 0.8, (m, own)
        assert max(others) < 0.45, (m, others)  # chance is 0.25


def test_redundant_evidence_is_readable_from_every_modality(probe_data):
    rows = probe_data["interaction"] == REDUNDANT
    for m in MODALITIES:
        assert probe_accuracy(probe_data[m][rows], probe_data["y"][rows]) > 0.8


def test_synergy_needs_the_combination_of_modalities(probe_data):
    # Pair (t, a): evidence mask 1 | 2.
    rows = (probe_data["interaction"] == SYNERGY) & (probe_data["evidence_mask"] == 3)
    y = probe_data["y"][rows]
    singles = [probe_accuracy(probe_data[m][rows], y) for m in MODALITIES]
    joint_linear = probe_accuracy(np.concatenate([probe_data["t"][rows], probe_data["a"][rows]], axis=1), y)
    assert max(singles) < 0.4 and joint_linear < 0.4, (singles, joint_linear)  # chance is 0.25

    # Combination probe: read each modality's key with a probe fitted on redundant utterances,
    # then a linear probe on the outer product of the two key posteriors.
    red = probe_data["interaction"] == REDUNDANT
    keys = {m: LogisticRegression(max_iter=500).fit(probe_data[m][red], probe_data["y"][red])
            for m in ("t", "a")}
    p_t, p_a = (keys[m].predict_proba(probe_data[m][rows]) for m in ("t", "a"))
    outer = (p_t[:, :, None] * p_a[:, None, :]).reshape(len(y), -1)
    assert probe_accuracy(outer, y) > 0.8


def test_context_only_utterances_carry_no_own_evidence(probe_data):
    rows = probe_data["interaction"] == CONTEXT_ONLY
    x = np.concatenate([probe_data[m][rows] for m in MODALITIES], axis=1)
    assert probe_accuracy(x, probe_data["y"][rows]) < 0.4


# -- conversation dynamics ------------------------------------------------------------------
def previous_same_speaker_agreement(dataset: DialogueDataset) -> float:
    same = total = 0
    for d in dataset:
        speakers = np.asarray(d.speakers)
        for s in np.unique(speakers):
            y = d.labels[speakers == s]
            same += int((y[1:] == y[:-1]).sum())
            total += y.size - 1
    return same / total


@pytest.mark.parametrize("inertia", [0.0, 0.8])
def test_inertia_is_measurable(inertia):
    config = SyntheticConfig(train_dialogues=80, min_length=20, max_length=20, inertia=inertia, speaker_bias=0.0)
    agreement = previous_same_speaker_agreement(generate(config, 0))
    expected = inertia + (1 - inertia) * 0.25  # uniform prior over 4 classes
    assert abs(agreement - expected) < 0.05


def test_speaker_bias_makes_speakers_idiosyncratic():
    def mean_speaker_entropy(bias: float) -> float:
        config = SyntheticConfig(train_dialogues=60, min_length=20, max_length=20, inertia=0.0, speaker_bias=bias,
                                 speaker_concentration=0.3)
        entropies = []
        for d in generate(config, 0):
            for s in set(d.speakers):
                p = np.bincount(d.labels[np.asarray(d.speakers) == s], minlength=4) / d.speakers.count(s)
                entropies.append(-(p[p > 0] * np.log(p[p > 0])).sum())
        return float(np.mean(entropies))

    assert mean_speaker_entropy(1.0) < mean_speaker_entropy(0.0) - 0.3


def test_class_prior_is_respected():
    config = SyntheticConfig(train_dialogues=200, class_prior=(6, 2, 1, 1), speaker_bias=0.5)
    counts = generate(config, 0).class_counts()
    np.testing.assert_allclose(counts / counts.sum(), [0.6, 0.2, 0.1, 0.1], atol=0.05)


# -- registry and presets -------------------------------------------------------------------
def test_presets_are_registered():
    assert {"synthetic-iemocap", "synthetic-small", "synthetic-context"} <= set(DATASETS.list())


def test_small_preset_shape_and_overrides():
    ds = DATASETS.create("synthetic-small", path=None, seed=2, text_dim=48)
    assert len(ds) == 40 and ds.num_classes == 4 and ds.dims == {"t": 48, "a": 24, "v": 16}
    assert all(6 <= len(d) <= 20 for d in ds) and ds.meta["seed"] == 2
    context = DATASETS.create("synthetic-context", train_dialogues=4, test_dialogues=2)
    assert len(context) == 6 and context.meta["config"]["inertia"] == 0.85


def test_unknown_override_names_the_valid_options():
    with pytest.raises(ConfigError, match="unknown synthetic option.*inertai.*valid options:.*inertia"):
        DATASETS.create("synthetic-small", inertai=0.5)


# -- validation -----------------------------------------------------------------------------
@pytest.mark.parametrize("overrides, field", [
    ({"label_names": ("a",)}, "label_names"),
    ({"class_prior": (1.0, 2.0)}, "class_prior"),
    ({"train_dialogues": 0}, "train_dialogues"),
    ({"min_length": 10, "max_length": 5}, "min_length/max_length"),
    ({"train_utterances": 10_000}, "train_utterances"),
    ({"inertia": 1.0}, "inertia"),
    ({"turn_switch": -0.1}, "turn_switch"),
    ({"unique": 0.9}, "unique/redundant/synergy/context_only"),
    ({"visual_dim": 4}, "visual_dim"),
    ({"speaker_names": ("M",)}, "speaker_names"),
    ({"max_speakers": 1}, "max_speakers"),
    ({"confusable_pairs": ((0, 9),)}, "confusable_pairs"),
    ({"confusability": 1.0}, "confusability"),
    ({"noise_rank": -1}, "noise_rank"),
    ({"class_prior": 5}, "class_prior"),
    ({"text_dim": 32.5}, "text_dim"),
])
def test_invalid_config_raises_naming_the_field(overrides, field):
    with pytest.raises(ConfigError, match=re.escape(f"'{field}'")):
        SyntheticConfig(**overrides)


def test_invalid_seed_is_a_config_error():
    with pytest.raises(ConfigError, match="seed"):
        generate(SyntheticConfig(), seed=-1)
