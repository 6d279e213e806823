"""`emoforge aggregate` refits label quality on the corpus and stores it in the shards;
`emoforge agreement` reports the labels review changed per review-priority decile."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from emoforge.cli import app
from emoforge.storage.records import SegmentRow
from emoforge.storage.shards import read_manifest, read_rows
from tests.quality.corpus import simulated_rows, write_corpus


@pytest.fixture(scope="module")
def simulated() -> tuple[list[SegmentRow], dict[str, str]]:
    return simulated_rows(n=120, seed=2)


def test_aggregate_stores_corpus_scores(simulated: tuple[list[SegmentRow], dict[str, str]], tmp_path: Path) -> None:
    corpus = write_corpus(tmp_path / "corpus", simulated[0])
    before = {r.row_id: r for r in read_rows(str(corpus))}
    assert {r.consensus.label_quality.scope for r in before.values() if r.consensus and r.consensus.label_quality} == {
        "segment"
    }
    result = CliRunner().invoke(app, ["aggregate", str(corpus)])
    assert result.exit_code == 0, result.output
    assert "label quality (crowdlab-v1) refitted on the corpus: 120 rows scored, 120 rewritten" in result.output
    after = {r.row_id: r for r in read_rows(str(corpus))}
    assert len(after) == 120
    for row_id, row in after.items():
        assert row.consensus is not None and row.consensus.label_quality is not None
        assert (row.consensus.label_quality.scope, row.consensus.label_quality.fitted_rows) == ("corpus", 120)
        # Nothing else changed: the human labels, the consensus label, the annotations.
        old = before[row_id]
        assert old.consensus is not None
        assert row.human == old.human and row.annotations == old.annotations
        assert row.consensus.model_copy(update={"label_quality": None}) == old.consensus.model_copy(
            update={"label_quality": None}
        )
    stats = read_manifest(str(corpus))["stats"]["label_quality"]
    assert stats["rows_scored"] == 120 and stats["skipped"] is None
    assert stats["annotator_weights"]["constant"] < stats["annotator_weights"]["good"]
    # A second run finds the same scores and rewrites nothing.
    again = CliRunner().invoke(app, ["aggregate", str(corpus)])
    assert again.exit_code == 0, again.output
    assert "120 rows scored, 0 rewritten" in again.output


def test_agreement_reports_changes_per_priority_decile(
    simulated: tuple[list[SegmentRow], dict[str, str]], tmp_path: Path
) -> None:
    rows, truth = simulated
    corpus = write_corpus(tmp_path / "corpus", rows)
    result = CliRunner().invoke(app, ["agreement", str(corpus)])
    assert result.exit_code == 0, result.output
    stats = read_manifest(str(corpus))["stats"]["review_priority"]
    # Every second row carries a human label equal to the truth: a change where the consensus is wrong.
    reviewed = [r for r in rows if r.human]
    changed = sum(r.consensus is not None and r.consensus.primary_label != truth[r.row_id] for r in reviewed)
    assert (stats["rows"], stats["reviewed"], stats["changed"]) == (120, 60, changed)
    assert changed == 6 and sum(d["changed"] for d in stats["deciles"]) == changed
    # The ordering works on this corpus: 5 of the 6 changes sit in the first three deciles
    # (a random order would put 30% of them there, 1.8).
    assert sum(d["changed"] for d in stats["deciles"][:3]) == 5
    assert f"{changed} of 60 reviewed rows changed" in result.output
