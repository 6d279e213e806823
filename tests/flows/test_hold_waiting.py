"""``hold_waiting`` (flows/incremental.py): an input whose recording only waits on running provider
batches leaves the plan; one with other work left (a committed segment ``--retry`` redoes, a
segment neither committed nor pending) stays, and so does one no batch waits for."""

from __future__ import annotations

from pathlib import Path

import pytest

from emoforge.flows.incremental import HashIndex, IncrementalPlan, hold_waiting
from emoforge.flows.work import ResumeState, RetryPolicy
from emoforge.storage.records import ErrorKind, MediaInput, Status, file_sha256, recording_id_for
from emoforge.storage.shards import DoneRow


def _plan(tmp_path: Path) -> tuple[IncrementalPlan, str, str]:
    """Two local inputs (a and b) and the recording id of a."""
    files = []
    for name in ("a", "b"):
        path = tmp_path / f"{name}.wav"
        path.write_bytes(name.encode() * 100)
        files.append(path)
    rec = recording_id_for(files[0], file_sha256(files[0]))
    return IncrementalPlan(todo=[MediaInput(uri=str(f)) for f in files]), rec, str(files[1])


def _state(rec: str, third: DoneRow | None) -> ResumeState:
    """Recording ``rec`` has 3 segments: 0 and 1 wait on a batch, 2 is committed as ``third``."""
    rows = {} if third is None else {f"{rec}-00002": third}
    return ResumeState(rows=rows, segment_counts={rec: 3} if third else {})


@pytest.mark.parametrize(
    ("third", "retry", "held"),
    [
        (DoneRow(Status.ok, None), "transient", True),
        (None, "transient", True),  # nothing committed: all its segments wait
        (DoneRow(Status.failed, ErrorKind.rate_limited), "transient", False),  # resume redoes it now
        (DoneRow(Status.failed, ErrorKind.rate_limited), "none", True),
        (DoneRow(Status.failed, ErrorKind.invalid_input), "transient", True),
        (DoneRow(Status.failed, ErrorKind.invalid_input), "all", False),  # --retry all redoes it now
    ],
)
def test_waiting_recording_is_held_unless_it_has_other_work(
    tmp_path: Path, third: DoneRow | None, retry: RetryPolicy, held: bool
) -> None:
    plan, rec, other = _plan(tmp_path)
    waiting = {rec: {f"{rec}-00000", f"{rec}-00001"}}
    hold_waiting(plan, waiting, _state(rec, third), retry, HashIndex(str(tmp_path / "corpus")))
    if held:
        assert [i.uri for i in plan.todo] == [other]
        assert plan.waiting_recordings == [rec] and plan.waiting_segments == 2
    else:
        assert len(plan.todo) == 2 and plan.waiting_recordings == [] and plan.waiting_segments == 0
        assert plan.todo[0].known_hash is not None  # probing reuses the hash taken here


def test_a_segment_neither_committed_nor_pending_keeps_the_recording(tmp_path: Path) -> None:
    plan, rec, _ = _plan(tmp_path)
    state = ResumeState(rows={f"{rec}-00002": DoneRow(Status.ok, None)}, segment_counts={rec: 4})  # 3 lost
    hold_waiting(plan, {rec: {f"{rec}-00000", f"{rec}-00001"}}, state, "transient", HashIndex(str(tmp_path)))
    assert len(plan.todo) == 2 and plan.waiting_recordings == []


def test_nothing_waiting_or_unreadable_inputs_stay(tmp_path: Path) -> None:
    plan, rec, _ = _plan(tmp_path)
    plan.todo.append(MediaInput(uri=str(tmp_path / "missing.wav")))
    plan.todo.append(MediaInput(uri="https://example.org/remote.wav"))
    hold_waiting(plan, {"another-rec": {"another-rec-00000"}}, _state(rec, None), "transient", HashIndex(str(tmp_path)))
    assert len(plan.todo) == 4 and plan.waiting_recordings == []
