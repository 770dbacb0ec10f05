"""The BROJA/CVX PID estimator on gates with known decompositions, and the generator's own rule."""

from __future__ import annotations

import numpy as np
import pytest

from merc.data.synthetic import PRESETS, generate_with_planting
from merc.data.synthetic.oracle import rule_kinds
from merc.explain.pid import joint_distribution, minimum_synergy_distribution, pid

X1, X2 = np.array([0, 0, 1, 1]), np.array([0, 1, 0, 1])


@pytest.mark.parametrize("name, y, expected", [
    ("xor", X1 ^ X2, (0.0, 0.0, 0.0, 1.0)),          # synergy only
    ("copy x1", X1, (0.0, 1.0, 0.0, 0.0)),           # unique to x1
    ("and", X1 & X2, (0.3113, 0.0, 0.0, 0.5)),       # BROJA's AND: R = 0.311 bits, S = 0.5 bit
    ("both", 2 * X1 + X2, (0.0, 1.0, 1.0, 0.0)),     # y = (x1, x2): one unique bit each
])
def test_pid_of_gates(name, y, expected):
    result = pid(joint_distribution(X1, X2, y))
    got = (result.redundancy, result.unique1, result.unique2, result.synergy)
    assert got == pytest.approx(expected, abs=1e-3), name
    assert sum(got) == pytest.approx(result.total, abs=1e-9)


def test_pid_redundant_copy():
    result = pid(joint_distribution(X1, X1, X1))
    assert (result.redundancy, result.synergy) == pytest.approx((1.0, 0.0), abs=1e-6)


def test_minimum_synergy_distribution_keeps_marginals_and_lowers_mi():
    rng = np.random.default_rng(0)
    p = rng.random((5, 4, 3)) ** 3
    p /= p.sum()
    q = minimum_synergy_distribution(p)
    assert np.allclose(q.sum(1), p.sum(1), atol=1e-6) and np.allclose(q.sum(0), p.sum(0), atol=1e-6)
    result = pid(p)
    assert result.synergy >= -1e-6 and result.unique1 >= -1e-6 and result.unique2 >= -1e-6
    longer = pid(p, steps=1500)  # converged: more steps change the atoms by little
    assert longer.synergy == pytest.approx(result.synergy, abs=5e-3)


@pytest.mark.parametrize("preset", ["synthetic-small", "synthetic-subspace-small"])
def test_generator_rule_recovers_the_planted_kind(preset):
    config = PRESETS[preset]
    dataset, planting = generate_with_planting(config, seed=0)
    x = {m: np.concatenate([d.features[m] for d in dataset.dialogues]) for m in "tav"}
    interaction = np.concatenate([d.meta["interaction"] for d in dataset.dialogues])
    carrier = np.concatenate([d.meta["evidence_modality"] for d in dataset.dialogues])
    kind, named = rule_kinds(config, planting, x)
    evid = interaction < 3
    majority = np.bincount(interaction[evid]).max() / evid.sum()
    assert (kind[evid] == interaction[evid]).mean() > 0.9 > majority + 0.3
    unique = interaction == 0
    assert (named[unique] == carrier[unique]).mean() > 0.85
