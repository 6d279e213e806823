r"""How far an input is from a recognizer's training data, and how much to trust it there.

A recognizer trained on acted speech in three languages is right on 0.7 of new actors of
those corpora and near chance on a talk show; its softmax does not know which it is
looking at. ``DomainModel`` measures the distance of the model's (standardised) input to
its training inputs and, from it, softens the model's logits (a *temperature* that grows
with the distance) and moves the result toward what the model says on average (its output
prior ``\pi``, weighted by a *trust* ``\lambda \in (0, 1]``)::

    d_pca = mean_i (u_i^2 / v_i)          u = V^T z, the k principal directions of training z
    d_res = |z - V u|^2 / r                r = the mean of that residual over training z
    T = T_0 d_pca^{t_1} d_res^{t_2}       t_1, t_2 >= 0
    \lambda = sigmoid(a + b log d_pca + c log d_res)
    p = \lambda softmax(logits / T) + (1 - \lambda) \pi

``d_pca`` is a Mahalanobis distance inside the training data's main subspace (about 1 on
training inputs), ``d_res`` how much of the input lies outside it (synthetic speech and
unseen channels live there). ``T_0``, ``t_1``, ``t_2``, ``a``, ``b`` and ``c`` are fitted
together by ``fit_calibration`` on *held-out* predictions (new speakers and whole corpora
the fold model never saw, each distance measured against that fold's own training data),
so the confidence is calibrated where the model meets data unlike its training set, not
only in-domain. Why both: one temperature for every input has to choose between the
in-domain clips (whose regularised logits are about calibrated as they are) and the
unseen corpora (over-confident), and is wrong on both; a temperature that grows with the
distance fits each. Weights written before the distance temperature have ``t_1 = t_2 = 0``.

What an annotation records as its *trust* is how much the model's own view still counts,
both effects together: ``min(1, \lambda T_0 / T)`` (``\lambda`` alone where the
temperature does not depend on the distance). An input whose trust is below ``min_trust``
(the 5th percentile of the trust of held-out speakers of the training corpora) is
*off-domain*: the consensus flags it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
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
    # (t_1, t_2): how the temperature grows with d_pca and d_res (zeros: one temperature).
    temperature_coef: NDArray[Any] = field(default_factory=lambda: np.zeros(2))

    def distances(self, z: NDArray[Any]) -> tuple[NDArray[Any], NDArray[Any]]:
        """``(d_pca, d_res)`` for rows of standardised inputs ``z`` (n, d)."""
        z = np.atleast_2d(z)
        u = z @ self.components.T
        d_pca = np.mean(u**2 / self.variances, axis=1)
        d_res = np.sum((z - u @ self.components) ** 2, axis=1) / self.residual_scale
        return d_pca, d_res

    def trust(self, z: NDArray[Any]) -> NDArray[Any]:
        """How much the model's own view counts for rows of ``z`` (module docstring)."""
        d_pca, d_res = self.distances(z)
        return self._calibration(d_pca, d_res)[1]

    def temperatures(self, z: NDArray[Any]) -> NDArray[Any]:
        d_pca, d_res = self.distances(z)
        return temperature_of(self.temperature, self.temperature_coef, d_pca, d_res)

    def _calibration(self, d_pca: NDArray[Any], d_res: NDArray[Any]) -> tuple[NDArray[Any], NDArray[Any], NDArray[Any]]:
        return calibration_at(Calibration(self.temperature, self.temperature_coef, self.coef), d_pca, d_res)

    def probabilities(
        self, logits: NDArray[Any], prior: NDArray[Any], z: NDArray[Any]
    ) -> tuple[NDArray[Any], NDArray[Any]]:
        """Class probabilities for rows of ``logits`` and their inputs ``z``, and the trust."""
        lam, trust, t = self._calibration(*self.distances(z))
        return mix(np.atleast_2d(logits) / t[:, None], prior, lam), trust

    def check(self, z: NDArray[Any]) -> DomainCheck:
        """The record an annotation carries: distances, trust, and whether it is off-domain."""
        d_pca, d_res = self.distances(z)
        lam = float(self._calibration(d_pca, d_res)[1][0])
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
            "domain_temperature_coef": self.temperature_coef.astype(np.float64),
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
            temperature_coef=(
                z["domain_temperature_coef"].astype(np.float64) if "domain_temperature_coef" in z.files else np.zeros(2)
            ),
        )


