"""The counts of ``summarize`` (``emoforge inspect``), kept in Arrow a table at a time.

Each count equals the one a loop over the rows as dicts would make, in the same order (a
new key enters a counter where it first occurs), but only the rows that need Python (a
human label to choose, a failed annotation or judgement to pair with its verdicts) become
Python objects: a million rows are counted in seconds, not minutes.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from emoforge.storage.ledger import RunLedger
from emoforge.storage.ledger_table import add_table, get
from emoforge.storage.records import phase_of


class SummaryTally:
    """Running counts over tables holding ``SUMMARY_COLUMNS`` (deduplicated rows)."""

    def __init__(self) -> None:
        self.rows = self.review = self.verified = self.judged = self.off_domain_rows = 0
        self.confidence_sum, self.confidence_n = 0.0, 0
        self.status: Counter[Any] = Counter()
        self.failures: Counter[str] = Counter()
        self.labels: Counter[str] = Counter()
        self.annotations: Counter[str] = Counter()
        self.kinds: Counter[str] = Counter()
        self.reasons: Counter[str] = Counter()
        self.off_domain: Counter[str] = Counter()
        self.terms_rows: Counter[tuple[str, str]] = Counter()
        self.terms_ids: dict[tuple[str, str], set[str]] = defaultdict(set)
        self.ledger = RunLedger()

    def add(self, table: pa.Table) -> None:
        self.rows += table.num_rows
        _count(self.status, table.column("status"))
        add_table(self.ledger, table)
        self._failures(table.column("failure").combine_chunks())
        self._consensus(table)
        self._annotations(table)
        self._terms(table.column("recording").combine_chunks())

    def _failures(self, failure: pa.StructArray) -> None:
        failed = failure.filter(failure.is_valid())
        pairs = pa.table({"stage": get(failed, "stage"), "kind": get(failed, "kind")})
        for g in pairs.group_by(["stage", "kind"], use_threads=False).aggregate([([], "count_all")]).to_pylist():
            self.failures[f"{phase_of(g['stage'])}:{g['kind']}"] += g["count_all"]

    def _consensus(self, table: pa.Table) -> None:
        """Labels (a human's where one labelled the row), the review queue, confidence, reasons."""
        consensus = table.column("consensus").combine_chunks()
        humans = table.column("human").combine_chunks()
        judged = consensus.is_valid()
        has_human = pc.fill_null(pc.greater(pc.list_value_length(humans), 0), False)
        self.verified += _true(has_human)
        self.judged += _true(judged)
        primary = get(consensus, "primary_label")
        labels = pc.if_else(pc.fill_null(pc.not_equal(primary, ""), False), primary, "(none)")
        reviewed = np.flatnonzero(pc.and_(judged, has_human).to_numpy(zero_copy_only=False))
        if len(reviewed):
            # As the report and the release count them: a human label replaces the consensus.
            chosen = labels.to_pylist()
            for i, rows in zip(reviewed, humans.take(pa.array(reviewed)).to_pylist(), strict=True):
                human = max((h for h in rows if h["label"]), key=lambda h: h["reviewed_at"], default=None)
                chosen[i] = (human or {}).get("label") or chosen[i]
            labels = pa.array(chosen, pa.string())
        _count(self.labels, labels.filter(judged))
        waiting = pc.and_(pc.fill_null(get(consensus, "needs_review", pa.bool_()), False), pc.invert(has_human))
        self.review += _true(pc.and_(judged, waiting))
        confidences = get(consensus, "confidence", pa.float64()).filter(judged).to_pylist()
        self.confidence_sum = sum(confidences, self.confidence_sum)
        self.confidence_n += len(confidences)
        # "off_domain: voice trust 0.05 < 0.30" counts as off_domain.
        reasons = pc.list_flatten(get(consensus, "review_reasons", pa.list_(pa.string())).filter(judged))
        _count(self.reasons, pc.list_element(pc.split_pattern(reasons, ":", max_splits=1), 0))

    def _annotations(self, table: pa.Table) -> None:
        """Annotations by agent and status, off-domain inputs, failed votes by kind."""
        annotations = table.column("annotations").combine_chunks()
        verdicts = table.column("verdicts").combine_chunks()
        each = pc.list_flatten(annotations)
        rows = pc.list_parent_indices(annotations)
        agents = pc.fill_null(get(each, "agent"), "None")
        status = pc.fill_null(get(each, "status"), "None")
        _count(self.annotations, pc.binary_join_element_wise(agents, status, ":"))
        far = pc.fill_null(get(each, "domain.off_domain", pa.bool_()), False)
        _count(self.off_domain, agents.filter(far))
        self.off_domain_rows += len(pc.unique(rows.filter(far)))
        # Failed votes pair a row's verdicts with its annotations: those few rows go through
        # failure_kinds as dicts, in row order.
        ann_failed = rows.filter(get(each, "failure", pa.null()).is_valid())
        judged = get(pc.list_flatten(verdicts), "failure", pa.null()).is_valid()
        ver_failed = pc.list_parent_indices(verdicts).filter(judged)
        failing = np.unique(np.concatenate([ann_failed.to_numpy(), ver_failed.to_numpy()]))
        if len(failing):
            picked = pa.array(failing)
            for anns, vers in zip(annotations.take(picked).to_pylist(), verdicts.take(picked).to_pylist(), strict=True):
                self.kinds.update(failure_kinds(anns or [], vers or []))

    def _terms(self, recording: pa.StructArray) -> None:
        """Rows and recording ids per (licence, consent), as ``terms_counts`` keys them."""
        keys = pa.table(
            {
                "licence": _or(get(recording, "terms.licence"), "(unknown)"),
                "consent": _or(get(recording, "terms.consent"), "unknown"),
                "id": _or(get(recording, "id"), ""),
            }
        )
        groups = keys.group_by(["licence", "consent", "id"], use_threads=False).aggregate([([], "count_all")])
        for g in groups.to_pylist():
            key = (g["licence"], g["consent"])
            self.terms_rows[key] += g["count_all"]
            self.terms_ids[key].add(g["id"])


def failure_kinds(annotations: list[dict[str, Any]], verdicts: list[dict[str, Any]]) -> Counter[str]:
    """Failed annotations and judgements of one row by kind (``agent voice: refusal``). A
    verdict on an annotation that had already failed only echoes that failure: not counted."""
    out: Counter[str] = Counter()
    failed = set()
    for a in annotations:
        if a.get("failure"):
            failed.add(a["id"])
            out[f"agent {a['agent']}: {a['failure']['kind']}"] += 1
    for v in verdicts:
        if v.get("failure") and v["annotation_id"] not in failed:
            out[f"judge {v['judge']}: {v['failure']['kind']}"] += 1
    return out


def _count(counter: Counter[Any], values: Any) -> None:
    """Add each value's count, new values in the order they first occur."""
    tallied = pc.value_counts(values)
    counter.update(dict(zip(tallied.field("values").to_pylist(), tallied.field("counts").to_pylist(), strict=True)))


def _true(mask: Any) -> int:
    return int(pc.sum(mask).as_py() or 0)


def _or(values: Any, default: str) -> Any:
    """``value or default`` of Python: null and the empty string take the default."""
    return pc.if_else(pc.fill_null(pc.not_equal(values, ""), False), values, default)
