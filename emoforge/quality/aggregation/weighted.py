"""Judge-weighted vote."""

from __future__ import annotations

from typing import TYPE_CHECKING

from emoforge.quality.aggregation.base import check_frame
from emoforge.quality.aggregation.soft import SoftVote
from emoforge.quality.aggregation.spec import AggregatorSpec, Scope, Votes

if TYPE_CHECKING:
    import pandas as pd


class WeightedVote(SoftVote):
    r"""Vote weighted by the judge: each answer counts with its ``weight`` (the judge's
    S_final for that annotation), so well-reasoned, grounded answers outweigh poor ones.

    ``P(z_t = c) = \sum_{w: y_{t,w} = c} s_{t,w} / \sum_w s_{t,w}`` with ``s`` clipped at
    ``min_weight`` so that a zero score removes a vote without dividing by zero. This is
    ``SoftVote`` with every answer one-hot. When every weight of a task is zero (all answers
    judged worthless) the task falls back to the plain vote count rather than a fabricated
    uniform label: ``fallback_tasks_`` lists them.

    Fitted attributes: ``probas_``, ``labels_``, ``skills_`` (accuracy vs the weighted
    labels), ``fallback_tasks_``.
    """

    spec = AggregatorSpec("weighted", frozenset({Scope.SEGMENT, Scope.CORPUS}), Votes.JUDGED)

    def fit(self, df: pd.DataFrame) -> WeightedVote:
        # Unlike the soft vote, a judge weight is required: a missing column is a bug upstream.
        data = check_frame(df, extra=("weight",))
        super().fit(data.assign(prob=1.0))
        return self
