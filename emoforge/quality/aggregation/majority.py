"""Majority vote."""

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
from emoforge.quality.aggregation.spec import AggregatorSpec, Scope

if TYPE_CHECKING:
    import pandas as pd


class MajorityVote(Aggregator):
    r"""Majority vote: each task gets the label most workers chose.

    With ``n_{t,c}`` the number of workers who gave label ``c`` to task ``t``,
    ``P(z_t = c) = n_{t,c} / \sum_k n_{t,k}`` and the label is the argmax (ties: the first
    label in sorted order). ``skills_`` is each worker's accuracy against the majority
    labels, as crowd-kit's ``MajorityVote.skills_``.

    Fitted attributes: ``probas_`` (tasks x labels), ``labels_`` (task -> label),
    ``skills_`` (worker -> accuracy).
    """

    spec = AggregatorSpec("majority", frozenset({Scope.SEGMENT, Scope.CORPUS}))
    skills_: pd.Series

    def fit(self, df: pd.DataFrame) -> MajorityVote:
        data = check_frame(df)
        enc = encode(data)
        self.probas_ = proba_frame(enc, normalize_rows(enc.counts()))
        self.labels_ = most_probable(self.probas_)
        self.skills_ = worker_accuracy(data, self.labels_)
        return self


def worker_accuracy(data: pd.DataFrame, labels: pd.Series) -> pd.Series:
    """Share of each worker's answers that equal the aggregated label of the task."""
    hit = data["label"].to_numpy() == labels.reindex(data["task"]).to_numpy()
    return data.assign(hit=hit.astype(np.float64)).groupby("worker")["hit"].mean().rename("skill")
