"""Judge-weighted vote."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from emoforge.agents.aggregation.base import (
    Aggregator,
    check_frame,
    encode,
    most_probable,
    normalize_rows,
    proba_frame,
)
from emoforge.agents.aggregation.majority import worker_accuracy

if TYPE_CHECKING:
    import pandas as pd


class WeightedVote(Aggregator):
    r"""Vote weighted by the judge: each answer counts with its ``weight`` (the judge's
    S_final for that annotation), so well-reasoned, grounded answers outweigh poor ones.

    ``P(z_t = c) = \sum_{w: y_{t,w} = c} s_{t,w} / \sum_w s_{t,w}`` with ``s`` clipped at
    ``min_weight`` so that a zero score removes a vote without dividing by zero. When every
    weight of a task is zero (all answers judged worthless) the task falls back to the plain
    vote count rather than a fabricated uniform label: ``fallback_tasks_`` lists them.

    Fitted attributes: ``probas_``, ``labels_``, ``skills_`` (accuracy vs the weighted
    labels), ``fallback_tasks_``.
    """

    skills_: pd.Series
    fallback_tasks_: list[object]

    def __init__(self, min_weight: float = 0.0) -> None:
        if min_weight < 0:
            raise ValueError(f"min_weight must be >= 0, got {min_weight}")
        self.min_weight = min_weight

    def fit(self, df: pd.DataFrame) -> WeightedVote:
        data = check_frame(df, extra=("weight",))
        weights = np.clip(data["weight"].to_numpy(dtype=float), self.min_weight, None)
        if np.isnan(weights).any():
            raise ValueError("weight column has NaN: judge every annotation or drop the row")
        enc = encode(data)
        weighted = enc.counts(weights)
        dead = weighted.sum(axis=1) <= 0
        weighted[dead] = enc.counts()[dead]
        self.fallback_tasks_ = list(enc.tasks[dead])
        self.probas_ = proba_frame(enc, normalize_rows(weighted))
        self.labels_ = most_probable(self.probas_)
        self.skills_ = worker_accuracy(data, self.labels_)
        return self
