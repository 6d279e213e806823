"""Base class for config sections: unknown keys are errors, so a YAML typo fails at load."""

from pydantic import BaseModel, ConfigDict


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
