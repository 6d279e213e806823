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

from emoforge.agents.agreement import finite
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
    methods: Sequence[str] = ("majority", "weighted", "dawid_skene", "mace"),
    judge: str | None = None,
) -> CalibrationReport:
    """See the module docstring. ``judge`` picks one judge's verdicts when rows carry several."""
    from emoforge.agents.aggregation import AGGREGATORS
    from emoforge.agents.aggregation.base import votes_frame

    all_rows = [r for r in rows if r.segment is not None]
    refs = dict(references) if references is not None else references_from_rows(all_rows)
    labelled = [(r.segment.id, r) for r in all_rows if r.segment is not None and r.segment.id in refs]
    axes: dict[str, list[float]] = {"s_final": [], "s_rec": [], "s_reason": [], "s_cot": []}
    correct: list[bool] = []
    hits: dict[str, list[bool]] = {}
    answered: dict[str, list[bool]] = {}
    consensus_hits = []
    for segment_id, row in labelled:
        truth = refs[segment_id]
        verdicts = {v.annotation_id: v for v in row.verdicts if judge is None or v.judge == judge}
        for a in row.annotations:
            ok = a.status == Status.ok and a.primary_label == truth
            hits.setdefault(a.agent, []).append(ok)
            if a.status == Status.ok and a.primary_label:
                answered.setdefault(a.agent, []).append(ok)
                v = verdicts.get(a.id)
                if v is not None:
                    correct.append(ok)
                    for name, values in axes.items():
                        values.append(getattr(v, name))
        if row.consensus is not None:
            consensus_hits.append(row.consensus.primary_label == truth)
    accuracy: dict[str, float | None] = {"consensus": _mean(consensus_hits)}
    frame = votes_frame(all_rows, judge)
    for method in methods:
        data = frame
        if method == "weighted":
            data = frame.assign(weight=frame["weight"].fillna(0.0))
        if data.empty:
            accuracy[method] = None
            continue
        predicted = AGGREGATORS[method]().fit(data).predict()
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
    )


def _mean(values: list[bool]) -> float | None:
    return round(sum(values) / len(values), 6) if values else None
