"""Corpus-level aggregation (``emoforge aggregate``): every configured aggregator over all rows.

Aggregators that learn each annotator's reliability (Dawid-Skene, MACE) need the whole
corpus, so they run here rather than per segment. The result is one ``AggregatedLabel`` per
(segment, method), stored as a sidecar Parquet file next to the shards (explicit schema
below), and per-method statistics for the corpus manifest: how often each method agrees with the
stored consensus and with majority vote, and what it learnt about every annotator.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from pydantic import Field

from emoforge.configs.quality import AggregationConfig
from emoforge.quality.aggregation import MajorityVote, Scope, aggregator
from emoforge.storage.records import Record, SegmentRow

if TYPE_CHECKING:
    import pyarrow as pa

SIDECAR = "aggregation.parquet"


class AggregatedLabel(Record):
    segment_id: str = Field(description="Segment aggregated.")
    method: str = Field(description="Aggregator (its spec's name), or pooled_fitted.")
    label: str = Field(description="Most probable label.")
    confidence: float = Field(ge=0, le=1, description="Its probability.")
    distribution: dict[str, float] = Field(description="Label -> probability.")


class MethodStats(Record):
    n_tasks: int = Field(description="Segments aggregated.")
    agree_with_consensus: float | None = Field(default=None, description="Share equal to the stored consensus.")
    agree_with_majority: float | None = Field(default=None, description="Share equal to majority vote.")
    mean_confidence: float | None = Field(default=None, description="Mean probability of the chosen label.")
    annotators: dict[str, float] = Field(
        default_factory=dict,
        description="Per agent: the reliability the method learnt (the fitted attribute its spec names, e.g. "
        "accuracy vs its labels, prior-weighted confusion-matrix accuracy, competence).",
    )
    n_iter: int | None = Field(default=None, description="Iterations run, for a method fitted iteratively (EM).")


class CorpusAggregation(Record):
    labels: list[AggregatedLabel] = Field(description="One per (segment, method).")
    stats: dict[str, MethodStats] = Field(description="Method -> statistics for the manifest.")

    def to_table(self) -> pa.Table:
        import pyarrow as pa

        schema = pa.schema(
            [
                pa.field("segment_id", pa.string(), nullable=False),
                pa.field("method", pa.string(), nullable=False),
                pa.field("label", pa.string(), nullable=False),
                pa.field("confidence", pa.float64(), nullable=False),
                pa.field("distribution", pa.map_(pa.string(), pa.float64()), nullable=False),
            ]
        )
        return pa.Table.from_pylist(
            [{**x.model_dump(), "distribution": list(x.distribution.items())} for x in self.labels], schema=schema
        )


class CorpusAggregator:
    """Runs ``config.corpus_methods`` over a corpus's rows."""

    def __init__(self, config: AggregationConfig, judge: str | None = None) -> None:
        self.config = config
        self.judge = judge
        self.methods = {name: aggregator(name, Scope.CORPUS) for name in config.corpus_methods}

    def run(self, rows: Iterable[SegmentRow]) -> CorpusAggregation:
        import numpy as np

        from emoforge.quality.aggregation.base import votes_frame

        all_rows = [r for r in rows if r.segment is not None]
        consensus = {r.segment.id: r.consensus.primary_label for r in all_rows if r.segment and r.consensus}
        frame = votes_frame(all_rows, self.judge)
        labels: list[AggregatedLabel] = []
        stats: dict[str, MethodStats] = {}
        if frame.empty:
            return CorpusAggregation(labels=[], stats={m: MethodStats(n_tasks=0) for m in self.config.corpus_methods})
        majority = MajorityVote().fit(frame).predict()
        for method, cls in self.methods.items():
            model = cls().fit(cls.spec.corpus_votes(frame))
            probas, predicted = model.predict_proba(), model.predict()
            for task, label in predicted.items():
                row = probas.loc[task]
                labels.append(
                    AggregatedLabel(
                        segment_id=str(task),
                        method=method,
                        label=str(label),
                        confidence=float(row[label]),
                        distribution={str(k): float(p) for k, p in row.items() if p > 0},
                    )
                )
            with_consensus = [predicted[t] == c for t, c in consensus.items() if t in predicted.index and c]
            reliability = getattr(model, cls.spec.reliability)
            annotators = {str(k): float(v) for k, v in reliability.items()}
            stats[method] = MethodStats(
                n_tasks=len(predicted),
                agree_with_consensus=float(np.mean(with_consensus)) if with_consensus else None,
                agree_with_majority=float((predicted == majority.reindex(predicted.index)).mean()),
                mean_confidence=float(probas.max(axis=1).mean()),
                annotators=annotators,
                n_iter=model.n_iter_,
            )
        return CorpusAggregation(labels=labels, stats=stats)
