"""Row 9 of docs/security.md: a Label Studio export that passed through other hands.

A review stamped far in the future would be the newest review for ever and so decide the
release label over every real review after it: it is refused with a message. Fields of the
wrong type (``"choices": 5``, ``"text": 7``) are reported for their task, never a traceback,
and the other tasks still import.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from emoforge.cli import app
from emoforge.release.splits import release_label
from emoforge.review.parser import LabelStudioParser
from emoforge.review.tasks import COMMENT, EMOTION
from emoforge.storage.shards import read_rows
from tests.release.factory import make_row, write_corpus

TAXONOMY = ["angry", "happy", "neutral", "sad"]


def _annotation(aid: int, label: Any, when: str, comment: Any = None) -> dict[str, Any]:
    result: list[dict[str, Any]] = [{"from_name": EMOTION, "type": "choices", "value": {"choices": label}}]
    if comment is not None:
        result.append({"from_name": COMMENT, "type": "textarea", "value": {"text": comment}})
    return {"id": aid, "completed_by": {"email": f"r{aid}@lab"}, "updated_at": when, "result": result}


def test_row9_a_far_future_review_is_refused_and_the_real_one_decides(tmp_path: Path) -> None:
    row = make_row("rec-a", 0, "sad")
    corpus = write_corpus(str(tmp_path / "corpus"), [row])
    now = datetime.now(UTC)
    export = [
        {
            "id": 1,
            "data": {"row_id": row.row_id},
            "annotations": [
                _annotation(10, ["angry"], "9999-12-31T00:00:00Z"),
                _annotation(11, ["happy"], (now - timedelta(minutes=1)).isoformat()),
                _annotation(12, ["neutral"], (now + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%S")),  # naive
            ],
        }
    ]
    parsed = LabelStudioParser(TAXONOMY, {row.row_id}, "export.json").parse(export)
    assert [h.label for h in parsed.labels[row.row_id]] == ["happy"]
    assert [(p.annotation_id, p.kind) for p in parsed.problems] == [(10, "future_timestamp"), (12, "future_timestamp")]
    assert "later than now" in parsed.problems[0].message

    path = tmp_path / "export.json"
    path.write_text(json.dumps(export), encoding="utf-8")
    result = CliRunner().invoke(app, ["review", "import", corpus, str(path)])
    assert result.exit_code == 0, result.output
    assert "future_timestamp" in result.output
    (stored,) = list(read_rows(corpus))
    assert release_label(stored) == "happy"


def test_row9_wrong_types_are_reported_per_task_without_a_traceback(tmp_path: Path) -> None:
    rows = [make_row("rec-a", i, "sad") for i in range(3)]
    corpus = write_corpus(str(tmp_path / "corpus"), rows)
    when = datetime.now(UTC).isoformat()
    export = [
        {"id": 1, "data": {"row_id": rows[0].row_id}, "annotations": [_annotation(10, 5, when)]},
        {"id": 2, "data": {"row_id": rows[1].row_id}, "annotations": [_annotation(20, ["happy"], when, comment=7)]},
        {"id": 3, "data": {"row_id": rows[2].row_id}, "annotations": [_annotation(30, ["angry"], when, ["ok"])]},
    ]
    parsed = LabelStudioParser(TAXONOMY, {r.row_id for r in rows}, "export.json").parse(export)
    assert [(p.task_id, p.kind) for p in parsed.problems] == [(1, "malformed_item"), (2, "malformed_item")]
    assert "expected a list of strings" in parsed.problems[0].message
    assert {k: [h.label for h in v] for k, v in parsed.labels.items()} == {rows[2].row_id: ["angry"]}

    path = tmp_path / "export.json"
    path.write_text(json.dumps(export), encoding="utf-8")
    result = CliRunner().invoke(app, ["review", "import", corpus, str(path)])
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output and "1 human labels imported" in result.output
