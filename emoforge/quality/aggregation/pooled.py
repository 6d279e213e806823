"""Independent-experts pooling: each vote is a calibrated confidence in one label, read
against what that annotator says anyway (its output prior)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from emoforge.configs.quality import AggregationConfig
from emoforge.quality.aggregation.base import Aggregator, check_frame
from emoforge.quality.aggregation.majority import worker_accuracy
from emoforge.quality.aggregation.spec import AggregatorSpec, Scope, Votes

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class EncodedVotes:
    """One row per response: its task and label codes, confidence, and ``log r`` over the
    vocabulary (before the worker exponents); ``base`` is each task's log reference prior."""

    data: pd.DataFrame
    conf: np.ndarray
    log_r: np.ndarray
    t: np.ndarray
    y: np.ndarray
    tasks: np.ndarray
    vocabulary: list[str]
    base: np.ndarray


class PooledVote(Aggregator):
    r"""Log-linear (product-of-experts) pooling of calibrated votes over ``K`` labels.

    Input rows are (task, worker, label, confidence): worker ``w`` says label ``y_{t,w}``
    on task ``t`` and is right with probability ``c_{t,w}`` (its calibrated confidence,
    after an optional judge discount). A calibrated annotator says each label at the rate
    of the data it was trained on, ``\pi_w`` (its *output prior*: a text model trained on
    TV dialogue says neutral for 42 % of lines whatever the speaker feels; uniform for
    agents that declare none). The vote is read as the distribution::

        q_{t,w}(y) = max(c_{t,w}, \pi_w(y))
        q_{t,w}(k) = (1 - q_{t,w}(y)) \pi_w(k) / (1 - \pi_w(y))      for k != y

    so a confidence at or below the base rate is an uninformative vote (``q = \pi_w``),
    never a vote for the runner-up labels or against its own. What the vote adds is its
    likelihood ratio ``r_{t,w} = q_{t,w} / \pi_w``: above 1 for its label, the same value
    below 1 for every other.

    Votes are treated as independent evidence (naive Bayes), each raised to its worker's
    weight ``\beta_w`` (1 unless fitted on labelled segments: see ``fit_pool_weights``,
    which also absorbs shared errors between workers), on a reference prior ``\pi_0``::

        P(z_t = k) \propto \pi_0(k) \prod_w r_{t,w}(k)^{\beta_w}

    ``\pi_0`` is the geometric mean of the voters' output priors (``reference="jury"``:
    one vote then returns exactly its own ``q``, and a jury sharing one prior gets the
    textbook ``\pi \prod_w (q_w / \pi)``), or uniform (``reference="uniform"``).

    Consequences, each a tested property: one vote returns its own label with probability
    ``max(c, \pi(y))`` (reference "jury"); a unanimous jury is at least as confident as its
    least confident member; an agreeing vote multiplies the winner's odds against every
    other label by ``r(y) / r(k) >= 1``, so it never lowers it; with uniform priors a label
    nobody gave gets the smallest product. With unequal priors a label nobody gave can
    carry probability (its prior), so ``labels_`` is elected among the labels some worker
    gave (ties go first to the label with the most confidence behind it, then to sorted
    order).

    Args:
        labels: the label set (the taxonomy); labels in the data are added to it.
            ``K`` is its size. Without it, ``K`` is the number of distinct labels in the
            data, at least 2.
        priors: worker -> output prior over labels (missing labels and workers: uniform).
        weights: worker -> exponent ``\beta_w`` (missing: 1).
        reference: "jury" or "uniform", the prior ``\pi_0`` the votes update.

    Fitted attributes: ``probas_``, ``labels_``, ``skills_`` (accuracy vs the pooled
    labels), ``n_labels_`` (K).
    """

    spec = AggregatorSpec("pooled", frozenset({Scope.SEGMENT}), Votes.CONFIDENCES)
    skills_: pd.Series
    n_labels_: int

    def __init__(
        self,
        labels: Sequence[str] = (),
        priors: Mapping[str, Mapping[str, float]] | None = None,
        weights: Mapping[str, float] | None = None,
        reference: str = "jury",
    ) -> None:
        if reference not in ("jury", "uniform"):
            raise ValueError(f"reference must be 'jury' or 'uniform', not {reference!r}")
        self.reference = reference
        self.labels = list(labels)
        self.priors = dict(priors or {})
        self.weights = dict(weights or {})

    @classmethod
    def for_segments(
        cls, config: AggregationConfig, labels: Sequence[str], priors: Mapping[str, Mapping[str, float]]
    ) -> PooledVote:
        return cls(labels, priors, config.pool_weights, reference=config.reference_prior)

    def encode(self, df: pd.DataFrame) -> EncodedVotes:
        """The responses as likelihood ratios ``log r`` (class docstring), unweighted."""
        defaults = {"confidence": 1.0} if "confidence" not in df.columns else {}
        data = check_frame(df.assign(**defaults) if defaults else df, extra=("confidence",))
        conf = data["confidence"].to_numpy(dtype=float)
        if np.isnan(conf).any() or (conf < 0).any() or (conf > 1).any():
            raise ValueError("confidence must be in [0, 1] (no NaN)")
        vocabulary = sorted(set(self.labels) | set(data["label"].astype(str)))
        tasks, t = np.unique(data["task"].to_numpy(), return_inverse=True)
        col = {label: i for i, label in enumerate(vocabulary)}
        y = np.array([col[str(v)] for v in data["label"]], dtype=np.intp)
        rows = np.arange(len(data))
        log_prior = self._log_priors(data["worker"].astype(str).to_numpy(), vocabulary)
        own = np.exp(log_prior[rows, y])
        # q(y) = max(c, pi(y)): a confidence at or below the base rate says nothing (it is
        # not read as evidence against the label). The rest follows the prior. A certain
        # vote (c = 1) is a point mass; a large finite gap keeps the arithmetic finite.
        q_y = np.maximum(conf, own)
        log_rest = np.log(np.maximum(1.0 - q_y, 1e-300)) - np.log(np.maximum(1.0 - own, 1e-300))
        log_r = np.repeat(log_rest[:, None], len(vocabulary), axis=1)
        log_r[rows, y] = np.where(q_y >= 1.0, 700.0, np.log(q_y) - np.log(own))
        base = np.zeros((len(tasks), len(vocabulary)))
        if self.reference == "jury":
            # The jury's own base rate: the geometric mean of its members' output priors.
            np.add.at(base, t, log_prior)
            base /= np.bincount(t, minlength=len(tasks))[:, None]
        return EncodedVotes(data, conf, log_r, t, y, tasks, vocabulary, base)

    def _log_priors(self, workers: np.ndarray, vocabulary: list[str]) -> np.ndarray:
        out = np.full((len(workers), len(vocabulary)), -np.log(len(vocabulary)))  # uniform
        for name, prior in self.priors.items():
            mask = workers == name
            if not mask.any():
                continue
            p = np.array([max(float(prior.get(label, 0.0)), 0.0) for label in vocabulary])
            missing = p <= 0
            # Labels the prior does not know get the mean of the known ones (uninformative).
            p[missing] = p[~missing].mean() if (~missing).any() else 1.0
            out[mask] = np.log(p / p.sum())
        return out

    def fit(self, df: pd.DataFrame) -> PooledVote:
        import pandas as pd

        votes = self.encode(df)
        data, conf, t, y, tasks, vocabulary = votes.data, votes.conf, votes.t, votes.y, votes.tasks, votes.vocabulary
        beta = np.array([self.weights.get(str(w), 1.0) for w in data["worker"]], dtype=float)
        logits = votes.base.copy()
        np.add.at(logits, t, votes.log_r * beta[:, None])
        given = np.zeros_like(logits, dtype=bool)
        given[t, y] = True
        support = np.zeros_like(logits)  # confidence behind each label: the tie-breaker
        np.add.at(support, (t, y), conf + 1e-9)
        logits -= logits.max(axis=1, keepdims=True)
        probas = np.exp(logits)
        probas /= probas.sum(axis=1, keepdims=True)
        self.n_labels_ = max(len(vocabulary), 2)
        self.probas_ = pd.DataFrame(
            probas, index=pd.Index(tasks, name="task"), columns=pd.Index(vocabulary, name="label")
        )
        # Highest probability among the labels some worker gave; among equals, the label
        # with more confidence behind it, then sorted order.
        best = []
        for i in range(len(tasks)):
            candidates = np.flatnonzero(given[i])
            top_p = probas[i, candidates].max()
            top = [j for j in candidates if np.isclose(probas[i, j], top_p, rtol=0, atol=1e-12)]
            best.append(vocabulary[max(top, key=lambda j: (support[i, j], -j))])
        self.labels_ = pd.Series(best, index=pd.Index(tasks, name="task"), name="agg_label")
        self.skills_ = worker_accuracy(data, self.labels_)
        return self


