"""Typed model output: what an annotator model must return, built from the taxonomy.

The label fields are a ``Literal`` over the configured taxonomy (or free strings when the
taxonomy is open), numbers carry bounds, and a refusal is a value (``refusal``), never a
label. Providers enforce the JSON schema natively (OpenAI json_schema, Gemini
response_schema, llama.cpp json_object + schema); ``parse_output`` validates again on our
side, so a provider that ignores the schema still cannot put an unknown label or an
out-of-range number into a record.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, create_model

MAX_STEPS = 6
MAX_STEP_CHARS = 240
MAX_CUES = 6

CueModality = Literal["face", "voice", "text", "visual", "context"]
StepText = Annotated[str, StringConstraints(min_length=1, max_length=MAX_STEP_CHARS)]


class CueOut(BaseModel):
    """One cited observation, as the model writes it."""

    model_config = ConfigDict(extra="forbid")

    modality: CueModality = Field(description="Modality the observation comes from.")
    cue: str = Field(max_length=160, description="What was observed, e.g. 'AU12 lip-corner pull'.")
    start_s: float | None = Field(description="Start time of the cited span (s), or null.")
    end_s: float | None = Field(description="End time of the cited span (s), or null.")


class EmotionOutputBase(BaseModel):
    """Fields shared by every taxonomy; ``primary_label``/``labels`` are added per taxonomy."""

    model_config = ConfigDict(extra="forbid")

    steps: list[StepText] = Field(
        min_length=1,
        max_length=MAX_STEPS,
        description="Reasoning steps citing evidence; the last one states the label.",
    )
    evidence: list[CueOut] = Field(max_length=MAX_CUES, description="Observations the steps rely on.")
    confidence: float = Field(ge=0, le=1, description="Probability that primary_label is right.")
    intensity: float = Field(ge=0, le=1, description="Emotion intensity, 0 (none) to 1 (extreme).")
    valence: float = Field(ge=-1, le=1, description="Valence, -1 (negative) to 1 (positive).")
    arousal: float = Field(ge=-1, le=1, description="Arousal, -1 (calm) to 1 (excited).")
    refusal: str | None = Field(
        description="Null, unless you cannot or will not annotate: then the reason, and nothing else."
    )

    if TYPE_CHECKING:  # added per taxonomy by output_model(); declared here for the type checker only
        primary_label: str
        labels: list[str]


@dataclass(frozen=True)
class Refusal:
    """A model declined to annotate; becomes a failed Annotation (kind refusal), never a label."""

    reason: str


@lru_cache(maxsize=32)
def output_model(labels: tuple[str, ...], open_vocabulary: bool = False) -> type[EmotionOutputBase]:
    """The output model for a taxonomy: a Literal label set, or free strings when open."""
    if not labels:
        raise ValueError("taxonomy needs at least one label")
    label_type: Any = str if open_vocabulary else Literal[labels]
    return create_model(
        "EmotionOutput",
        __base__=EmotionOutputBase,
        primary_label=(label_type, Field(description="The single most prominent emotion.")),
        labels=(
            list[label_type],
            Field(min_length=1, max_length=3, description="All emotions present, primary first."),
        ),
    )


def json_schema(model: type[BaseModel], strict: bool = False) -> dict[str, Any]:
    """JSON schema for providers; ``strict`` makes it OpenAI strict-mode compatible.

    Strict mode wants every property listed in ``required`` and
    ``additionalProperties: false`` on every object, which our models already satisfy
    (no defaults); we only inline the ``$defs`` so every provider's converter can read it.
    """
    schema = model.model_json_schema()
    defs = schema.pop("$defs", {})

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            if "$ref" in node:
                return inline(defs[node["$ref"].split("/")[-1]])
            out = {k: inline(v) for k, v in node.items() if k != "title"}
            if out.get("type") == "object":
                out["additionalProperties"] = False
                if strict:
                    out["required"] = list(out.get("properties", {}))
            return out
        if isinstance(node, list):
            return [inline(v) for v in node]
        return node

    result: dict[str, Any] = inline(schema)
    return result


def parse_output(text: str, model: type[EmotionOutputBase]) -> EmotionOutputBase | Refusal:
    """Validate a model's JSON text; raises ``OutputError`` with the message to re-ask with."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise OutputError(f"not valid JSON ({exc.msg} at char {exc.pos})") from exc
    if isinstance(data, dict) and isinstance(data.get("refusal"), str) and data["refusal"].strip():
        # A refusal may come without the other fields: it is an answer, not a format error.
        return Refusal(reason=data["refusal"].strip()[:500])
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(root)'}: {err['msg']}" for err in exc.errors()[:8]
        )
        raise OutputError(f"does not match the schema: {problems}") from exc


class OutputError(ValueError):
    """Model output that does not validate; the message is fed back on re-ask."""
