"""The README's release and evaluate lines, run as written; bad inputs end in one line, not a traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from emoforge.cli import app
from tests.release.factory import make_row, write_corpus


@pytest.fixture()
def released(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    labels = ["happy", "sad", "angry", "neutral"]
    rows = [make_row(f"rec{i:02d}", 0, labels[i % 4], source=f"src{i}", speaker=f"s{i}") for i in range(40)]
    write_corpus("out/corpus", rows)
    res = CliRunner().invoke(app, ["export", "out/corpus", "--out", "release/"])  # README, as written
    assert res.exit_code == 0, res.output
    assert "licence is still 'TODO: fill in'" in res.output
    assert "Warning: no licence yet" in (tmp_path / "release" / "README.md").read_text()
    return tmp_path


def test_readme_evaluate_line_works_as_written(released: Path) -> None:
    answers = [json.loads(x) for x in (released / "release-answers" / "test.jsonl").read_text().splitlines()]
    assert answers
    wrong = answers[0]["row_id"]
    preds = [{"row_id": a["row_id"], "label": "fearful" if a["row_id"] == wrong else a["label"]} for a in answers]
    pq.write_table(pa.Table.from_pylist(preds), released / "predictions.parquet")
    res = CliRunner().invoke(
        app, ["evaluate", "predictions.parquet", "--answers", "release-answers/test.jsonl", "--json"]
    )
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["accuracy"] == pytest.approx((len(answers) - 1) / len(answers))


def test_missing_file_is_one_line(released: Path) -> None:
    res = CliRunner().invoke(app, ["evaluate", "predictions.parquet", "--answers", "release/test_answers.parquet"])
    assert res.exit_code == 2
    assert res.output.strip().splitlines() == ["error: predictions.parquet: no such file"]
    assert res.exception is None or isinstance(res.exception, SystemExit)


def test_answers_without_labels_are_refused(released: Path) -> None:
    # The public test split has its labels hidden: scoring against it would give 0 silently.
    public = released / "release" / "data" / "test.parquet"
    rows = pq.read_table(public).to_pylist()
    (released / "p.jsonl").write_text("".join(json.dumps({"row_id": r["row_id"], "label": "sad"}) + "\n" for r in rows))
    res = CliRunner().invoke(app, ["evaluate", "p.jsonl", "--answers", str(public)])
    assert res.exit_code == 2
    (line,) = res.output.strip().splitlines()
    assert line.startswith(f"error: {public}: {len(rows)} of {len(rows)} answer rows have no label")
    assert "OUT-answers/test.jsonl" in line
