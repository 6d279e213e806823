"""How a record says it failed: the status, the typed reasons, and the phases that fail.

Stored failures name their phase, so the phase names (and the older names shards still
hold) live here, beside the ``Failure`` that carries them.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field, field_validator

from emoforge.storage.records.base import Record
from emoforge.storage.secrets import scrub

# Failure `stage` strings that older runs committed -> the phase's one name today (`PIPELINE`
# in flows/pipeline.py declares the phases): the in-stage names ("segment", "features") and
# the task names a crash past retries wrote.
LEGACY_STAGE_NAMES: dict[str, str] = {
    "segment": "sampling",
    "features": "preprocess",
    "probe-media": "probe",
    "sample-segments": "sampling",
    "extract-features": "preprocess",
    "annotate-segments": "annotate",
    "judge-annotations": "judge",
    "aggregate-votes": "aggregate",
}


def phase_of(stage_name: str) -> str:
    """The phase a stored failure ``stage`` string names (old names mapped, others as they are:
    tools inside a phase, such as ``asr`` or ``decode``, keep their own names)."""
    return LEGACY_STAGE_NAMES.get(stage_name, stage_name)


class Status(StrEnum):
    ok = "ok"
    failed = "failed"
    skipped = "skipped"


class ErrorKind(StrEnum):
    """Typed failure reasons. ``TRANSIENT`` ones are retried on resume; the rest are final."""

    corrupt_media = "corrupt_media"
    unsupported_media = "unsupported_media"
    no_audio = "no_audio"
    no_video = "no_video"
    no_speech = "no_speech"
    no_face = "no_face"
    model_unavailable = "model_unavailable"
    malformed_output = "malformed_output"
    refusal = "refusal"
    timeout = "timeout"
    rate_limited = "rate_limited"
    provider_error = "provider_error"
    budget_exceeded = "budget_exceeded"
    invalid_input = "invalid_input"
    internal = "internal"
    # Added within schema v1: the column stores the enum as a string, so older readers and
    # shards are unaffected; older emoforge versions just cannot parse these two values.
    partial_media = "partial_media"
    outside_input_root = "outside_input_root"


TRANSIENT_ERRORS = frozenset(
    {ErrorKind.timeout, ErrorKind.rate_limited, ErrorKind.provider_error, ErrorKind.budget_exceeded}
)


class Failure(Record):
    """Why a stage did not produce its output. Never stored in label fields."""

    stage: str = Field(description="Pipeline stage that failed (probe, segment, asr, annotate, ...).")
    kind: ErrorKind = Field(description="Typed reason; transient kinds are retried on resume.")
    message: str = Field(description="Human-readable detail; never contains secrets.")

    @field_validator("message")
    @classmethod
    def _no_secrets(cls, value: str) -> str:
        # Every stored failure passes here, whichever stage or provider text it came from.
        return scrub(value)

    @property
    def transient(self) -> bool:
        return self.kind in TRANSIENT_ERRORS
