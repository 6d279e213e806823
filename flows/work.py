"""What travels between the phase tasks of one recording, and the resume decision.

A segment row is ok when any agent answered, so its status alone cannot say whether resume
has work left: an LLM agent that got a 429 while the cue agents answered leaves an ok row
with a failed annotation. ``resume_state`` therefore also collects, per committed row, the
failure kinds of its annotations and verdicts, and ``needs_redo`` redoes a row when one of
them may pass (a transient kind; any kind with ``--retry all``). The redone segment goes
through the jury again: the response cache answers the agents that had answered (no
request), the failed ones are asked again, and the judge and the aggregation run over the
new set of annotations. The new row replaces the old one (newest shard wins).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import pyarrow as pa
import pyarrow.compute as pc

from emoforge.preprocess.media import Media
from emoforge.storage.records import (
    TRANSIENT_ERRORS,
    ErrorKind,
    Failure,
    MediaInput,
    Recording,
    RecordingRef,
    RunContext,
    Segment,
    SegmentRow,
    Status,
    recording_failure_row_id,
    utcnow,
)
from emoforge.storage.shards import DONE_COLUMNS, CorpusState, DoneRow, corpus_state, read_table

RetryPolicy = Literal["transient", "all", "none"]


@dataclass
class RecordingWork:
    """One recording's progress through the phases.

    Sampling builds one ``SegmentRow`` per segment to (re)do; each later phase fills its
    field of every row (features, annotations, verdicts, consensus), so a segment and what
    was produced for it never travel in separate lists. ``finished_rows`` turns the work
    into the rows a shard gets, failure rows included.
    """

    item: MediaInput
    recording: Recording | None = None
    media: Media | None = None
    rows: list[SegmentRow] = field(default_factory=list)
    failure: Failure | None = None
    skipped_segments: int = 0
    pending_segments: int = 0  # held back uncommitted: a batch-mode vote is still at the provider
    seconds: dict[str, float] = field(default_factory=dict)  # wall time per phase, for logs

    @property
    def active(self) -> bool:
        return self.failure is None and bool(self.rows)

    def release_media(self) -> None:
        """Drop decoded audio/frames once the last phase that needs them is done."""
        self.media = None

    def start_rows(self, segments: list[Segment], segment_count: int, ctx: RunContext) -> None:
        """One ok row per segment to (re)do; ``segment_count`` is the whole recording's."""
        if self.recording is None:
            raise ValueError("start_rows() before probing")
        self.rows = [segment_row(self.recording, s, segment_count, ctx.run_id, ctx.config_hash) for s in segments]

    def finished_rows(self, ctx: RunContext) -> list[SegmentRow]:
        """The rows to commit: the filled segment rows (failed ones say why), one recording
        failure row when the recording failed before it had segments, none when resume had
        nothing left to do."""
        if self.recording is None:
            return []
        if not self.rows:
            if self.failure is None:
                return []  # everything already committed
            return [recording_failure_row(self.recording, self.failure, ctx.run_id, ctx.config_hash)]
        return [finished(r, self.failure) for r in self.rows]


def recording_ref(recording: Recording, segment_count: int | None = None) -> RecordingRef:
    return RecordingRef(
        id=recording.id,
        uri=recording.uri,
        sha256=recording.sha256,
        duration_s=recording.duration_s,
        source=recording.source,
        speaker=recording.speaker_hint,
        segment_count=segment_count,
        terms=recording.terms,
    )


def segment_row(
    recording: Recording, segment: Segment, segment_count: int, run_id: str, config_hash: str
) -> SegmentRow:
    """An ok row with nothing filled yet: the phases fill it, ``finished`` closes it."""
    return SegmentRow(
        row_id=segment.id,
        run_id=run_id,
        status=Status.ok,
        recording=recording_ref(recording, segment_count=segment_count),
        segment=segment,
        config_hash=config_hash,
    )


def finished(row: SegmentRow, failure: Failure | None = None) -> SegmentRow:
    """The row as committed: failed when ``failure`` is given or no annotation succeeded,
    stamped with the time it was closed (rows are built at sampling, written at the end)."""
    anns = row.annotations
    if failure is None and anns and not any(a.status == Status.ok for a in anns):
        first = next(a.failure for a in anns if a.failure is not None)
        failure = Failure(stage="annotate", kind=first.kind, message=f"no annotator succeeded; first: {first.message}")
    status = Status.failed if failure else Status.ok
    return row.model_copy(update={"status": status, "failure": failure, "written_at": utcnow()})


