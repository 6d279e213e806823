"""`emoforge inspect` after a review import: verified rows leave the queue, their human label
counts (as in the report and the release), and failed annotations and judgements show their kind."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from typer.testing import CliRunner

from emoforge.cli import app
from emoforge.configs.release import ReviewConfig
from emoforge.release.splits import release_label
from emoforge.review.importer import ReviewImporter
from emoforge.storage.shards import read_rows
from tests.release.factory import failed_judgement, make_row, write_corpus


def _export(path: Path, labels: dict[str, str]) -> Path:
    tasks = [
        {
            "id": i,
            "data": {"row_id": row_id},
            "annotations": [
                {
                    "id": 100 + i,
                    "completed_by": 1,
                    "result": [
                        {
                            "from_name": "emotion",
                            "to_name": "transcript",
                            "type": "choices",
                            "value": {"choices": [lab]},
                        }
                    ],
                }
            ],
        }
        for i, (row_id, lab) in enumerate(labels.items())
    ]
    path.write_text(json.dumps(tasks))
    return path


def test_inspect_agrees_with_the_review_after_an_import(tmp_path: Path) -> None:
    rows = [make_row(f"q{i}", 0, "sad", needs_review=True) for i in range(4)]
    rows += [make_row(f"ok{i}", 0, "happy") for i in range(3)]
    # q0: the voice agent refused, and the LLM judge "failed" on that refusal too (an echo, not
    # a second failure); ok0: the judge timed out on a good annotation (a real judge failure).
    q0 = make_row("q0", 0, "sad", needs_review=True, votes=("sad", None, "sad"))
    rows[0] = q0.model_copy(update={"verdicts": [*q0.verdicts, failed_judgement(q0.verdicts[0], "q0-00000-voice")]})
    ok0 = rows[4]
    rows[4] = ok0.model_copy(update={"verdicts": [*ok0.verdicts, failed_judgement(ok0.verdicts[0], "ok0-00000-face")]})
    root = write_corpus(str(tmp_path / "corpus"), rows)

    runner = CliRunner()
    before = json.loads(runner.invoke(app, ["inspect", root, "--json"]).output)
    assert (before["needs_review"], before["verified"]) == (4, 0)
    assert before["failure_kinds"] == {"agent voice: refusal": 1, "judge llm: timeout": 1}

    report = ReviewImporter(ReviewConfig()).run(root, _export(tmp_path / "export.json", {"q1-00000": "angry"}))
    assert report.imported == 1
    after = json.loads(runner.invoke(app, ["inspect", root, "--json"]).output)
    assert (after["needs_review"], after["verified"]) == (3, 1)
    # the same label counts the release and the report use: a human's label where verified
    assert (
        after["labels"]
        == dict(Counter(release_label(r) for r in read_rows(root)))
        == {
            "sad": 3,
            "angry": 1,
            "happy": 3,
        }
    )

    text = runner.invoke(app, ["inspect", root]).output
    assert "review queue: 3 segments waiting (1 verified by a human)" in text
    assert "agent voice: refusal" in text and "judge llm: timeout" in text
