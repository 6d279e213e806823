"""Typed, versioned records that cross every module boundary.

A Recording says where media lives; a Segment is a time span of one recording; Features,
Annotations, Verdicts and a Consensus hang off a segment; a SegmentRow is what a shard
stores, one per segment. IDs derive from parents (``{recording_id}-{index:05d}``,
``{segment_id}-{agent}``) so a rerun overwrites rows instead of duplicating them.

One module per concept: ``base`` (Record, provenance, the schema version), ``failure``
(status, error kinds, phases), ``media`` (recordings, inputs, segments), ``features``,
``annotations`` (votes, verdicts, the jury's decision, human labels), ``consensus`` and
``rows`` (the shard row). This package re-exports them all, so code imports records from
``emoforge.storage.records`` without knowing which module holds one.

Every field carries a description: ``storage/SCHEMA.md`` and the Arrow schema are
generated from these classes (``python -m emoforge.storage.schema --write``), and a test
fails when the committed snapshot drifts from the code without a schema version bump.
"""

from emoforge.storage.records.annotations import (
    Annotation,
    Cue,
    DomainCheck,
    HumanLabel,
    JuryDecision,
    Modality,
    Usage,
    Verdict,
)
from emoforge.storage.records.base import SCHEMA_VERSION, Provenance, Record, RunContext, utcnow
from emoforge.storage.records.consensus import Consensus, LabelQuality
from emoforge.storage.records.failure import (
    LEGACY_STAGE_NAMES,
    TRANSIENT_ERRORS,
    ErrorKind,
    Failure,
    Status,
    phase_of,
)
from emoforge.storage.records.features import (
    AUFrame,
    Evidence,
    FaceObservation,
    Features,
    KeyFrame,
    Prosody,
    ProsodyFrame,
    Span,
    Transcript,
    Word,
)
from emoforge.storage.records.media import (
    FileHash,
    Instruction,
    MediaInput,
    Recording,
    Segment,
    StreamInfo,
    Terms,
    file_sha256,
    recording_id_for,
    segment_id_for,
)
from emoforge.storage.records.rows import RecordingRef, SegmentRow, recording_failure_row_id

__all__ = [
    "LEGACY_STAGE_NAMES",
    "SCHEMA_VERSION",
    "TRANSIENT_ERRORS",
    "AUFrame",
    "Annotation",
    "Consensus",
    "Cue",
    "DomainCheck",
    "ErrorKind",
    "Evidence",
    "FaceObservation",
    "Failure",
    "Features",
    "FileHash",
    "HumanLabel",
    "Instruction",
    "JuryDecision",
    "KeyFrame",
    "LabelQuality",
    "MediaInput",
    "Modality",
    "Prosody",
    "ProsodyFrame",
    "Provenance",
    "Record",
    "Recording",
    "RecordingRef",
    "RunContext",
    "Segment",
    "SegmentRow",
    "Span",
    "Status",
    "StreamInfo",
    "Terms",
    "Transcript",
    "Usage",
    "Verdict",
    "Word",
    "file_sha256",
    "phase_of",
    "recording_failure_row_id",
    "recording_id_for",
    "segment_id_for",
    "utcnow",
]
