"""Assemble shard rows from stage outputs, and failure rows from failures."""

from __future__ import annotations

from emoforge.storage.records import (
    Annotation,
    Consensus,
    Failure,
    Features,
    Recording,
    RecordingRef,
    Segment,
    SegmentRow,
    Status,
    Verdict,
    recording_failure_row_id,
)


def recording_ref(recording: Recording, segment_count: int | None = None, speaker: str | None = None) -> RecordingRef:
    return RecordingRef(
        id=recording.id,
        uri=recording.uri,
        sha256=recording.sha256,
        duration_s=recording.duration_s,
        source=recording.source,
        speaker=speaker or recording.speaker_hint,
        segment_count=segment_count,
    )


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


def segment_row(
    recording: Recording,
    segment: Segment,
    segment_count: int,
    run_id: str,
    config_hash: str,
    features: Features | None = None,
    annotations: list[Annotation] | None = None,
    verdicts: list[Verdict] | None = None,
    consensus: Consensus | None = None,
    failure: Failure | None = None,
) -> SegmentRow:
    """A segment row; failed when ``failure`` is given or no annotation succeeded."""
    annotations = annotations or []
    if failure is None and annotations and not any(a.status == Status.ok for a in annotations):
        first = next(a.failure for a in annotations if a.failure is not None)
        failure = Failure(stage="annotate", kind=first.kind, message=f"no annotator succeeded; first: {first.message}")
    return SegmentRow(
        row_id=segment.id,
        run_id=run_id,
        status=Status.failed if failure else Status.ok,
        failure=failure,
        recording=recording_ref(recording, segment_count=segment_count),
        segment=segment,
        features=features,
        annotations=annotations,
        verdicts=verdicts or [],
        consensus=consensus,
        config_hash=config_hash,
    )
