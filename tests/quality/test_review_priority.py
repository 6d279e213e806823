"""The review queue's order (expected label changes per minute), budgets, and the decile check."""

from __future__ import annotations

import pytest

from emoforge.configs.release import ReviewConfig
from emoforge.quality.review_priority import priority_deciles, review_minutes, review_order, within_budget
from emoforge.storage.records import LabelQuality, SegmentRow
from tests.release.factory import human, make_row

CONFIG = ReviewConfig()  # 2 plays per clip + 30 s of reading


def scored(rec: str, score: float | None, duration_s: float = 1.5, **kw: object) -> SegmentRow:
    row = make_row(rec, 0, **kw)  # type: ignore[arg-type]
    assert row.segment is not None and row.consensus is not None
    quality = None if score is None else LabelQuality(score=score, method="crowdlab-v1", scope="segment")
    return row.model_copy(
        update={
            "segment": row.segment.model_copy(update={"end_s": row.segment.start_s + duration_s}),
            "consensus": row.consensus.model_copy(update={"label_quality": quality}),
        }
    )


def test_minutes_per_clip() -> None:
    assert review_minutes(1.5, CONFIG) == pytest.approx((2 * 1.5 + 30) / 60)
    assert review_minutes(15.0, ReviewConfig(plays_per_clip=1, reading_overhead_s=0)) == pytest.approx(0.25)


def test_order_is_expected_changes_per_minute() -> None:
    rows = [
        scored("sure", 0.95),
        scored("doubtful", 0.4),
        # As doubtful, but 60 s long: 2.5 min instead of 0.55, so it comes after a surer short clip.
        scored("long", 0.4, duration_s=60.0),
        scored("unsure", 0.7),
        scored("old", None, confidence=0.5),  # written before label_quality: 1 - confidence
        scored("nolabel", None, label=None, votes=(None, None, None), confidence=0.0),
    ]
    order = review_order(rows, CONFIG)
    assert [x.row.recording.id for x in order] == ["nolabel", "doubtful", "old", "unsure", "long", "sure"]
    by_id = {x.row.recording.id: x for x in order}
    assert by_id["doubtful"].priority == pytest.approx(0.6 / 0.55)
    assert by_id["long"].priority == pytest.approx(0.6 / 2.5)
    assert (by_id["old"].source, by_id["old"].wrong) == ("confidence", pytest.approx(0.5))
    assert (by_id["nolabel"].source, by_id["nolabel"].wrong) == ("no_label", 1.0)
    assert by_id["sure"].source == "crowdlab-v1"


def test_budget_takes_the_best_clips_that_fit() -> None:
    order = review_order([scored("a", 0.1), scored("long", 0.05, duration_s=60.0), scored("b", 0.8)], CONFIG)
    assert [x.row.recording.id for x in order] == ["a", "long", "b"]
    # 1.2 min: "a" (0.55) fits, "long" (2.5) does not, "b" (0.55) still does.
    assert [x.row.recording.id for x in within_budget(order, 1.2)] == ["a", "b"]
    assert [x.row.recording.id for x in within_budget(order, 10)] == ["a", "long", "b"]
    assert within_budget(order, 0.5) == []


def test_deciles_count_the_labels_review_changed() -> None:
    # 20 rows, most doubtful first; humans reviewed rows 0, 1, 5 and 19: they changed the
    # labels of 0 and 1 (decile 1) and confirmed 5 (decile 3) and 19 (decile 10).
    rows = [scored(f"r{i:02d}", 0.05 * i, label="happy") for i in range(20)]
    reviewed = {0: "sad", 1: "angry", 5: "happy", 19: "happy"}
    rows = [r.model_copy(update={"human": [human(reviewed[i])]}) if i in reviewed else r for i, r in enumerate(rows)]
    report = priority_deciles(rows, CONFIG)
    assert (report.rows, report.reviewed, report.changed) == (20, 4, 2)
    assert report.scored_by == {"crowdlab-v1": 20}
    assert [d.rows for d in report.deciles] == [2] * 10
    assert [(d.reviewed, d.changed) for d in report.deciles] == [(2, 2), (0, 0), (1, 0)] + [(0, 0)] * 6 + [(1, 0)]
    assert report.deciles[0].change_rate == 1.0 and report.deciles[1].change_rate is None
    assert report.deciles[0].expected_changes == pytest.approx(1.0 + 0.95)
    table = report.table()
    assert "2 of 4 reviewed rows changed" in table[0] and len(table) == 12
