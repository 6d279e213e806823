"""Independent-experts pooling: each vote is a calibrated confidence in one label, the rest uniform."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from emoforge.agents.aggregation.base import Aggregator, check_frame
from emoforge.agents.aggregation.majority import worker_accuracy

if TYPE_CHECKING:
    import pandas as pd


class PooledVote(Aggregator):
    r"""Log-linear (product-of-experts) pooling of calibrated votes over ``K`` labels.

    Input rows are (task, worker, label, confidence): worker ``w`` says label ``y_{t,w}``
    on task ``t`` and is right with probability ``c_{t,w}`` (its calibrated confidence,
    after an optional judge discount). The vote is read as the distribution::

        q_{t,w}(k) = c_{t,w} [k = y_{t,w}] + (1 - c_{t,w}) / K

    so a confidence of 0 is an uninformative (uniform) vote, never a vote for the
    runner-up labels. Votes are treated as independent evidence (naive Bayes with a
    uniform prior)::

        P(z_t = k) \propto \prod_w q_{t,w}(k)

    Consequences, each a tested property: a label nobody gave gets the smallest product,
    so the consensus is always a label some worker gave (ties go first to the label with
    the most confidence behind it, then to sorted order); one vote returns its own label
    with probability ``c + (1 - c) / K``; a unanimous jury is at least as confident as its
    most confident member; and an agreeing vote multiplies the winner's odds against every
    other label by ``(c + (1 - c) / K) / ((1 - c) / K) >= 1``, so it never lowers it.
    Independence makes the pooled confidence too high when workers share their errors
    (e.g. two agents reading the same transcript); the corpus-level aggregators and the
    per-agent calibration in ``emoforge aggregate`` are where that is measured.

    Args:
        labels: the label set (the taxonomy); labels in the data are added to it.
            ``K`` is its size. Without it, ``K`` is the number of distinct labels in the
            data, at least 2.

    Fitted attributes: ``probas_``, ``labels_``, ``skills_`` (accuracy vs the pooled
    labels), ``n_labels_`` (K).
    """

    skills_: pd.Series
    n_labels_: int

    def __init__(self, labels: Sequence[str] = ()) -> None:
        self.labels = list(labels)

    def fit(self, df: pd.DataFrame) -> PooledVote:
        import pandas as pd

        defaults = {"confidence": 1.0} if "confidence" not in df.columns else {}
        data = check_frame(df.assign(**defaults) if defaults else df, extra=("confidence",))
        conf = data["confidence"].to_numpy(dtype=float)
        if np.isnan(conf).any() or (conf < 0).any() or (conf > 1).any():
            raise ValueError("confidence must be in [0, 1] (no NaN)")
        vocabulary = sorted(set(self.labels) | set(data["label"].astype(str)))
        k = max(len(vocabulary), 2)
        tasks, t = np.unique(data["task"].to_numpy(), return_inverse=True)
        col = {label: i for i, label in enumerate(vocabulary)}
        y = np.array([col[str(v)] for v in data["label"]], dtype=np.intp)
        # log q for the voted label minus log q elsewhere: each vote adds this to its label.
        floor = (1.0 - conf) / k
        gain = np.log(conf + floor) - np.log(np.maximum(floor, 1e-300))
        logits = np.zeros((len(tasks), len(vocabulary)))
        np.add.at(logits, (t, y), np.where(conf >= 1.0, 700.0, gain))
        support = np.zeros_like(logits)  # confidence behind each label: the tie-breaker
        np.add.at(support, (t, y), conf + 1e-9)
        logits -= logits.max(axis=1, keepdims=True)
        probas = np.exp(logits)
        probas /= probas.sum(axis=1, keepdims=True)
        self.n_labels_ = k
        self.probas_ = pd.DataFrame(
            probas, index=pd.Index(tasks, name="task"), columns=pd.Index(vocabulary, name="label")
        )
        # Highest probability first; among equals, the label with more confidence behind it.
        best = []
        for i in range(len(tasks)):
            top = np.flatnonzero(np.isclose(probas[i], probas[i].max(), rtol=0, atol=1e-12))
            best.append(vocabulary[max(top, key=lambda j: (support[i, j], -j))])
        self.labels_ = pd.Series(best, index=pd.Index(tasks, name="task"), name="agg_label")
        self.skills_ = worker_accuracy(data, self.labels_)
        return self

