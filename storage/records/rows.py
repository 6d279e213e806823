"""What a shard stores: one row per segment, with everything produced for it, or a failure."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field, model_validator

from emoforge.storage.records.annotations import Annotation, HumanLabel, JuryDecision, Verdict
from emoforge.storage.records.base import SCHEMA_VERSION, Record, utcnow
from emoforge.storage.records.consensus import Consensus
from emoforge.storage.records.failure import Failure, Status
from emoforge.storage.records.features import Features
from emoforge.storage.records.media import Segment, Terms


class RecordingRef(Record):
    id: str = Field(description="Recording id.")
    uri: str = Field(description="Media path or URL.")
    sha256: str = Field(description="Media content hash.")
    duration_s: float | None = Field(default=None, description="Recording duration.")
    source: str | None = Field(default=None, description="Source/collection name.")
    speaker: str | None = Field(default=None, description="Speaker id from the input manifest.")
    segment_count: int | None = Field(
        default=None, description="Segments the recording was cut into (lets resume skip it whole)."
    )
    terms: Terms = Field(
        default_factory=Terms,
        description="Licence, consent, attribution and source of the media (schema v2; v1 rows read as unknown).",
    )


class SegmentRow(Record):
    """One shard row: a segment with everything produced for it, or a failure."""

    schema_version: int = Field(default=SCHEMA_VERSION, description="Row layout version.")
    row_id: str = Field(description="Segment id, or `{recording_id}-recording` for a recording failure.")
    run_id: str = Field(description="Run that wrote the row.")
    status: Status = Field(description="ok, or failed with a failure.")
    failure: Failure | None = Field(default=None, description="First fatal failure, if any.")
    recording: RecordingRef = Field(description="Parent recording.")
    segment: Segment | None = Field(default=None, description="Null only for recording failures.")
    features: Features | None = Field(default=None, description="Extracted features.")
    annotations: list[Annotation] = Field(default_factory=list, description="One per agent.")
    verdicts: list[Verdict] = Field(default_factory=list, description="One per annotation judged.")
    consensus: Consensus | None = Field(default=None, description="Aggregated label.")
    # Added within schema v1 (nullable): shards written before it load with None.
    jury: JuryDecision | None = Field(
        default=None, description="What the jury did and spent (agents.policy); null in shards written before it."
    )
    human: list[HumanLabel] = Field(default_factory=list, description="Human verifications.")
    config_hash: str = Field(description="Resolved-config hash of the run that wrote the row.")
    written_at: datetime = Field(default_factory=utcnow, description="UTC write time.")

    @model_validator(mode="after")
    def _failure_consistent(self) -> SegmentRow:
        if self.status == Status.failed and self.failure is None:
            raise ValueError(f"row {self.row_id}: failed rows need a failure")
        if self.status == Status.ok and self.segment is None:
            raise ValueError(f"row {self.row_id}: ok rows need a segment")
        return self


def recording_failure_row_id(recording_id: str) -> str:
    return f"{recording_id}-recording"
