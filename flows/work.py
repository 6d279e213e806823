"""What travels between the stage tasks of one recording, and the resume decision."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, TypeVar

from emoforge.preprocess.media import Media
from emoforge.storage.records import (
    Annotation,
    Consensus,
    Failure,
    Features,
    MediaInput,
    Recording,
    Segment,
    SegmentRow,
    Verdict,
    recording_failure_row_id,
)
from emoforge.storage.rows import recording_failure_row, segment_row
from emoforge.storage.shards import DoneRow

RetryPolicy = Literal["transient", "all", "none"]


@dataclass
class RecordingWork:
    """One recording's progress through the stages; each stage task fills one field."""

    item: MediaInput
    recording: Recording | None = None
    media: Media | None = None
    segments: list[Segment] = field(default_factory=list)
    segment_count: int = 0
    features: list[Features] = field(default_factory=list)
    annotations: list[list[Annotation]] = field(default_factory=list)
    verdicts: list[list[Verdict]] = field(default_factory=list)
    consensus: list[Consensus] = field(default_factory=list)
    failure: Failure | None = None
    skipped_segments: int = 0

    @property
    def active(self) -> bool:
        return self.failure is None and bool(self.segments)

    def release_media(self) -> None:
        """Drop decoded audio/frames once the last stage that needs them is done."""
        self.media = None

    def rows(self, run_id: str, config_hash: str) -> list[SegmentRow]:
        if self.recording is None:
            raise ValueError("rows() before probing")
        if self.failure is not None and not self.segments:
            return [recording_failure_row(self.recording, self.failure, run_id, config_hash)]
        rows = []
        for i, seg in enumerate(self.segments):
            rows.append(
                segment_row(
                    self.recording,
                    seg,
                    self.segment_count,
                    run_id,
                    config_hash,
                    features=_at(self.features, i),
                    annotations=_at(self.annotations, i) or [],
                    verdicts=_at(self.verdicts, i) or [],
                    consensus=_at(self.consensus, i),
                    failure=self.failure,
                )
            )
        return rows


T = TypeVar("T")


def _at(items: list[T], i: int) -> T | None:
    return items[i] if i < len(items) else None


def needs_redo(row: DoneRow | None, retry: RetryPolicy) -> bool:
    """Whether resume must (re)process a row, given what is already committed."""
    if row is None:
        return True
    if row.status.value != "failed":
        return False
    if retry == "all":
        return True
    if retry == "transient":
        return not row.final
    return False


def recording_done(recording_id: str, done: dict[str, DoneRow], retry: RetryPolicy, segment_count: int | None) -> bool:
    """True when every row of the recording is committed and final: it can be skipped undecoded."""
    fail = done.get(recording_failure_row_id(recording_id))
    if fail is not None and not needs_redo(fail, retry):
        return True
    if not segment_count:
        return False
    ids = [f"{recording_id}-{i:05d}" for i in range(segment_count)]
    return all(not needs_redo(done.get(rid), retry) for rid in ids)
