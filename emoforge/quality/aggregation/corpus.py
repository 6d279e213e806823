"""Corpus-level aggregation (``emoforge aggregate``): every configured aggregator over all rows.

Dawid-Skene and MACE need the whole corpus to learn each annotator's reliability, so they
run here rather than per segment. The result is one ``AggregatedLabel`` per (segment,
method), stored as a sidecar Parquet file next to the shards (explicit schema below), and
per-method statistics for the corpus manifest: how often each method agrees with the
stored consensus and with majority vote, and what it learnt about every annotator.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from pydantic import Field

from emoforge.configs.quality import AggregationConfig
from emoforge.storage.records import Record, SegmentRow

if TYPE_CHECKING:
    import pyarrow as pa

SIDECAR = "aggregation.parquet"


class AggregatedLabel(Record):
    segment_id: str = Field(description="Segment aggregated.")
    method: str = Field(description="Aggregator (majority, weighted, dawid_skene, mace).")
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
        description="Per agent: accuracy vs the method's labels (majority/weighted), prior-weighted "
        "confusion-matrix accuracy (dawid_skene), competence (mace).",
    )
    n_iter: int | None = Field(default=None, description="EM iterations run (dawid_skene, mace).")


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

    def run(self, rows: Iterable[SegmentRow]) -> CorpusAggregation:
        import numpy as np

        from emoforge.quality.aggregation import AGGREGATORS, DawidSkene
        from emoforge.quality.aggregation.base import votes_frame

        all_rows = [r for r in rows if r.segment is not None]
        consensus = {r.segment.id: r.consensus.primary_label for r in all_rows if r.segment and r.consensus}
        frame = votes_frame(all_rows, self.judge)
        labels: list[AggregatedLabel] = []
        stats: dict[str, MethodStats] = {}
        if frame.empty:
            return CorpusAggregation(labels=[], stats={m: MethodStats(n_tasks=0) for m in self.config.corpus_methods})
        majority = AGGREGATORS["majority"]().fit(frame).predict()
        for method in self.config.corpus_methods:
            data = frame.assign(weight=frame["weight"].fillna(0.0)) if method == "weighted" else frame
            model = AGGREGATORS[method]().fit(data)
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
            if isinstance(model, DawidSkene):
                errors = model.errors_
                annotators = {
                    str(w): float(sum(model.priors_[c] * errors.loc[(w, c), c] for c in model.priors_.index))
                    for w in errors.index.get_level_values("worker").unique()
                }
            elif hasattr(model, "competence_"):
                annotators = {str(k): float(v) for k, v in model.competence_.items()}
            else:
                annotators = {str(k): float(v) for k, v in getattr(model, "skills_", {}).items()}
            stats[method] = MethodStats(
                n_tasks=len(predicted),
                agree_with_consensus=float(np.mean(with_consensus)) if with_consensus else None,
                agree_with_majority=float((predicted == majority.reindex(predicted.index)).mean()),
                mean_confidence=float(probas.max(axis=1).mean()),
                annotators=annotators,
                n_iter=getattr(model, "n_iter_", None),
            )
        return CorpusAggregation(labels=labels, stats=stats)