def trust_of(coef: NDArray[Any], d_pca: NDArray[Any], d_res: NDArray[Any]) -> NDArray[Any]:
    a, b, c = coef
    lam = _sigmoid(a + b * np.log(np.maximum(d_pca, 1e-6)) + c * np.log(np.maximum(d_res, 1e-6)))
    return np.maximum(lam, MIN_LAMBDA)


def temperature_of(base: float, coef: NDArray[Any], d_pca: NDArray[Any], d_res: NDArray[Any]) -> NDArray[Any]:
    t1, t2 = coef
    log_t = t1 * np.log(np.maximum(d_pca, 1e-6)) + t2 * np.log(np.maximum(d_res, 1e-6))
    # Training inputs sit near distance 1, where log d ~ 0: there the temperature is T_0.
    typed: NDArray[Any] = base * np.exp(np.clip(log_t, -10, 10))  # numpy's stubs type this Any
    return typed


def overall_trust(lam: NDArray[Any], temperature: NDArray[Any], base: float) -> NDArray[Any]:
    """The mixing weight times how much the distance softened the logits (module docstring);
    1 at most: an input nearer the training data than most is not trusted past full."""
    typed: NDArray[Any] = np.minimum(1.0, lam * base / temperature)  # numpy's stubs type this Any
    return typed


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


@dataclass(frozen=True)
class Calibration:
    """What ``fit_calibration`` fits: ``DomainModel``'s temperature, its growth with the
    distances, and the trust coefficients."""

    temperature: float
    temperature_coef: NDArray[Any]  # (t_1, t_2)
    coef: NDArray[Any]  # (a, b, c)


def calibration_at(
    fitted: Calibration, d_pca: NDArray[Any], d_res: NDArray[Any]
) -> tuple[NDArray[Any], NDArray[Any], NDArray[Any]]:
    """Mixing weight, overall trust (what an annotation records) and temperature at these distances."""
    lam = trust_of(fitted.coef, d_pca, d_res)
    t = temperature_of(fitted.temperature, fitted.temperature_coef, d_pca, d_res)
    return lam, overall_trust(lam, t, fitted.temperature), t


def fit_calibration(
    logits: NDArray[Any],
    y: NDArray[Any],
    prior: NDArray[Any],
    d_pca: NDArray[Any],
    d_res: NDArray[Any],
    distance_temperature: bool = True,
) -> Calibration:
    """Temperature ``T_0`` (with ``distance_temperature``, also its slopes ``t_1, t_2`` on the
    log distances) and trust coefficients ``(a, b, c)`` minimising the negative
    log-likelihood of held-out labels ``y`` under ``mix(logits / T, prior, trust)``.

    ``b`` and ``c`` are bounded at <= 0 and ``t_1``, ``t_2`` at >= 0: the model may only be
    trusted less, and its logits softened more, as an input moves away from the training
    data, never the reverse (a fit on three corpora must not learn that some far region
    happens to be easy)."""
    from scipy.optimize import minimize

    rows = np.arange(len(y))
    slopes = 2 if distance_temperature else 0

    def unpack(theta: NDArray[Any]) -> tuple[float, NDArray[Any], NDArray[Any]]:
        t_coef = np.asarray(theta[1 : 1 + slopes]) if slopes else np.zeros(2)
        return float(np.exp(theta[0])), t_coef, np.asarray(theta[1 + slopes :])

    def nll(theta: NDArray[Any]) -> float:
        t0, t_coef, coef = unpack(theta)
        t = temperature_of(t0, t_coef, d_pca, d_res)
        p = mix(logits / t[:, None], prior, trust_of(coef, d_pca, d_res))
        return float(-np.mean(np.log(p[rows, y] + 1e-12)))

    start = np.array([0.0] + [0.0] * slopes + [2.0, 0.0, 0.0])
    bounds = [(-3.0, 3.0)] + [(0.0, 3.0)] * slopes + [(-20.0, 20.0), (-10.0, 0.0), (-10.0, 0.0)]
    result = minimize(nll, start, method="L-BFGS-B", bounds=bounds)
    t0, t_coef, coef = unpack(result.x)
    return Calibration(t0, t_coef.astype(np.float64), coef.astype(np.float64))


def fit_trust(
    logits: NDArray[Any], y: NDArray[Any], prior: NDArray[Any], d_pca: NDArray[Any], d_res: NDArray[Any]
) -> tuple[float, NDArray[Any]]:
    """``fit_calibration`` with one temperature for every input (the text model's mapping)."""
    fitted = fit_calibration(logits, y, prior, d_pca, d_res, distance_temperature=False)
    return fitted.temperature, fitted.coef
