"""Which clips a reviewer should see first: expected label changes per minute of review.

A clip's expected label change is the chance its consensus label is wrong, ``1 - score`` of
its ``Consensus.label_quality`` (CROWDLAB, ``emoforge/quality/label_quality.py``); rows written
before that field existed fall back to ``1 - consensus.confidence``. Its cost is the minutes a
reviewer spends on it: ``(plays_per_clip * duration + reading_overhead_s) / 60``
(``release.review``). The queue is sorted by their ratio, highest first; a budget takes the
queue in that order, skipping a clip that no longer fits.

``priority_deciles`` checks the ordering after human labels come back: the scored rows split
into ten equal groups by priority (decile 1 = reviewed first), and per group how many were
reviewed and how many of those the human changed (newest human label != consensus label).
An ordering that works shows most changes in the first deciles.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from pydantic import Field

from emoforge.configs.release import ReviewConfig
from emoforge.quality.human_agreement import latest_human
from emoforge.storage.records import Record, SegmentRow, Status


@dataclass(frozen=True)
class QueueItem:
    """One row in review order."""

    row: SegmentRow
    wrong: float  # expected label change: P(consensus label wrong)
    minutes: float  # estimated review time
    source: str  # what ``wrong`` came from: label_quality method, or "confidence"

    @property
    def priority(self) -> float:
        """Expected label changes per minute of review."""
        return self.wrong / self.minutes if self.minutes > 0 else self.wrong * 1e9


def review_minutes(duration_s: float, config: ReviewConfig) -> float:
    return (config.plays_per_clip * max(0.0, duration_s) + config.reading_overhead_s) / 60.0


def queue_item(row: SegmentRow, config: ReviewConfig) -> QueueItem | None:
    """The row's place in the queue; None for rows with nothing to review (failed, not aggregated).
    A row the jury gave no label (every annotation failed) is sure to change: P(wrong) = 1."""
    cons = row.consensus
    if row.status != Status.ok or row.segment is None or cons is None:
        return None
    if not cons.primary_label:
        wrong, source = 1.0, "no_label"
    elif cons.label_quality is not None:
        wrong, source = 1.0 - cons.label_quality.score, cons.label_quality.method
    else:
        wrong, source = 1.0 - cons.confidence, "confidence"
    return QueueItem(row, max(0.0, wrong), review_minutes(row.segment.duration_s, config), source)


def review_order(rows: Iterable[SegmentRow], config: ReviewConfig) -> list[QueueItem]:
    """Rows by expected label changes per minute, highest first (ties by row id)."""
    items = [item for r in rows if (item := queue_item(r, config)) is not None]
    return sorted(items, key=lambda x: (-x.priority, x.row.row_id))


def within_budget(items: Sequence[QueueItem], budget_minutes: float) -> list[QueueItem]:
    """The queue's prefix that fits ``budget_minutes``, in order; a clip too long for what is
    left is skipped and shorter ones after it still fill the budget."""
    chosen, left = [], budget_minutes
    for item in items:
        if item.minutes <= left + 1e-9:
            chosen.append(item)
            left -= item.minutes
    return chosen


class DecileStats(Record):
    decile: int = Field(description="1 = the tenth of the rows reviewed first.")
    rows: int = Field(description="Rows in this decile.")
    minutes: float = Field(description="Estimated review minutes of its rows.")
    expected_changes: float = Field(description="Sum of P(consensus wrong) over its rows.")
    reviewed: int = Field(description="Rows with a human label.")
    changed: int = Field(description="Reviewed rows whose human label differs from the consensus label (or adds one).")
    change_rate: float | None = Field(default=None, description="changed / reviewed (null when none reviewed).")


class ReviewPriorityReport(Record):
    """Consensus labels that human review changed, per review-priority decile."""

    rows: int = Field(description="Aggregated ok rows, ranked.")
    reviewed: int = Field(description="Ranked rows with a human label.")
    changed: int = Field(description="Reviewed rows whose human label differs from the consensus label.")
    scored_by: dict[str, int] = Field(
        description="Source of P(wrong) -> rows: a label-quality method, confidence (older rows), no_label."
    )
    deciles: list[DecileStats] = Field(description="Ten groups by priority, highest first.")

    def table(self) -> list[str]:
        """A readable table: one line per decile."""
        lines = [
            f"labels changed by review, per review-priority decile ({self.changed} of {self.reviewed} reviewed "
            f"rows changed; {self.rows} rows ranked)",
            "  decile   rows  minutes  expected  reviewed  changed  rate",
        ]
        for d in self.deciles:
            rate = "-" if d.change_rate is None else f"{d.change_rate:.2f}"
            lines.append(
                f"  {d.decile:>6} {d.rows:>6} {d.minutes:>8.1f} {d.expected_changes:>9.1f} {d.reviewed:>9} "
                f"{d.changed:>8}  {rate}"
            )
        return lines


def priority_deciles(rows: Iterable[SegmentRow], config: ReviewConfig) -> ReviewPriorityReport:
    """Per review-priority decile: rows, reviewed, and labels the reviewers changed."""
    items = review_order(rows, config)
    n = len(items)
    deciles, start = [], 0
    for d in range(10):
        # numpy.array_split's sizes: the first n % 10 deciles hold one row more.
        size = n // 10 + (d < n % 10)
        chunk, start = items[start : start + size], start + size
        humans = [(x, latest_human(x.row)) for x in chunk]
        reviewed = [(x, h) for x, h in humans if h is not None and h.label]
        changed = sum(
            h is not None and x.row.consensus is not None and h.label != x.row.consensus.primary_label
            for x, h in reviewed
        )
        deciles.append(
            DecileStats(
                decile=d + 1,
                rows=len(chunk),
                minutes=round(sum(x.minutes for x in chunk), 3),
                expected_changes=round(sum(x.wrong for x in chunk), 3),
                reviewed=len(reviewed),
                changed=changed,
                change_rate=round(changed / len(reviewed), 4) if reviewed else None,
            )
        )
    sources: dict[str, int] = {}
    for x in items:
        sources[x.source] = sources.get(x.source, 0) + 1
    return ReviewPriorityReport(
        rows=n,
        reviewed=sum(d.reviewed for d in deciles),
        changed=sum(d.changed for d in deciles),
        scored_by=dict(sorted(sources.items())),
        deciles=deciles,
    )
