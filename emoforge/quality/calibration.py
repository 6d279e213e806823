"""Judge calibration on a labelled corpus: do judge scores separate right from wrong answers,
and does aggregating beat the best single annotator?

* AUROC of S_final (and of each axis) for telling correct annotations (primary label equal
  to the reference) from wrong ones: the Mann-Whitney statistic
  ``AUROC = (R_+ - n_+ (n_+ + 1) / 2) / (n_+ n_-)`` with ``R_+`` the sum of the
  average-tie ranks of the correct annotations' scores. 0.5 is chance, 1 a perfect judge.
* Accuracy of every aggregator (fitted on the whole corpus, scored on the labelled
  segments), of the stored per-segment consensus, and of each single annotator on the
  segments it answered (a failed annotation counts as wrong in ``annotator_accuracy`` and
  is left out of ``annotator_answered_accuracy``).

References are the newest human label of each row, or an explicit segment-id -> label map.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np
from numpy.typing import ArrayLike
from pydantic import Field

from emoforge.quality.stats import finite
from emoforge.storage.records import Record, SegmentRow, Status


class CalibrationReport(Record):
    n_labelled_segments: int = Field(description="Segments with a reference label.")
    n_judged: int = Field(description="Valid annotations on those segments with a verdict.")
    n_correct: int = Field(description="... of which the primary label equals the reference.")
    auroc: dict[str, float | None] = Field(description="s_final/s_rec/s_reason/s_cot -> AUROC (null: one class).")
    aggregator_accuracy: dict[str, float | None] = Field(description="Aggregator -> accuracy vs reference.")
    annotator_accuracy: dict[str, float | None] = Field(description="Agent -> accuracy, failures count wrong.")
    annotator_answered_accuracy: dict[str, float | None] = Field(description="Agent -> accuracy where it answered.")
    best_single_annotator: str | None = Field(default=None, description="Agent with the highest accuracy.")
    annotator_macro_f1: dict[str, float | None] = Field(
        default_factory=dict, description="Agent -> macro-F1 over the reference labels, failures count wrong."
    )
    annotator_ece: dict[str, float | None] = Field(
        default_factory=dict, description="Agent -> ECE (10 bins) of its stated confidence where it answered."
    )
    consensus_macro_f1: float | None = Field(default=None, description="Macro-F1 of the stored consensus.")
    consensus_ece: float | None = Field(default=None, description="ECE of the stored consensus confidence.")
    consensus_not_given: int = Field(
        default=0, description="Labelled rows whose consensus label no valid annotation gave (should be 0)."
    )


def auroc(scores: ArrayLike, positive: ArrayLike) -> float:
    """Area under the ROC curve of ``scores`` for ``positive`` (bool) items; NaN with one class."""
    from scipy.stats import rankdata

    s = np.asarray(scores, dtype=float)
    y = np.asarray(positive, dtype=bool)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(s)
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def expected_calibration_error(confidence: ArrayLike, correct: ArrayLike, bins: int = 10) -> float:
    """ECE: ``sum_b |B_b| / n * |acc(B_b) - conf(B_b)|`` over ``bins`` equal-width confidence bins.

    0 for a perfectly calibrated annotator; NaN without data. A confidence of exactly 1
    falls in the last bin."""
    c = np.clip(np.asarray(confidence, dtype=float), 0.0, 1.0)
    y = np.asarray(correct, dtype=float)
    if c.size == 0:
        return float("nan")
    which = np.minimum((c * bins).astype(int), bins - 1)
    total = 0.0
    for b in range(bins):
        mask = which == b
        if mask.any():
            total += mask.sum() / c.size * abs(float(y[mask].mean()) - float(c[mask].mean()))
    return float(total)


def macro_f1(truth: Sequence[str], predicted: Sequence[str | None], labels: Sequence[str] | None = None) -> float:
    """Unweighted mean of per-label F1 over ``labels`` (default: the labels in ``truth``).

    A missing prediction (None: the annotator failed) counts as wrong for its true label."""
    classes = list(labels) if labels is not None else sorted(set(truth))
    if not classes:
        return float("nan")
    scores = []
    for c in classes:
        tp = sum(t == c and p == c for t, p in zip(truth, predicted, strict=True))
        fp = sum(t != c and p == c for t, p in zip(truth, predicted, strict=True))
        fn = sum(t == c and p != c for t, p in zip(truth, predicted, strict=True))
        scores.append(0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn))
    return float(np.mean(scores))


def references_from_rows(rows: Sequence[SegmentRow]) -> dict[str, str]:
    """Segment id -> newest human label, for rows a human verified."""
    out = {}
    for row in rows:
        labelled = [h for h in row.human if h.label]
        if row.segment is not None and labelled:
            out[row.segment.id] = max(labelled, key=lambda h: h.reviewed_at).label or ""
    return out


def calibration_report(
    rows: Iterable[SegmentRow],
    references: Mapping[str, str] | None = None,
    methods: Sequence[str] | None = None,
    judge: str | None = None,
) -> CalibrationReport:
    """See the module docstring. ``methods``: corpus aggregators to score (default: every
    registered one); ``judge`` picks one judge's verdicts when rows carry several."""
    from emoforge.quality.aggregation import Scope, aggregator, choices
    from emoforge.quality.aggregation.base import votes_frame

    all_rows = [r for r in rows if r.segment is not None]
    refs = dict(references) if references is not None else references_from_rows(all_rows)
    labelled = [(r.segment.id, r) for r in all_rows if r.segment is not None and r.segment.id in refs]
    axes: dict[str, list[float]] = {"s_final": [], "s_rec": [], "s_reason": [], "s_cot": []}
    correct: list[bool] = []
    hits: dict[str, list[bool]] = {}
    answered: dict[str, list[bool]] = {}
    consensus_hits = []
    truths: list[str] = []
    predictions: dict[str, list[str | None]] = {}
    confidences: dict[str, tuple[list[float], list[bool]]] = {}
    consensus_pred: list[str | None] = []
    consensus_conf: list[float] = []
    not_given = 0
    all_agents = {a.agent for r in all_rows for a in r.annotations}
    for segment_id, row in labelled:
        truth = refs[segment_id]
        verdicts = {v.annotation_id: v for v in row.verdicts if judge is None or v.judge == judge}
        truths.append(truth)
        for agent in all_agents - {a.agent for a in row.annotations}:
            predictions.setdefault(agent, []).append(None)
        for a in row.annotations:
            ok = a.status == Status.ok and a.primary_label == truth
            hits.setdefault(a.agent, []).append(ok)
            predictions.setdefault(a.agent, []).append(a.primary_label if a.status == Status.ok else None)
            if a.status == Status.ok and a.confidence is not None:
                conf, right = confidences.setdefault(a.agent, ([], []))
                conf.append(a.confidence)
                right.append(ok)
            if a.status == Status.ok and a.primary_label:
                answered.setdefault(a.agent, []).append(ok)
                v = verdicts.get(a.id)
                if v is not None:
                    correct.append(ok)
                    for name, values in axes.items():
                        values.append(getattr(v, name))
        if row.consensus is not None:
            consensus_hits.append(row.consensus.primary_label == truth)
            given = {a.primary_label for a in row.annotations if a.status == Status.ok}
            not_given += row.consensus.primary_label is not None and row.consensus.primary_label not in given
        consensus_pred.append(row.consensus.primary_label if row.consensus is not None else None)
        consensus_conf.append(row.consensus.confidence if row.consensus is not None else 0.0)
    accuracy: dict[str, float | None] = {"consensus": _mean(consensus_hits)}
    frame = votes_frame(all_rows, judge)
    for method in choices(Scope.CORPUS) if methods is None else methods:
        cls = aggregator(method, Scope.CORPUS)
        data = cls.spec.corpus_votes(frame)
        if data.empty:
            accuracy[method] = None
            continue
        predicted = cls().fit(data).predict()
        accuracy[method] = _mean([predicted.get(sid) == refs[sid] for sid, _ in labelled])
    agent_acc = {agent: _mean(h) for agent, h in sorted(hits.items())}
    ranked = [a for a in agent_acc if agent_acc[a] is not None]
    return CalibrationReport(
        n_labelled_segments=len(labelled),
        n_judged=len(correct),
        n_correct=sum(correct),
        auroc={name: finite(auroc(values, correct)) for name, values in axes.items()},
        aggregator_accuracy=accuracy,
        annotator_accuracy=agent_acc,
        annotator_answered_accuracy={agent: _mean(h) for agent, h in sorted(answered.items())},
        best_single_annotator=max(ranked, key=lambda a: agent_acc[a] or 0.0) if ranked else None,
        annotator_macro_f1={a: finite(macro_f1(truths, p)) for a, p in sorted(predictions.items())},
        annotator_ece={a: finite(expected_calibration_error(*v)) for a, v in sorted(confidences.items())},
        consensus_macro_f1=finite(macro_f1(truths, consensus_pred)) if truths else None,
        consensus_ece=finite(
            expected_calibration_error(consensus_conf, [p == t for p, t in zip(consensus_pred, truths, strict=True)])
        )
        if truths
        else None,
        consensus_not_given=not_given,
    )


def _mean(values: list[bool]) -> float | None:
    return round(sum(values) / len(values), 6) if values else None
