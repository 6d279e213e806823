"""CONTRIBUTING.md's "Add a phase", done as a contributor would: a new phase in its own module
(written to a temporary folder here), registered by its line in ``PIPELINE``, runs in the real
flow after the six phases, its output reaches the committed rows, a failure in it is a failure
row naming it, and the dry run walks it too.

Files a contributor touches outside tests: 2, the phase's module (``flows/phases/<name>.py``)
and its line in ``PIPELINE`` (``flows/pipeline.py``); a third, ``configs/``, only when the
phase has settings of its own.
"""

from __future__ import annotations

import importlib
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from emoforge.configs import load_config
from emoforge.flows import pipeline
from emoforge.flows.annotate import annotate_corpus
from emoforge.flows.estimate import estimate_cost
from emoforge.storage.records import Status
from emoforge.storage.shards import read_rows
from tests.conftest import espeak

TOY_PHASE = '''
"""Phase ``shortlist``: every segment shorter than two seconds goes to human review."""

from emoforge.flows.cost_estimate import CostEstimate
from emoforge.flows.phase import Phase, segment_of
from emoforge.flows.work import RecordingWork

MAX_S = 2.0
FAIL = False  # the test sets it to see a failure in this phase become failure rows


class Shortlist(Phase):
    name = "shortlist"

    def fill(self, work: RecordingWork) -> None:
        if FAIL:
            raise RuntimeError("shortlist broke")
        for row in work.rows:
            seg = segment_of(row)
            if row.consensus is not None and seg.end_s - seg.start_s < MAX_S:
                reasons = [*row.consensus.review_reasons, f"{self.name}: under {MAX_S} s"]
                row.consensus = row.consensus.model_copy(update={"needs_review": True, "review_reasons": reasons})

    def estimate(self, work: RecordingWork, est: CostEstimate) -> None:
        est.calls += len(work.rows)  # as if it asked a provider once per segment
'''

OVERRIDES: dict[str, Any] = {
    "agents": {"jury": [{"name": "voice", "backend": "voice_cues"}], "taxonomy": {"embedding_model": None}},
    "preprocess": {"face": {"enabled": False}},
    "run": {"task_retries": 0},
}


@pytest.fixture()
def toy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The toy phase's module, imported from a temporary folder and appended to ``PIPELINE``."""
    folder = tmp_path / "toy"
    folder.mkdir()
    (folder / "emoforge_toy_shortlist.py").write_text(textwrap.dedent(TOY_PHASE))
    monkeypatch.syspath_prepend(str(folder))
    module = importlib.import_module("emoforge_toy_shortlist")
    monkeypatch.setattr(pipeline, "PIPELINE", (*pipeline.PIPELINE, module.Shortlist))
    yield module
    sys.modules.pop("emoforge_toy_shortlist", None)


def test_a_new_phase_in_pipeline_runs_in_the_flow_and_the_dry_run(toy: Any, tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    wav = espeak("Well. I can not believe it, this is truly wonderful news for all of us.", tmp_path / "in" / "a.wav")
    toy.MAX_S = 60.0  # every segment of the clip
    summary = annotate_corpus(inputs=[str(wav)], out=str(tmp_path / "corpus"), overrides=OVERRIDES)
    rows = list(read_rows(str(tmp_path / "corpus")))
    assert rows and summary.rows_written == len(rows) and summary.needs_review == len(rows)
    for row in rows:
        assert row.status == Status.ok and row.consensus is not None and row.consensus.needs_review
        assert row.consensus.review_reasons[-1] == "shortlist: under 60.0 s"

    # A phase's exception is a failure row naming it, like any phase's (run_phase, not the toy, does it).
    toy.FAIL = True
    failed = annotate_corpus(inputs=[str(wav)], out=str(tmp_path / "failed"), overrides=OVERRIDES)
    rows = list(read_rows(str(tmp_path / "failed")))
    assert rows and failed.failures == {"shortlist:internal": len(rows)}
    assert all(r.failure is not None and "shortlist broke" in r.failure.message for r in rows)

    # The dry run walks the same list: the toy's share is one call per segment (the voice cues cost none).
    with_toy = estimate_cost([wav], load_config(None, OVERRIDES))
    assert with_toy.segments == len(rows) >= 1 and with_toy.calls == with_toy.segments
