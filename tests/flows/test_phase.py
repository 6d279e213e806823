"""The one phase wrapper: guard, timing, typed failure naming the phase, media release, rows."""

from __future__ import annotations

import pytest

from emoforge.configs.run import RunConfig
from emoforge.flows.phase import Phase, run_phase
from emoforge.flows.pipeline import PHASES, PIPELINE, configured
from emoforge.flows.work import RecordingWork
from emoforge.preprocess.media import Media
from emoforge.storage.records import (
    ErrorKind,
    MediaInput,
    Recording,
    RunContext,
    Segment,
    Status,
)

REC = Recording(id="clip-0123456789", uri="clip.wav", sha256="0" * 64, size_bytes=1)
CTX = RunContext(run_id="run-1", config_hash="cfg", emoforge_version="0")


def _work(n: int = 2) -> RecordingWork:
    segs = [
        Segment(id=f"{REC.id}-{i:05d}", recording_id=REC.id, index=i, start_s=i, end_s=i + 1, kind="speech")
        for i in range(n)
    ]
    work = RecordingWork(item=MediaInput(uri=REC.uri), recording=REC, media=Media(recording=REC, sample_rate=16000))
    work.start_rows(segs, n + 1, CTX)
    return work


class Raising(Phase):
    name = "preprocess"

    def __init__(self, exc: Exception) -> None:
        self.exc = exc

    def fill(self, work: RecordingWork) -> None:
        raise self.exc


class Counting(Phase):
    name = "judge"

    def __init__(self) -> None:
        self.calls = 0

    def fill(self, work: RecordingWork) -> None:
        self.calls += 1


@pytest.mark.parametrize(
    ("exc", "kind"),
    [(TimeoutError("slow"), ErrorKind.timeout), (ConnectionError("reset"), ErrorKind.provider_error),
     (ValueError("bug"), ErrorKind.internal)],
)  # fmt: skip
def test_an_exception_in_any_phase_becomes_a_typed_failure_row_per_segment(exc: Exception, kind: ErrorKind) -> None:
    work = run_phase(Raising(exc), _work())
    assert work.failure is not None and work.failure.stage == "preprocess" and work.failure.kind == kind
    assert work.media is None  # released: no later stage runs on a failed recording
    assert "preprocess" in work.seconds
    rows = work.finished_rows(CTX)
    assert [r.row_id for r in rows] == [f"{REC.id}-00000", f"{REC.id}-00001"]
    assert all(r.status == Status.failed and r.failure == work.failure for r in rows)
    assert all(r.recording.segment_count == 3 and r.run_id == "run-1" and r.config_hash == "cfg" for r in rows)


def test_the_guard_skips_a_failed_or_empty_recording() -> None:
    failed = run_phase(Raising(ValueError("first")), _work())
    phase = Counting()
    run_phase(phase, failed)
    run_phase(phase, _work(0))
    assert phase.calls == 0
    ok = run_phase(phase, _work())
    assert phase.calls == 1 and ok.failure is None and ok.media is not None  # judge does not drop media


def test_a_crash_before_probing_escapes_to_the_flow() -> None:
    # No recording yet: no row could carry the failure, so the flow's crash path must see it.
    class CrashingProbe(Raising):
        name = "probe"

        def wants(self, work: RecordingWork) -> bool:
            return work.recording is None

    with pytest.raises(ValueError, match="bug"):
        run_phase(CrashingProbe(ValueError("bug")), RecordingWork(item=MediaInput(uri="x.wav")))


def test_one_name_per_phase_for_tasks_and_phases() -> None:
    assert PHASES == ("probe", "sampling", "preprocess", "annotate", "judge", "aggregate")
    assert [t.name for _, t in configured(RunConfig())] == list(PHASES)
    assert [p for p, _ in configured(RunConfig())] == list(PIPELINE)
