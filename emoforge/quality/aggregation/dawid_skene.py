"""Dawid-Skene: per-annotator confusion matrices learnt with EM across the corpus."""

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
    normalize_rows,
    proba_frame,
)
from emoforge.quality.aggregation.spec import AggregatorSpec, Scope

if TYPE_CHECKING:
    import pandas as pd

_EPS = 1e-10
Array = NDArray[np.float64]


class DawidSkene(Aggregator):
    r"""Dawid & Skene (1979): every worker ``w`` has a confusion matrix
    ``e^w[k, c] = P(y^w = k | z = c)`` and tasks have a class prior ``p[c] = P(z = c)``.

    EM, initialised from the majority-vote posteriors (as crowd-kit 1.4.2 does):

    * M-step: ``p[c] = mean_t q_t(c)``; ``e^w[k, c] ∝ \sum_{t: y_{t,w} = k} q_t(c)``,
      clipped at 1e-10 and normalised over ``k`` for every ``c``.
    * E-step: ``q_t(c) ∝ p[c] \prod_{w} e^w[y_{t,w}, c]`` (in log space).

    Iterates until the evidence lower bound per response
    ``(E_q[log p(z) + \sum log e^w[y, z]] + H(q)) / n_responses`` improves by less than
    ``tol``, or ``n_iter`` times.

    Fitted attributes: ``probas_`` (tasks x labels posteriors), ``labels_``, ``priors_``
    (label -> prior), ``errors_`` (rows (worker, observed label), columns true label),
    ``accuracies_`` (worker -> its confusion matrix's diagonal weighted by the priors: how
    often it is right), ``loss_history_`` (ELBO per iteration), ``n_iter_``.
    """

    spec = AggregatorSpec("dawid_skene", frozenset({Scope.CORPUS}), reliability="accuracies_")
    priors_: pd.Series
    errors_: pd.DataFrame
    accuracies_: pd.Series
    loss_history_: list[float]
    n_iter_: int

    def __init__(self, n_iter: int = 100, tol: float = 1e-5) -> None:
        if n_iter < 1 or tol <= 0:
            raise ValueError(f"need n_iter >= 1 and tol > 0, got {n_iter}, {tol}")
        self.n_iter = n_iter
        self.tol = tol

    def fit(self, df: pd.DataFrame) -> DawidSkene:
        import pandas as pd

        enc = encode(check_frame(df))
        n_w, n_k = len(enc.workers), len(enc.labels)
        q = normalize_rows(enc.counts())
        self.loss_history_ = []
        loss = -np.inf
        self.n_iter_ = 0
        priors, errors = self._m_step(enc, q, n_w, n_k)
        for _ in range(self.n_iter):
            q = self._e_step(enc, priors, errors)
            priors, errors = self._m_step(enc, q, n_w, n_k)
            new_loss = self._elbo(enc, q, priors, errors)
            self.loss_history_.append(new_loss)
            self.n_iter_ += 1
            if new_loss - loss < self.tol:
                break
            loss = new_loss
        self.probas_ = proba_frame(enc, q)
        self.labels_ = most_probable(self.probas_)
        self.priors_ = pd.Series(priors, index=pd.Index(enc.labels, name="label"), name="prior")
        index = pd.MultiIndex.from_product([enc.workers, enc.labels], names=["worker", "label"])
        self.errors_ = pd.DataFrame(
            errors.reshape(n_w * n_k, n_k), index=index, columns=pd.Index(enc.labels, name="label")
        )
        self.accuracies_ = pd.Series(
            {
                w: float(sum(self.priors_[c] * self.errors_.loc[(w, c), c] for c in self.priors_.index))
                for w in self.errors_.index.get_level_values("worker").unique()
            },
            name="accuracy",
        ).rename_axis("worker")
        return self

    @staticmethod
    def _m_step(enc: Encoded, q: Array, n_w: int, n_k: int) -> tuple[Array, Array]:
        priors = q.mean(axis=0)
        errors = np.zeros((n_w, n_k, n_k))  # worker, observed, true
        np.add.at(errors, (enc.w, enc.y), q[enc.t])
        errors = np.clip(errors, _EPS, None)
        errors /= errors.sum(axis=1, keepdims=True)
        return priors, errors

    @staticmethod
    def _e_step(enc: Encoded, priors: Array, errors: Array) -> Array:
        log_lik = np.tile(np.log(np.clip(priors, _EPS, None)), (len(enc.tasks), 1))
        np.add.at(log_lik, enc.t, np.log(errors[enc.w, enc.y]))
        log_lik -= log_lik.max(axis=1, keepdims=True)
        lik = np.exp(log_lik)
        return lik / lik.sum(axis=1, keepdims=True)

    @staticmethod
    def _elbo(enc: Encoded, q: Array, priors: Array, errors: Array) -> float:
        expected = float((q * np.log(np.clip(priors, _EPS, None))).sum())
        expected += float((q[enc.t] * np.log(errors[enc.w, enc.y])).sum())
        entropy = -float((q * np.log(np.clip(q, _EPS, None))).sum())
        return (expected + entropy) / len(enc.t)
