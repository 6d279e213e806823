"""Uncertainty-aware soft vote: a judge-weighted mixture of the annotators' distributions."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from emoforge.quality.aggregation.base import (
    Aggregator,
    check_frame,
    encode,
    most_probable,
    normalize_rows,
    proba_frame,
)
from emoforge.quality.aggregation.majority import worker_accuracy
from emoforge.quality.aggregation.spec import AggregatorSpec, Scope, Votes

if TYPE_CHECKING:
    import pandas as pd


class SoftVote(Aggregator):
    r"""Each annotator contributes its whole (calibrated) label distribution, weighted by the judge.

    Input rows are (task, worker, label, prob, weight): worker ``w``'s probability
    ``p_{t,w}(c)`` for label ``c`` on task ``t`` and the judge's score ``s_{t,w}``::

        P(z_t = c) = \sum_w s_{t,w} p_{t,w}(c) / \sum_w s_{t,w} \sum_c p_{t,w}(c)

    so a hesitant annotator (flat distribution) moves the consensus less than a confident
    one, and two weak annotators that disagree yield a low-confidence consensus instead of
    a 50 % "majority". With one-hot ``prob`` and unit weights this is the majority vote
    (missing ``prob`` or ``weight`` columns default to exactly that).
    When every weight of a task is zero the task falls back to unit weights
    (``fallback_tasks_``).

    Fitted attributes: ``probas_``, ``labels_``, ``skills_``, ``fallback_tasks_``.
    """

    spec = AggregatorSpec("soft", frozenset({Scope.SEGMENT}), Votes.JUDGED_DISTRIBUTIONS)
    skills_: pd.Series
    fallback_tasks_: list[object]

    def __init__(self, min_weight: float = 0.0) -> None:
        if min_weight < 0:
            raise ValueError(f"min_weight must be >= 0, got {min_weight}")
        self.min_weight = min_weight

    def fit(self, df: pd.DataFrame) -> SoftVote:
        # Plain votes are one-hot answers at unit weight: then this is the majority vote.
        defaults = {c: 1.0 for c in ("prob", "weight") if c not in df.columns}
        data = check_frame(df.assign(**defaults) if defaults else df, extra=("prob", "weight"))
        probs = data["prob"].to_numpy(dtype=float)
        weights = np.clip(data["weight"].to_numpy(dtype=float), self.min_weight, None)
        if np.isnan(probs).any() or np.isnan(weights).any() or (probs < 0).any():
            raise ValueError("prob and weight must be finite (no NaN) and prob >= 0")
        enc = encode(data)
        mass = enc.counts(probs * weights)
        dead = mass.sum(axis=1) <= 0
        mass[dead] = enc.counts(probs)[dead]
        self.fallback_tasks_ = list(enc.tasks[dead])
        self.probas_ = proba_frame(enc, normalize_rows(mass))
        self.labels_ = most_probable(self.probas_)
        # Skill against the consensus, judged on each worker's top label.
        top = data.sort_values("prob", ascending=False).drop_duplicates(["task", "worker"])
        self.skills_ = worker_accuracy(top, self.labels_)
        return self
