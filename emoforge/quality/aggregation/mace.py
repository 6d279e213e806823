"""MACE: Multi-Annotator Competence Estimation (Hovy et al., NAACL 2013)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from emoforge.quality.aggregation.base import (
    Aggregator,
    Encoded,
    check_frame,
    encode,
    most_probable,
    proba_frame,
)
from emoforge.quality.aggregation.spec import AggregatorSpec, Scope

if TYPE_CHECKING:
    import pandas as pd

Array = NDArray[np.float64]


class MACE(Aggregator):
    r"""MACE: each worker ``w`` either knows the answer (probability ``θ_w``, its
    competence) and copies the true label, or spams and draws a label from its own
    distribution ``ξ_w``. With a uniform prior over the true label ``z``:

        P(y = k | z = c) = θ_w [k = c] + (1 - θ_w) ξ_w[k]

    EM (deterministic start ``θ = 0.5``, ``ξ`` uniform, which makes the first E-step a
    majority vote; MACE's random restarts are not needed from that start):

    * E-step: ``q_t(c) ∝ \prod_w P(y_{t,w} | z = c)``; for each response
      ``k = y_{t,w}`` the expected "knows" indicator is
      ``κ = q_t(k) θ_w / (θ_w + (1 - θ_w) ξ_w[k])`` and the spam share is ``1 - κ``.
    * M-step (``s`` = ``smoothing`` pseudo-counts, a symmetric Beta/Dirichlet prior):
      ``θ_w = (\sum κ + s) / (n_w + 2s)``, ``ξ_w[k] = (\sum_{y=k} (1 - κ) + s) / (\sum (1 - κ) + K s)``.

    Stops when the log-likelihood ``\sum_t log mean_c \prod_w P(y_{t,w} | c)`` gains less
    than ``tol`` per response, or after ``n_iter`` iterations.

    Fitted attributes: ``probas_``, ``labels_``, ``competence_`` (worker -> θ),
    ``spam_distribution_`` (worker x label ξ), ``loss_history_``, ``n_iter_``.
    """

    spec = AggregatorSpec("mace", frozenset({Scope.CORPUS}), reliability="competence_")
    competence_: pd.Series
    spam_distribution_: pd.DataFrame
    loss_history_: list[float]
    n_iter_: int

    def __init__(self, n_iter: int = 100, tol: float = 1e-7, smoothing: float = 0.1) -> None:
        if n_iter < 1 or tol <= 0 or smoothing < 0:
            raise ValueError(f"need n_iter >= 1, tol > 0, smoothing >= 0; got {n_iter}, {tol}, {smoothing}")
        self.n_iter, self.tol, self.smoothing = n_iter, tol, smoothing

    def fit(self, df: pd.DataFrame) -> MACE:
        import pandas as pd

        enc = encode(check_frame(df))
        n_w, n_k, n_r = len(enc.workers), len(enc.labels), len(enc.t)
        theta = np.full(n_w, 0.5)
        xi = np.full((n_w, n_k), 1.0 / n_k)
        self.loss_history_, loss, self.n_iter_ = [], -np.inf, 0
        q = np.full((len(enc.tasks), n_k), 1.0 / n_k)
        for _ in range(self.n_iter):
            q, new_loss = self._e_step(enc, theta, xi)
            theta, xi = self._m_step(enc, q, theta, xi)
            self.loss_history_.append(new_loss / n_r)
            self.n_iter_ += 1
            if new_loss / n_r - loss < self.tol:
                break
            loss = new_loss / n_r
        self.probas_ = proba_frame(enc, q)
        self.labels_ = most_probable(self.probas_)
        self.competence_ = pd.Series(theta, index=pd.Index(enc.workers, name="worker"), name="competence")
        self.spam_distribution_ = pd.DataFrame(
            xi, index=pd.Index(enc.workers, name="worker"), columns=pd.Index(enc.labels, name="label")
        )
        return self

    @staticmethod
    def _e_step(enc: Encoded, theta: Array, xi: Array) -> tuple[Array, float]:
        n_k = xi.shape[1]
        # log P(y_r | z = c) for every response r and class c.
        per_class = (1.0 - theta[enc.w])[:, None] * xi[enc.w, enc.y][:, None] + theta[enc.w][:, None] * (
            np.arange(n_k)[None, :] == enc.y[:, None]
        )
        log_lik = np.zeros((len(enc.tasks), n_k))
        np.add.at(log_lik, enc.t, np.log(np.clip(per_class, 1e-300, None)))
        top = log_lik.max(axis=1, keepdims=True)
        lik = np.exp(log_lik - top)
        total = float((np.log(lik.mean(axis=1)) + top[:, 0]).sum())
        return lik / lik.sum(axis=1, keepdims=True), total

    def _m_step(self, enc: Encoded, q: Array, theta: Array, xi: Array) -> tuple[Array, Array]:
        s = self.smoothing
        th, x = theta[enc.w], xi[enc.w, enc.y]
        knows = q[enc.t, enc.y] * th / np.clip(th + (1.0 - th) * x, 1e-300, None)
        n_w, n_k = xi.shape
        know_sum = np.bincount(enc.w, weights=knows, minlength=n_w)
        n_resp = np.bincount(enc.w, minlength=n_w).astype(float)
        spam = np.zeros((n_w, n_k))
        np.add.at(spam, (enc.w, enc.y), 1.0 - knows)
        new_theta = (know_sum + s) / (n_resp + 2.0 * s)
        denom = spam.sum(axis=1, keepdims=True) + n_k * s
        new_xi = np.where(denom > 0, (spam + s) / np.where(denom > 0, denom, 1.0), 1.0 / n_k)
        return new_theta, new_xi
