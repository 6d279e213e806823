"""What every record shares: the base model, the schema version, and provenance."""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import BaseModel, ConfigDict, Field

SCHEMA_VERSION = 2
"""Bump on any change to the row layout; add an upgrade in ``storage/schema.py``."""


class Record(BaseModel):
    """Base for all records: immutable-by-convention, no unknown fields."""

    # bytes (key-frame JPEGs) travel as base64 in JSON: caches, manifests and logs stay text.
    model_config = ConfigDict(
        extra="forbid", validate_assignment=True, ser_json_bytes="base64", val_json_bytes="base64"
    )


class Provenance(Record):
    """What produced a record: answers 'where did this row come from?'."""

    stage: str = Field(description="Stage name that produced the record.")
    model: str | None = Field(default=None, description="Model id or path, if a model was used.")
    prompt_version: str | None = Field(default=None, description="Prompt/instruction version used.")
    config_hash: str = Field(description="sha256 prefix of the resolved pipeline config.")
    emoforge_version: str = Field(description="emoforge package version.")
    created_at: datetime = Field(description="UTC time the record was produced.")


def utcnow() -> datetime:
    return datetime.now(UTC)


class RunContext(Record):
    """Handed to every stage so records can say what produced them."""

    run_id: str = Field(description="Run id.")
    config_hash: str = Field(description="Resolved-config hash.")
    emoforge_version: str = Field(description="Package version.")

    def provenance(self, stage: str, model: str | None = None, prompt_version: str | None = None) -> Provenance:
        return Provenance(
            stage=stage,
            model=model,
            prompt_version=prompt_version,
            config_hash=self.config_hash,
            emoforge_version=self.emoforge_version,
            created_at=utcnow(),
        )
