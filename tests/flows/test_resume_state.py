"""Resume decisions read per-agent failures from a real committed corpus, not row status alone."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from emoforge.configs.storage import StorageConfig
from emoforge.flows.pipeline import PHASES
from emoforge.flows.work import (
    RecordingWork,
    ResumeState,
    RetryPolicy,
    finished,
    recording_done,
    recording_failure_row,
    recording_state,
    resume_state,
    segment_needs_redo,
    segment_row,
)
from emoforge.storage.records import (
    LEGACY_STAGE_NAMES,
    Annotation,
    ErrorKind,
    Failure,
    MediaInput,
    Provenance,
    Recording,
    Segment,
    Status,
    Verdict,
    phase_of,
    utcnow,
)
from emoforge.storage.shards import CorpusWriter, done_rows, read_rows

REC = Recording(id="clip-0123456789", uri="clip.wav", sha256="0" * 64, size_bytes=1)
PROV = Provenance(stage="annotate", config_hash="c", emoforge_version="0", created_at=utcnow())


def _segment(i: int) -> Segment:
    return Segment(id=f"{REC.id}-{i:05d}", recording_id=REC.id, index=i, start_s=i, end_s=i + 1, kind="speech")


def _ann(seg: Segment, agent: str, kind: ErrorKind | None = None) -> Annotation:
    if kind is None:
        return Annotation(
            id=f"{seg.id}-{agent}", segment_id=seg.id, agent=agent, backend="x", labels=["happy"],
            primary_label="happy", provenance=PROV,
        )  # fmt: skip
    return Annotation(
        id=f"{seg.id}-{agent}", segment_id=seg.id, agent=agent, backend="x", status=Status.failed,
        failure=Failure(stage="annotate", kind=kind, message=str(kind)), provenance=PROV,
    )  # fmt: skip


def _verdict(ann: Annotation, kind: ErrorKind | None = None) -> Verdict:
    return Verdict(
        id=f"{ann.id}-judge", annotation_id=ann.id, judge="judge", s_rec=0, s_reason=0, s_cot=0, s_final=0,
        weights=[0.4, 0.3, 0.3], provenance=PROV,
        status=Status.failed if kind else Status.ok,
        failure=Failure(stage="judge", kind=kind, message=str(kind)) if kind else None,
    )  # fmt: skip


# segment index -> (annotations' failure kinds, judge failure kind of the first one, row failure)
CASES: dict[int, tuple[list[ErrorKind | None], ErrorKind | None, ErrorKind | None]] = {
    0: ([None, ErrorKind.rate_limited], None, None),  # a 429 behind an ok row
    1: ([None, ErrorKind.malformed_output], None, None),  # deterministic: only --retry all
    2: ([None, None], ErrorKind.timeout, None),  # the judge timed out
    3: ([None, None], None, None),  # complete
    4: ([ErrorKind.provider_error], None, ErrorKind.provider_error),  # a failed row (as before)
    5: ([None, ErrorKind.no_face], None, None),  # a cue agent's final failure
}
EXPECTED: dict[RetryPolicy, set[int]] = {"transient": {0, 2, 4}, "all": {0, 1, 2, 4, 5}, "none": set()}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> str:
    root = str(tmp_path_factory.mktemp("resume") / "corpus")
    writer = CorpusWriter(root, StorageConfig(), "run-1")
    rows = []
    for i, (kinds, judge_kind, row_kind) in CASES.items():
        seg = _segment(i)
        anns = [_ann(seg, f"a{k}", kind) for k, kind in enumerate(kinds)]
        verdicts = [_verdict(a, judge_kind if k == 0 else None) for k, a in enumerate(anns)]
        failure = Failure(stage="annotate", kind=row_kind, message="x") if row_kind else None
        row = segment_row(REC, seg, len(CASES), "run-1", "c")
        rows.append(finished(row.model_copy(update={"annotations": anns, "verdicts": verdicts}), failure))
    writer.write(rows)
    writer.close()
    return root


@pytest.mark.parametrize("retry", ["transient", "all", "none"])
def test_resume_redoes_the_segments_whose_agents_or_judge_failed_for_a_cause_that_may_pass(
    corpus: str, retry: RetryPolicy
) -> None:
    state = resume_state(corpus)
    redo = {i for i in CASES if segment_needs_redo(_segment(i).id, state, retry)}
    assert redo == EXPECTED[retry]
    assert recording_done(REC.id, state, retry) == (not EXPECTED[retry])


@pytest.mark.parametrize("retry", ["transient", "all", "none"])
def test_a_recordings_state_alone_gives_the_same_decisions(tmp_path: Path, corpus: str, retry: RetryPolicy) -> None:
    """A sampling task gets its recording's committed rows, never the corpus's."""
    corpus = str(shutil.copytree(corpus, tmp_path / "corpus"))
    other = Recording(id="other-9876543210", uri="other.wav", sha256="1" * 64, size_bytes=1)
    writer = CorpusWriter(corpus, StorageConfig(), "run-2")
    seg = Segment(id=f"{other.id}-00000", recording_id=other.id, index=0, start_s=0, end_s=1, kind="speech")
    writer.write([finished(segment_row(other, seg, 1, "run-2", "c"))])
    writer.close()
    state = resume_state(corpus)
    assert len(state.rows) == len(CASES) + 1
    mine = recording_state(state, RecordingWork(item=MediaInput(uri="clip.wav"), recording=REC))
    assert isinstance(mine, ResumeState)
    assert sorted(mine.rows) == sorted(_segment(i).id for i in CASES)
    assert mine.segment_counts == {REC.id: len(CASES)}
    assert sorted(mine.part_failures) == sorted(_segment(i).id for i in (0, 1, 2, 5))
    assert {i for i in CASES if segment_needs_redo(_segment(i).id, mine, retry)} == EXPECTED[retry]
    assert recording_done(REC.id, mine, retry) == (not EXPECTED[retry])
    assert recording_state(state, RecordingWork(item=MediaInput(uri="new.wav"))).rows == {}


def test_row_status_alone_would_have_skipped_them(corpus: str) -> None:
    """The defect: every row but one is ok, so a status-only resume had nothing to redo."""
    plain = done_rows(corpus)
    assert {i for i in CASES if segment_needs_redo(_segment(i).id, plain, "all")} == {4}


# Failure `stage` strings older runs wrote (the in-stage names and the task names of a
# crash past retries): each row's failure kind, and whether resume redoes it per policy.
OLD_ROWS: dict[str, tuple[str, ErrorKind, set[RetryPolicy]]] = {
    "old-0000000001": ("segment", ErrorKind.timeout, {"transient", "all"}),
    "old-0000000002": ("features", ErrorKind.internal, {"all"}),
    "old-0000000003": ("extract-features", ErrorKind.timeout, {"transient", "all"}),
    "old-0000000004": ("sample-segments", ErrorKind.internal, {"all"}),
}


def test_failure_stages_written_under_old_names_still_read_and_are_still_redone(tmp_path: Path) -> None:
    root = str(tmp_path / "old")
    writer = CorpusWriter(root, StorageConfig(), "run-0")
    for rec_id, (old, kind, _) in OLD_ROWS.items():
        rec = Recording(id=rec_id, uri=f"{rec_id}.wav", sha256="1" * 64, size_bytes=1)
        writer.write([recording_failure_row(rec, Failure(stage=old, kind=kind, message="x"), "run-0", "c")])
    writer.close()

    stored = {r.recording.id: r.failure.stage for r in read_rows(root) if r.failure is not None}
    assert stored == {rec_id: old for rec_id, (old, _, _) in OLD_ROWS.items()}  # read back as written
    assert {rec_id: phase_of(s) for rec_id, s in stored.items()} == {
        "old-0000000001": "sampling",
        "old-0000000002": "preprocess",
        "old-0000000003": "preprocess",
        "old-0000000004": "sampling",
    }
    # `inspect` counts them under today's phase names, not under two names per phase.
    from emoforge.storage.summary import summarize

    assert summarize(root)["failures"] == {
        "sampling:timeout": 1,
        "preprocess:internal": 1,
        "preprocess:timeout": 1,
        "sampling:internal": 1,
    }
    state = resume_state(root)
    for retry in ("transient", "all", "none"):
        redone = {rec_id for rec_id in OLD_ROWS if not recording_done(rec_id, state, retry)}
        assert redone == {rec_id for rec_id, (_, _, when) in OLD_ROWS.items() if retry in when}, retry


def test_every_old_stage_name_maps_to_a_phase() -> None:
    assert set(LEGACY_STAGE_NAMES.values()) <= set(PHASES)
    assert not set(LEGACY_STAGE_NAMES) & set(PHASES)  # a phase name never maps elsewhere
    assert [phase_of(p) for p in PHASES] == list(PHASES)
    assert phase_of("asr") == "asr"  # a tool's own stage name inside a phase is kept
