"""Partial information decomposition (PID) of two discrete sources about a label — dataset level.

``I(X1, X2; Y) = R + U1 + U2 + S`` with the definitions of Bertschinger et al. (2014, "BROJA")
as used by Liang et al. (NeurIPS 2023, "Quantifying & modeling multimodal interactions", their
*CVX* estimator for discrete data): over the distributions ``Δ_p`` that keep both pairwise
marginals ``p(x1, y)`` and ``p(x2, y)``, let ``q* = argmin_q I_q(X1, X2; Y)``; then

- ``R = I_q*(X1; Y) − I_q*(X1; Y | X2)`` (co-information under ``q*``),
- ``U1 = I_q*(X1; Y | X2)``, ``U2 = I_q*(X2; Y | X1)``,
- ``S = I_p(X1, X2; Y) − I_q*(X1, X2; Y)``.

The reference solves the convex program with CVXPY. Here it is solved by mirror descent in the
KL geometry: the gradient of ``I_q(X1, X2; Y)`` is ``log q(y | x1, x2)``, a multiplicative step
``q ← q · q(y|x1,x2)^(−η)`` is followed by the KL projection back onto ``Δ_p`` — for each ``y``
an iterative proportional fitting (Sinkhorn) of ``q(·, ·, y)`` to the fixed marginals. Every
iterate is feasible and the objective is convex, so no solver dependency is needed. Values in
bits. Continuous features must be discretised first (e.g. :func:`discretise_kmeans`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_TINY = 1e-300


@dataclass
class PID:
    """Redundancy, unique (1, 2) and synergy information in bits, and the total ``I(X1, X2; Y)``."""

    redundancy: float
    unique1: float
    unique2: float
    synergy: float
    total: float

    def shares(self) -> dict[str, float]:
        """Each atom as a share of their sum (NaN when there is no information)."""
        atoms = {"R": self.redundancy, "U1": self.unique1, "U2": self.unique2, "S": self.synergy}
        total = sum(max(v, 0.0) for v in atoms.values())
        return {k: max(v, 0.0) / total if total > 0 else float("nan") for k, v in atoms.items()}


def joint_distribution(x1: np.ndarray, x2: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Empirical ``p(x1, x2, y)`` of integer symbols (``0 … K−1``).

    Shapes:
        - x1, x2, y: ``[N]`` non-negative ints; output: ``[K1, K2, C]`` summing to 1
    """
    shape = (int(x1.max()) + 1, int(x2.max()) + 1, int(y.max()) + 1)
    counts = np.zeros(shape)
    np.add.at(counts, (x1, x2, y), 1.0)
    return counts / counts.sum()


def _mutual_information(pxy: np.ndarray) -> float:
    """``I(X; Y)`` in bits of a 2-D joint ``[K, C]``."""
    outer = pxy.sum(1, keepdims=True) * pxy.sum(0, keepdims=True)
    nz = pxy > 0
    return float((pxy[nz] * np.log2(pxy[nz] / outer[nz])).sum())


def _joint_mi(p: np.ndarray) -> float:
    """``I(X1, X2; Y)`` of ``[K1, K2, C]``."""
    return _mutual_information(p.reshape(-1, p.shape[2]))


def _conditional_mi(p: np.ndarray, given: int) -> float:
    """``I(X_other; Y | X_given)`` of ``[K1, K2, C]`` (``given`` 0 = X1, 1 = X2)."""
    return _joint_mi(p) - _mutual_information(p.sum(1 - given))


def _fit_marginals(q: np.ndarray, m1: np.ndarray, m2: np.ndarray, iterations: int) -> np.ndarray:
    """KL projection of ``q`` onto ``{q: q(x1, y) = m1, q(x2, y) = m2}`` by alternating scaling."""
    for _ in range(iterations):
        q = q * (m1 / np.maximum(q.sum(1), _TINY))[:, None, :]
        q = q * (m2 / np.maximum(q.sum(0), _TINY))[None, :, :]
    return q


def minimum_synergy_distribution(p: np.ndarray, steps: int = 300, step_size: float = 0.5,
                                 projection_iterations: int = 30) -> np.ndarray:
    """``q* = argmin_{q ∈ Δ_p} I_q(X1, X2; Y)`` by mirror descent with Sinkhorn projections.

    Starts from ``p(x1|y) p(x2|y) p(y)`` (in ``Δ_p``; optimal when ``X1 ⟂ X2 | Y``).

    Shapes:
        - p: ``[K1, K2, C]``; output: same
    """
    m1, m2 = p.sum(1), p.sum(0)  # (K1, C), (K2, C)
    py = p.sum((0, 1))
    q = m1[:, None, :] * m2[None, :, :] / np.maximum(py, _TINY)[None, None, :]
    for _ in range(steps):
        cond = q / np.maximum(q.sum(2, keepdims=True), _TINY)  # q(y | x1, x2)
        q = q * np.where(q > 0, np.maximum(cond, _TINY) ** (-step_size), 0.0)
        q = _fit_marginals(q / q.sum(), m1, m2, projection_iterations)
    return q


def pid(p: np.ndarray, **solver: float) -> PID:
    """The BROJA/CVX partial information decomposition of a joint ``p(x1, x2, y)``.

    Shapes:
        - p: ``[K1, K2, C]`` (non-negative, summing to 1)
    """
    q = minimum_synergy_distribution(p, **solver)  # type: ignore[arg-type]
    u1, u2 = _conditional_mi(q, given=1), _conditional_mi(q, given=0)
    redundancy = _mutual_information(q.sum(1)) - u1
    total = _joint_mi(p)
    return PID(redundancy, u1, u2, total - _joint_mi(q), total)


def discretise_kmeans(x: np.ndarray, clusters: int, components: int = 16, seed: int = 0) -> np.ndarray:
    """Cluster labels ``[N]`` of standardised, PCA-reduced ``x`` (``[N, d]``) by k-means.

    Unsupervised (no label is used), as Liang et al. discretise continuous modalities.
    """
    from sklearn.cluster import KMeans
    from sklearn.decomposition import PCA
    from sklearn.preprocessing import StandardScaler

    z = StandardScaler().fit_transform(x)
    if components and z.shape[1] > components:
        z = PCA(components, random_state=seed).fit_transform(z)
    return KMeans(clusters, n_init=4, random_state=seed).fit_predict(z).astype(np.int64)
