"""`review export` orders the queue by expected label changes per minute; `--budget-minutes N`
sends the best N minutes of clips, flagged or not."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from emoforge.cli import app
from emoforge.configs.release import ReviewConfig
from emoforge.review.exporter import LabelStudioExporter
from emoforge.storage.records import LabelQuality, SegmentRow
from emoforge.storage.shards import read_manifest
from tests.release.factory import TAXONOMY, make_row, write_corpus


def scored(rec: str, score: float, needs_review: bool = False) -> SegmentRow:
    row = make_row(rec, 0, needs_review=needs_review)
    assert row.consensus is not None
    quality = LabelQuality(score=score, method="crowdlab-v1", scope="corpus", fitted_rows=6)
    return row.model_copy(update={"consensus": row.consensus.model_copy(update={"label_quality": quality})})


ROWS = [
    scored("a-flagged-sure", 0.9, needs_review=True),
    scored("b-flagged-doubtful", 0.2, needs_review=True),
    scored("c-unflagged-doubtful", 0.1),
    scored("d-unflagged", 0.6),
    scored("e-flagged-middling", 0.5, needs_review=True),
    scored("f-unflagged-sure", 0.95),
]


def _ids(tasks: list[dict]) -> list[str]:
    return [t["data"]["row_id"].removesuffix("-00000") for t in tasks]


def test_flagged_queue_is_ordered_by_priority() -> None:
    export = LabelStudioExporter(ReviewConfig(audit_fraction=0.0)).export(ROWS, TAXONOMY)
    assert _ids(export.tasks) == ["b-flagged-doubtful", "e-flagged-middling", "a-flagged-sure"]
    # Every factory clip lasts 1.5 s: (2 plays * 1.5 s + 30 s) / 60 = 0.55 min each.
    assert export.queued == 3 and export.minutes == 1.65


def test_budget_takes_the_best_minutes_flagged_or_not() -> None:
    export = LabelStudioExporter(ReviewConfig(audit_fraction=0.5)).export(ROWS, TAXONOMY, budget_minutes=1.2)
    assert _ids(export.tasks) == ["c-unflagged-doubtful", "b-flagged-doubtful"]
    assert (export.queued, export.audit, export.minutes) == (2, 0, 1.1)


def test_review_export_budget_option(tmp_path: Path) -> None:
    corpus = write_corpus(str(tmp_path / "corpus"), ROWS)
    out = tmp_path / "tasks.json"
    res = CliRunner().invoke(app, ["review", "export", corpus, str(out), "--budget-minutes", "1.7"])
    assert res.exit_code == 0, res.output
    assert "3 tasks (3 best of 1.7 min, 0 audit)" in res.output
    assert "~1.6 min of review" in res.output
    assert _ids(json.loads(out.read_text())) == ["c-unflagged-doubtful", "b-flagged-doubtful", "e-flagged-middling"]


def test_review_import_reports_changes_per_priority_decile(tmp_path: Path) -> None:
    corpus = write_corpus(str(tmp_path / "corpus"), ROWS)

    def task(tid: int, rec: str, label: str) -> dict:
        result = [{"from_name": "emotion", "to_name": "transcript", "type": "choices", "value": {"choices": [label]}}]
        annotation = {"id": 100 + tid, "completed_by": {"id": 1, "email": "rev@example.org"}, "result": result}
        return {
            "id": tid,
            "data": {"row_id": f"{rec}-00000"},
            "annotations": [annotation | {"updated_at": "2026-01-02T03:04:05Z"}],
        }

    # Every consensus label is "happy": the reviewer changes the two most doubtful rows and
    # confirms the surest one.
    export = tmp_path / "export.json"
    tasks = [
        task(1, "c-unflagged-doubtful", "sad"),
        task(2, "b-flagged-doubtful", "angry"),
        task(3, "f-unflagged-sure", "happy"),
    ]
    export.write_text(json.dumps(tasks))
    res = CliRunner().invoke(app, ["review", "import", corpus, str(export)])
    assert res.exit_code == 0, res.output
    assert "2 of 3 reviewed rows changed; 6 rows ranked" in res.output
    stats = read_manifest(corpus)["stats"]["review_priority"]
    # 6 rows in ten deciles: the first six hold one row each, most doubtful first.
    assert [(d["rows"], d["reviewed"], d["changed"]) for d in stats["deciles"]] == [
        (1, 1, 1),
        (1, 1, 1),
        (1, 0, 0),
        (1, 0, 0),
        (1, 0, 0),
        (1, 1, 0),
    ] + [(0, 0, 0)] * 4
