"""Shared plumbing for the aggregators: input checks, label encoding, probabilities -> labels.

Every aggregator follows crowd-kit's shape: ``fit(df) -> self`` learns from a long table
with columns ``task``, ``worker``, ``label`` (and ``weight`` where used); ``predict`` and
``predict_proba`` return per-task results; fitted attributes end in ``_``. Aggregation is
transductive, so ``predict(df)`` fits on ``df`` first (crowd-kit's ``fit_predict``), and
``predict()`` without data returns what the last ``fit`` learnt.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from emoforge.configs.quality import AggregationConfig
from emoforge.quality.aggregation.spec import AggregatorSpec
from emoforge.storage.records import SegmentRow, Status

if TYPE_CHECKING:
    import pandas as pd

REQUIRED = ("task", "worker", "label")


def check_frame(df: pd.DataFrame, extra: tuple[str, ...] = ()) -> pd.DataFrame:
    """Return the needed columns without rows that have no label; raise on missing columns."""
    missing = [c for c in (*REQUIRED, *extra) if c not in df.columns]
    if missing:
        raise ValueError(f"aggregator input lacks columns {missing}; has {list(df.columns)}")
    return df.loc[df["label"].notna(), [*REQUIRED, *extra]].reset_index(drop=True)


@dataclass(frozen=True)
class Encoded:
    """Integer codes of a long response table: row r is worker ``workers[w[r]]`` answering
    ``labels[y[r]]`` on task ``tasks[t[r]]``."""

    tasks: NDArray[Any]
    workers: NDArray[Any]
    labels: NDArray[Any]
    t: NDArray[np.intp]
    w: NDArray[np.intp]
    y: NDArray[np.intp]

    def counts(self, weights: NDArray[np.float64] | None = None) -> NDArray[np.float64]:
        """tasks x labels matrix of (weighted) votes."""
        out = np.zeros((len(self.tasks), len(self.labels)))
        np.add.at(out, (self.t, self.y), 1.0 if weights is None else weights)
        return out


def encode(df: pd.DataFrame) -> Encoded:
    tasks, t = np.unique(df["task"].to_numpy(), return_inverse=True)
    workers, w = np.unique(df["worker"].to_numpy(), return_inverse=True)
    labels, y = np.unique(df["label"].to_numpy(), return_inverse=True)
    return Encoded(tasks, workers, labels, t.astype(np.intp), w.astype(np.intp), y.astype(np.intp))


def normalize_rows(matrix: NDArray[np.float64]) -> NDArray[np.float64]:
    """Rows scaled to sum to 1; all-zero rows become uniform (no information is not certainty)."""
    sums = matrix.sum(axis=1, keepdims=True)
    uniform = np.full_like(matrix, 1.0 / max(matrix.shape[1], 1))
    return np.where(sums > 0, matrix / np.where(sums > 0, sums, 1.0), uniform)


def proba_frame(enc: Encoded, probas: NDArray[np.float64]) -> pd.DataFrame:
    import pandas as pd

    return pd.DataFrame(probas, index=pd.Index(enc.tasks, name="task"), columns=pd.Index(enc.labels, name="label"))


def most_probable(probas: pd.DataFrame) -> pd.Series:
    """Label with the highest probability per task; ties go to the first label in sorted
    order, so the result is deterministic (crowd-kit's ``idxmax`` rule)."""
    return probas.idxmax(axis=1).rename("agg_label")


class Aggregator:
    """Base: subclasses declare ``spec``, implement ``fit`` and set ``probas_`` and ``labels_``."""

    spec: ClassVar[AggregatorSpec]
    probas_: pd.DataFrame
    labels_: pd.Series
    n_iter_: int | None = None  # iterations run, for those fitted iteratively

    @classmethod
    def for_segments(
        cls, config: AggregationConfig, labels: Sequence[str], priors: Mapping[str, Mapping[str, float]]
    ) -> Aggregator:
        """The instance phase 5 runs on each segment: an aggregator with settings reads them
        from ``config``, the taxonomy's ``labels`` and the agents' output ``priors`` here."""
        return cls()

    def fit(self, df: pd.DataFrame) -> Aggregator:  # pragma: no cover - abstract
        raise NotImplementedError

    def _fitted(self) -> None:
        if not hasattr(self, "probas_"):
            raise RuntimeError(f"{type(self).__name__} is not fitted: call fit(df) or pass df")

    def predict(self, df: pd.DataFrame | None = None) -> pd.Series:
        """Most probable label per task (fits on ``df`` first when given)."""
        if df is not None:
            self.fit(df)
        self._fitted()
        return self.labels_

    def predict_proba(self, df: pd.DataFrame | None = None) -> pd.DataFrame:
        """tasks x labels probabilities, rows summing to 1 (fits on ``df`` first when given)."""
        if df is not None:
            self.fit(df)
        self._fitted()
        return self.probas_

    def fit_predict(self, df: pd.DataFrame) -> pd.Series:
        return self.predict(df)

    def fit_predict_proba(self, df: pd.DataFrame) -> pd.DataFrame:
        return self.predict_proba(df)


def votes_frame(rows: Iterable[SegmentRow], judge: str | None = None) -> pd.DataFrame:
    """Long vote table of a corpus: one row per valid annotation.

    Columns ``task`` (segment id), ``worker`` (agent), ``label`` (primary label) and
    ``weight`` (S_final of the annotation's verdict from ``judge``, or of its only verdict;
    NaN when unjudged, 0 when the judgement failed).
    """
    import pandas as pd

    out: list[tuple[str, str, str, float]] = []
    for row in rows:
        if row.segment is None:
            continue
        verdicts = {v.annotation_id: v for v in row.verdicts if judge is None or v.judge == judge}
        for a in row.annotations:
            if a.status != Status.ok or not a.primary_label:
                continue
            v = verdicts.get(a.id)
            out.append((row.segment.id, a.agent, a.primary_label, float("nan") if v is None else v.s_final))
    return pd.DataFrame(out, columns=["task", "worker", "label", "weight"])