def fit_pool_weights(
    df: pd.DataFrame,
    truth: Mapping[Any, str],
    labels: Sequence[str] = (),
    priors: Mapping[str, Mapping[str, float]] | None = None,
    reference: str = "uniform",
    l2: float = 1.0,
) -> dict[str, float]:
    r"""Per-worker exponents ``\beta_w`` of ``PooledVote`` fitted on tasks with a known label.

    Minimises the negative log-likelihood of the known labels under the pooled
    distribution, plus ``l2 * sum_w (\beta_w - 1)^2`` so that a worker seen on few labelled
    tasks stays near 1 (an unweighted vote). ``\beta_w < 1`` shrinks a worker whose votes
    are over-confident or repeat another worker's errors (independence is the pooled
    vote's assumption, and shared errors are what breaks it); ``\beta_w > 1`` trusts an
    under-confident one more; 0 ignores it. This is temperature scaling (Guo et al. 2017)
    done jointly for the jury, so it calibrates the consensus rather than each worker alone.

    Args:
        df: response rows as for ``PooledVote.fit``; only tasks in ``truth`` are used.
        truth: task -> known label.
        labels, priors, reference: as for ``PooledVote``.
        l2: strength of the pull toward 1, in units of labelled tasks.

    Returns:
        worker -> exponent, for every worker with a vote on a labelled task.
    """
    from scipy.optimize import minimize

    known = df[df["task"].isin(list(truth))]
    if known.empty:
        return {}
    votes = PooledVote(labels, priors, reference=reference).encode(known)
    t, tasks, vocabulary, base = votes.t, votes.tasks, votes.vocabulary, votes.base
    workers, w = np.unique(votes.data["worker"].astype(str).to_numpy(), return_inverse=True)
    col = {label: i for i, label in enumerate(vocabulary)}
    target = np.array([col.get(truth[task], -1) for task in tasks])
    keep = target >= 0
    # Certain votes carry a 700-nat gap; clip so one of them cannot dominate the gradient.
    log_r = np.clip(votes.log_r, -50.0, 50.0)

    def loss(beta: np.ndarray) -> tuple[float, np.ndarray]:
        logits = base.copy()
        np.add.at(logits, t, log_r * beta[w][:, None])
        logits -= logits.max(axis=1, keepdims=True)
        log_p = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
        p = np.exp(log_p)
        nll = -log_p[keep, target[keep]].sum()
        # d nll / d logits = p - onehot(target); chain through each row's log r.
        g_logits = p.copy()
        g_logits[np.flatnonzero(keep), target[keep]] -= 1.0
        g_logits[~keep] = 0.0
        g_rows = (g_logits[t] * log_r).sum(axis=1)
        grad = np.bincount(w, weights=g_rows, minlength=len(workers))
        return float(nll + l2 * ((beta - 1.0) ** 2).sum()), grad + 2.0 * l2 * (beta - 1.0)

    result = minimize(loss, np.ones(len(workers)), jac=True, method="L-BFGS-B", bounds=[(0.0, 5.0)] * len(workers))
    return {str(name): round(float(b), 4) for name, b in zip(workers, result.x, strict=True)}
