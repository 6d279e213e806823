r"""How far an input is from a recognizer's training data, and how much to trust it there.

A recognizer trained on acted speech in three languages is right on 0.7 of new actors of
those corpora and near chance on a talk show; its softmax does not know which it is
looking at. ``DomainModel`` measures the distance of the model's (standardised) input to
its training inputs and turns it into a *trust* ``\lambda \in (0, 1]`` that moves the
calibrated probabilities toward what the model says on average (its output prior
``\pi``)::

    d_pca = mean_i (u_i^2 / v_i)          u = V^T z, the k principal directions of training z
    d_res = |z - V u|^2 / r                r = the mean of that residual over training z
    \lambda = sigmoid(a + b log d_pca + c log d_res)
    p = \lambda softmax(logits / T) + (1 - \lambda) \pi

``d_pca`` is a Mahalanobis distance inside the training data's main subspace (about 1 on
training inputs), ``d_res`` how much of the input lies outside it (synthetic speech and
unseen channels live there). ``T``, ``a``, ``b`` and ``c`` are fitted together by
``fit_trust`` on *held-out* predictions (new speakers and whole corpora the fold model
never saw, each distance measured against that fold's own training data), so the
confidence is calibrated where the model meets data unlike its training set, not only
in-domain. An input whose trust is below ``min_trust`` (the 5th percentile of the trust of
held-out speakers of the training corpora) is *off-domain*: the consensus flags it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from emoforge.storage.records import DomainCheck

# The trust of an input this far out never reaches exactly 0: a vote that says nothing is the
# output prior, and log(0) would break the pooled vote's arithmetic.
MIN_LAMBDA = 1e-3


def _sigmoid(x: NDArray[Any]) -> NDArray[Any]:
    typed: NDArray[Any] = 1.0 / (1.0 + np.exp(-np.clip(x, -50, 50)))  # numpy's stubs type this Any
    return typed


@dataclass(frozen=True)
class DomainModel:
    components: NDArray[Any]  # (k, d) principal directions of the training inputs
    variances: NDArray[Any]  # (k,) training variance along each
    residual_scale: float  # mean squared residual of training inputs outside the k directions
    coef: NDArray[Any]  # (a, b, c) of the trust mapping
    temperature: float  # logits / T before the mix (fitted with the trust)
    min_trust: float  # below it an input is off-domain
    reference: str  # what the training data was, for the annotation

    def distances(self, z: NDArray[Any]) -> tuple[NDArray[Any], NDArray[Any]]:
        """``(d_pca, d_res)`` for rows of standardised inputs ``z`` (n, d)."""
        z = np.atleast_2d(z)
        u = z @ self.components.T
        d_pca = np.mean(u**2 / self.variances, axis=1)
        d_res = np.sum((z - u @ self.components) ** 2, axis=1) / self.residual_scale
        return d_pca, d_res

    def trust(self, z: NDArray[Any]) -> NDArray[Any]:
        d_pca, d_res = self.distances(z)
        return trust_of(self.coef, d_pca, d_res)

    def probabilities(
        self, logits: NDArray[Any], prior: NDArray[Any], z: NDArray[Any]
    ) -> tuple[NDArray[Any], NDArray[Any]]:
        """Class probabilities for rows of ``logits`` and their inputs ``z``, and the trust."""
        lam = self.trust(z)
        return mix(np.atleast_2d(logits) / self.temperature, prior, lam), lam

    def check(self, z: NDArray[Any]) -> DomainCheck:
        """The record an annotation carries: distances, trust, and whether it is off-domain."""
        d_pca, d_res = self.distances(z)
        lam = float(trust_of(self.coef, d_pca, d_res)[0])
        return DomainCheck(
            distance=round(float(d_pca[0]), 4),
            residual=round(float(d_res[0]), 4),
            trust=round(lam, 4),
            min_trust=round(self.min_trust, 4),
            off_domain=lam < self.min_trust,
            reference=self.reference,
        )

    def arrays(self) -> dict[str, Any]:
        """The fields as ``domain_*`` arrays of a weights file (``np.savez``)."""
        return {
            "domain_components": self.components.astype(np.float32),
            "domain_variances": self.variances.astype(np.float64),
            "domain_residual_scale": np.array(self.residual_scale),
            "domain_coef": self.coef.astype(np.float64),
            "domain_temperature": np.array(self.temperature),
            "domain_min_trust": np.array(self.min_trust),
            "domain_reference": np.array(self.reference),
        }

    @classmethod
    def from_arrays(cls, z: Any) -> DomainModel | None:
        """Read from an open ``np.load`` file; None for weights written before domain checks."""
        if "domain_components" not in z.files:
            return None
        return cls(
            components=z["domain_components"].astype(np.float64),
            variances=z["domain_variances"].astype(np.float64),
            residual_scale=float(z["domain_residual_scale"]),
            coef=z["domain_coef"].astype(np.float64),
            temperature=float(z["domain_temperature"]),
            min_trust=float(z["domain_min_trust"]),
            reference=str(z["domain_reference"]),
        )


def trust_of(coef: NDArray[Any], d_pca: NDArray[Any], d_res: NDArray[Any]) -> NDArray[Any]:
    a, b, c = coef
    lam = _sigmoid(a + b * np.log(np.maximum(d_pca, 1e-6)) + c * np.log(np.maximum(d_res, 1e-6)))
    return np.maximum(lam, MIN_LAMBDA)


def mix(logits: NDArray[Any], prior: NDArray[Any], lam: NDArray[Any]) -> NDArray[Any]:
    z = logits - logits.max(axis=1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(axis=1, keepdims=True)
    typed: NDArray[Any] = lam[:, None] * p + (1.0 - lam[:, None]) * prior[None, :]  # numpy's stubs type this Any
    return typed


def fit_subspace(z: NDArray[Any], k: int) -> tuple[NDArray[Any], NDArray[Any], float]:
    """The ``k`` principal directions of training inputs ``z`` (already centred by their
    standardisation), their variances and the mean squared residual outside them."""
    centred = z - z.mean(axis=0)
    _, s, vt = np.linalg.svd(centred, full_matrices=False)
    k = min(k, len(s))
    components, variances = vt[:k], (s[:k] ** 2) / max(1, len(z) - 1)
    u = z @ components.T
    residual = float(np.mean(np.sum((z - u @ components) ** 2, axis=1)))
    return components, np.maximum(variances, 1e-12), max(residual, 1e-12)


def fit_trust(
    logits: NDArray[Any], y: NDArray[Any], prior: NDArray[Any], d_pca: NDArray[Any], d_res: NDArray[Any]
) -> tuple[float, NDArray[Any]]:
    """Temperature and trust coefficients ``(a, b, c)`` minimising the negative
    log-likelihood of held-out labels ``y`` under ``mix(logits / T, prior, trust)``.

    ``b`` and ``c`` are bounded at <= 0: trust may only fall as an input moves away from the
    training data, never rise (a fit on three corpora must not learn that some far region
    happens to be easy)."""
    from scipy.optimize import minimize

    rows = np.arange(len(y))

    def nll(theta: NDArray[Any]) -> float:
        t, coef = np.exp(theta[0]), theta[1:]
        p = mix(logits / t, prior, trust_of(coef, d_pca, d_res))
        return float(-np.mean(np.log(p[rows, y] + 1e-12)))

    start = np.array([0.0, 2.0, 0.0, 0.0])
    bounds = [(-3.0, 3.0), (-20.0, 20.0), (-10.0, 0.0), (-10.0, 0.0)]
    result = minimize(nll, start, method="L-BFGS-B", bounds=bounds)
    return float(np.exp(result.x[0])), np.asarray(result.x[1:], dtype=np.float64)
