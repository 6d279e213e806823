"""The pooled vote refitted on a corpus's human labels (``emoforge aggregate``).

With enough human-verified segments, the per-agent exponents of ``PooledVote``
(``fit_pool_weights``) are fitted on them, every segment is re-pooled with them (sidecar
method ``pooled_fitted``), and the fit is reported with what it changes, measured out of
fold (folds grouped by recording, so a recording's segments never score a fit they
trained). The weights go to the manifest and, as YAML, to the user: pasted under
``aggregation.pool_weights`` they make the next runs' per-segment consensus use them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
from pydantic import Field

from emoforge.configs.quality import AggregationConfig
from emoforge.quality.aggregation.corpus import AggregatedLabel
from emoforge.quality.aggregation.pooled import PooledVote, fit_pool_weights
from emoforge.quality.calibration import expected_calibration_error
from emoforge.quality.consensus import ConsensusBuilder
from emoforge.quality.vote_source import VoteSource
from emoforge.storage.records import Record, RunContext, SegmentRow, Status

if TYPE_CHECKING:
    import pandas as pd

METHOD = "pooled_fitted"


class PoolFit(Record):
    n_labelled: int = Field(description="Segments with a human label and at least one valid vote.")
    min_labelled: int = Field(description="Fewest labelled segments a fit needs.")
    fitted: bool = Field(description="False when there were too few labelled segments.")
    weights: dict[str, float] = Field(default_factory=dict, description="Agent -> exponent on its vote.")
    n_folds: int = Field(default=0, description="Folds of the out-of-fold check.")
    fold_by: str = Field(default="recording", description="recording, or segment when there are too few recordings.")
    accuracy_before: float | None = Field(default=None, description="Pooled vote with unit exponents.")
    accuracy_after: float | None = Field(default=None, description="Pooled vote with out-of-fold exponents.")
    ece_before: float | None = Field(default=None, description="ECE (10 bins) with unit exponents.")
    ece_after: float | None = Field(default=None, description="ECE with out-of-fold exponents.")

    def yaml(self) -> str:
        lines = ["aggregation:", "  pool_weights:"]
        lines += [f"    {name}: {w}" for name, w in sorted(self.weights.items())]
        return "\n".join(lines)


class PoolRefitter:
    """Fits and applies the pooled vote's exponents on one corpus."""

    def __init__(
        self,
        config: AggregationConfig,
        ctx: RunContext,
        labels: Sequence[str],
        priors: Mapping[str, Mapping[str, float]] | None = None,
        min_labelled: int = 30,
        folds: int = 5,
        *,
        sources: Mapping[str, VoteSource],
    ) -> None:
        self.config = config
        self.labels = list(labels)
        self.priors = dict(priors or {})
        self.min_labelled = min_labelled
        self.folds = folds
        # The same vote confidences (judge discount included) as the per-segment consensus.
        self.builder = ConsensusBuilder(config, ctx, None, self.priors, sources=sources)

    def votes(self, rows: Sequence[SegmentRow]) -> tuple[pd.DataFrame, dict[str, str]]:
        """(vote frame, segment -> recording) of the corpus's valid annotations."""
        import pandas as pd

        out, recording = [], {}
        for row in rows:
            if row.segment is None:
                continue
            recording[row.segment.id] = row.segment.recording_id
            verdicts = {v.annotation_id: v for v in row.verdicts}
            for a in row.annotations:
                if a.status != Status.ok or not a.primary_label:
                    continue
                v = verdicts.get(a.id)
                weight = v.s_final if v is not None and v.status == Status.ok else 1.0
                out.append((row.segment.id, a.agent, a.primary_label, self.builder.vote_confidence(a, weight)))
        return pd.DataFrame(out, columns=["task", "worker", "label", "confidence"]), recording

    def run(self, rows: Sequence[SegmentRow], references: Mapping[str, str]) -> tuple[PoolFit, list[AggregatedLabel]]:
        frame, recording = self.votes(rows)
        truth = {str(t): references[t] for t in set(frame["task"]) if t in references}
        fit = PoolFit(n_labelled=len(truth), min_labelled=self.min_labelled, fitted=False)
        if len(truth) < self.min_labelled:
            return fit, []
        weights = self._fit(frame, truth)
        before, after = self._out_of_fold(frame, truth, recording)
        fit = fit.model_copy(update={"fitted": True, "weights": weights, **before, **after})
        return fit, self._apply(frame, weights)

    def _fit(self, frame: pd.DataFrame, truth: Mapping[str, str]) -> dict[str, float]:
        return fit_pool_weights(
            frame,
            truth,
            self.labels,
            self.priors,
            reference=self.config.reference_prior,
        )

    def _pool(self, frame: pd.DataFrame, weights: Mapping[str, float] | None) -> PooledVote:
        vote = PooledVote(self.labels, self.priors, weights, reference=self.config.reference_prior)
        return vote.fit(frame)

    def _out_of_fold(
        self, data: pd.DataFrame, truth: Mapping[str, str], recording: Mapping[str, str]
    ) -> tuple[dict[str, object], dict[str, object]]:
        tasks = sorted(truth)
        groups = sorted({recording[t] for t in truth})
        if len(groups) >= self.folds:
            fold_of = {t: groups.index(recording[t]) % self.folds for t in tasks}
        else:
            # Fewer recordings than folds: interleaved segments, which share their recording's
            # speakers and so flatter the check; PoolFit.fold_by says which was used.
            fold_of = {t: i % self.folds for i, t in enumerate(tasks)}
        k = min(self.folds, len(tasks))
        plain = self._pool(data[data["task"].isin(list(truth))], None)
        held_out: dict[str, tuple[str, float]] = {}
        for fold in range(k):
            test = [t for t in tasks if fold_of[t] == fold]
            train_truth = {t: truth[t] for t in tasks if fold_of[t] != fold}
            weights = self._fit(data[data["task"].isin(list(train_truth))], train_truth) if train_truth else {}
            pooled = self._pool(data[data["task"].isin(test)], weights)
            for t in test:
                label = str(pooled.labels_[t])
                held_out[t] = (label, float(pooled.probas_.loc[t, label]))

        def scores(pred: Mapping[str, tuple[str, float]]) -> tuple[float, float]:
            right = [pred[t][0] == truth[t] for t in tasks]
            return float(np.mean(right)), expected_calibration_error([pred[t][1] for t in tasks], right)

        plain_pred = {t: (str(plain.labels_[t]), float(plain.probas_.loc[t, str(plain.labels_[t])])) for t in tasks}
        acc_b, ece_b = scores(plain_pred)
        acc_a, ece_a = scores(held_out)
        return (
            {
                "n_folds": k,
                "fold_by": "recording" if len(groups) >= self.folds else "segment",
                "accuracy_before": round(acc_b, 4),
                "ece_before": round(ece_b, 4),
            },
            {"accuracy_after": round(acc_a, 4), "ece_after": round(ece_a, 4)},
        )

    def _apply(self, frame: pd.DataFrame, weights: Mapping[str, float]) -> list[AggregatedLabel]:
        pooled = self._pool(frame, weights)
        out = []
        for task, label in pooled.labels_.items():
            row = pooled.probas_.loc[task]
            out.append(
                AggregatedLabel(
                    segment_id=str(task),
                    method=METHOD,
                    label=str(label),
                    confidence=float(row[label]),
                    distribution={str(k): float(p) for k, p in row.items() if p > 0},
                )
            )
        return out