def recording_failure_row(recording: Recording, failure: Failure, run_id: str, config_hash: str) -> SegmentRow:
    """A recording that failed before segmentation: one row says why."""
    return SegmentRow(
        row_id=recording_failure_row_id(recording.id),
        run_id=run_id,
        status=Status.failed,
        failure=failure,
        recording=recording_ref(recording, segment_count=0),
        config_hash=config_hash,
    )


@dataclass
class ResumeState(CorpusState):
    """What is committed, plus the failure kinds of each ok row's annotations and verdicts."""

    part_failures: dict[str, frozenset[ErrorKind]] = field(default_factory=dict)

    def of_recording(self, recording_id: str) -> ResumeState:
        """The state of one recording (what its sampling task gets), part failures included."""
        base = super().of_recording(recording_id)
        parts = {rid: self.part_failures[rid] for rid in base.rows if rid in self.part_failures}
        return ResumeState(base.rows, base.segment_counts, base.by_recording, parts)


# Two small fields per annotation and verdict: a million rows' rationales and cues stay on disk.
_PART_COLUMNS = [f"{c}.list.element.{f}" for c in ("annotations", "verdicts") for f in ("status", "failure.kind")]


def resume_state(root: str) -> ResumeState:
    """Committed rows of the corpus at ``root`` with the per-agent failures resume may redo.

    One read of the columns resume needs (``DONE_COLUMNS`` and two fields of each annotation
    and verdict): planning against a million committed rows reads tens of MB, not the corpus."""
    table = read_table(root, columns=[*DONE_COLUMNS, *_PART_COLUMNS])
    base = corpus_state(table)
    kinds: dict[int, set[str]] = {}
    for name in ("annotations", "verdicts"):
        _collect_failed_kinds(table.column(name), kinds)
    ids, status = table.column("row_id"), table.column("status")
    parts = {
        ids[i].as_py(): frozenset(ErrorKind(k) for k in found)
        for i, found in kinds.items()
        if status[i].as_py() == Status.ok.value  # a failed row is redone (or not) on its own failure kind
    }
    return ResumeState(base.rows, base.segment_counts, base.by_recording, parts)


def recording_state(state: CorpusState, work: RecordingWork) -> CorpusState:
    """What the sampling task of ``work``'s probed recording needs: that recording's
    committed state alone, so a task's arguments do not grow with the corpus (on Dask they
    are pickled to a worker per recording)."""
    return state.of_recording(work.recording.id if work.recording is not None else "")


def _collect_failed_kinds(column: pa.ChunkedArray, into: dict[int, set[str]]) -> None:
    """Add, per row index, the failure kinds of the failed items of a list<struct> column.

    Only the failed items become Python objects: a corpus of a million rows, nearly all of
    them fine, would not fit in memory as a set (or a dict) per row.
    """
    lists = column.combine_chunks()
    if len(lists) == 0:
        return
    items = lists.flatten()
    failed = pc.fill_null(pc.equal(pc.struct_field(items, "status"), Status.failed.value), False)
    parents = pc.filter(pc.list_parent_indices(lists), failed).to_pylist()
    kind = pc.filter(pc.struct_field(pc.struct_field(items, "failure"), "kind"), failed).to_pylist()
    for parent, k in zip(parents, kind, strict=True):
        if k:
            into.setdefault(parent, set()).add(k)


def needs_redo(row: DoneRow | None, retry: RetryPolicy, part_failures: frozenset[ErrorKind] = frozenset()) -> bool:
    """Whether resume must (re)process a row, given what is already committed.

    Args:
        row: the committed outcome of the row, None when it was never committed.
        part_failures: failure kinds of the row's annotations and verdicts (ok rows only).
    """
    if row is None:
        return True
    if row.status.value != "failed":
        if retry == "all":
            return bool(part_failures)
        if retry == "transient":
            return not part_failures.isdisjoint(TRANSIENT_ERRORS)
        return False
    if retry == "all":
        return True
    if retry == "transient":
        return not row.final
    return False


def segment_needs_redo(segment_id: str, state: CorpusState, retry: RetryPolicy) -> bool:
    parts = state.part_failures.get(segment_id, frozenset()) if isinstance(state, ResumeState) else frozenset()
    return needs_redo(state.rows.get(segment_id), retry, parts)


def recording_done(recording_id: str, state: CorpusState, retry: RetryPolicy) -> bool:
    """True when every row of the recording is committed and final: it can be skipped undecoded."""
    fail = state.rows.get(recording_failure_row_id(recording_id))
    if fail is not None and not needs_redo(fail, retry):
        return True
    segment_count = state.segment_counts.get(recording_id)
    if not segment_count:
        return False
    ids = [f"{recording_id}-{i:05d}" for i in range(segment_count)]
    return all(not segment_needs_redo(rid, state, retry) for rid in ids)
