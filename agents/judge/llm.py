"""LLM judge: any annotator chat backend scores annotations against the extracted evidence.

The model sees the segment's features (AUs, prosody, transcript, available modalities),
the annotation (labels, steps, cited cues), the other annotators' labels and the reference
label when there is one, and returns a typed ``JudgeOutput``. We compute S_final from the
configured weights ourselves. Transient provider errors are retried with backoff
(``call_with_retry``); invalid output is re-asked at most ``max_reasks`` times; after that,
or on a refusal or a final provider error, the verdict is failed with zero scores and a
typed reason: a judgement that could not be made is never silently skipped.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from functools import partial
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from emoforge.agents.backends.retry import RetryPolicy, call_with_retry
from emoforge.agents.base import AnnotatorError, ChatBackend, Prompt
from emoforge.agents.judge.verdicts import failed_verdict, make_verdict
from emoforge.agents.schemas import json_schema
from emoforge.configs.agents import AgentConfig
from emoforge.configs.quality import JudgeConfig
from emoforge.storage.records import (
    Annotation,
    ErrorKind,
    Failure,
    Features,
    RunContext,
    Segment,
    Status,
    Verdict,
)

log = logging.getLogger(__name__)

JUDGE_SYSTEM = """You are a strict judge of emotion annotations. Score ONE annotation on three
independent axes, each a number from 0 to 1:
- s_rec: is the label right? Against the reference label when one is given (multi-label: set-level
  F1, so extra labels are penalised); otherwise against your own reading of the evidence and the
  other annotators.
- s_reason: is each reasoning step except the last consistent with the evidence? A step that
  contradicts the action units, the prosody or the transcript scores 0; give step_scores per step.
- s_cot: completeness: does the reasoning cover every available modality, cite cues that exist in
  the features at the cited times, and form Step 1..N ending in the label?
Do not make s_cot a mix of the other two. Reply with one JSON object matching the schema; give a
short note for every point lost."""


class JudgeOutput(BaseModel):
    """What the judge model must return."""

    model_config = ConfigDict(extra="forbid")

    s_rec: float = Field(ge=0, le=1, description="Label correctness.")
    s_reason: float = Field(ge=0, le=1, description="Logical soundness of the non-final steps.")
    s_cot: float = Field(ge=0, le=1, description="Multimodal completeness and grounding.")
    step_scores: list[float] = Field(description="Per non-final step, 0..1.")
    notes: list[str] = Field(max_length=8, description="Why points were lost.")


def render_case(
    segment: Segment,
    features: Features,
    annotation: Annotation,
    peers: list[Annotation],
    reference: Sequence[str],
) -> str:
    """The user message: evidence, then the annotation under review, as compact JSON."""
    face = features.face
    prosody = features.prosody
    case: dict[str, Any] = {
        "segment": {"id": segment.id, "start_s": segment.start_s, "end_s": segment.end_s},
        "available_modalities": features.modalities,
        "evidence": {
            "face_summary": features.evidence.face,
            "voice_summary": features.evidence.voice,
            "text_summary": features.evidence.text,
            "au_peak": face.au_peak if face else {},
            "au_mean": face.au_mean if face else {},
            "prosody": prosody.model_dump(exclude={"frames"}, exclude_none=True) if prosody else {},
            "transcript": features.transcript.text if features.transcript else None,
        },
        "annotation": {
            "labels": annotation.labels,
            "primary_label": annotation.primary_label,
            "steps": annotation.rationale,
            "cues": [c.model_dump(exclude_none=True) for c in annotation.evidence],
        },
        "other_annotators": [{"agent": p.agent, "labels": p.labels} for p in peers],
        "reference_labels": list(reference) or None,
    }
    return json.dumps(case, ensure_ascii=False, default=str)


class LLMJudge:
    """Judge through a chat backend (OpenAI, OpenAI-compatible, Gemini, transformers)."""

    def __init__(
        self,
        config: JudgeConfig,
        ctx: RunContext,
        agent: AgentConfig,
        backend: ChatBackend | None = None,
        retry_policy: RetryPolicy | None = None,
    ) -> None:
        self.config = config
        self.ctx = ctx
        self.agent = agent
        self._backend = backend
        self.retry_policy = retry_policy or RetryPolicy(max_retries=agent.max_retries)
        self.schema = json_schema(JudgeOutput)
        self.model = agent.model or agent.name

    @property
    def backend(self) -> ChatBackend:
        if self._backend is None:  # built lazily: the SDK import and client cost nothing until used
            from emoforge.agents.jury import make_backend

            self._backend = make_backend(self.agent)
        return self._backend

    def score(
        self,
        segment: Segment,
        features: Features,
        annotations: list[Annotation],
        reference: str | Sequence[str] | None = None,
    ) -> list[Verdict]:
        ref = [reference] if isinstance(reference, str) else list(reference or ())
        valid = [a for a in annotations if a.status == Status.ok]
        out = []
        for annotation in annotations:
            if annotation.status != Status.ok:
                out.append(self._failed(annotation))
                continue
            peers = [a for a in valid if a.id != annotation.id]
            prompt = Prompt(
                system=JUDGE_SYSTEM,
                user=render_case(segment, features, annotation, peers, ref),
                schema=self.schema,
                schema_name="judge_verdict",
            )
            out.append(self._judge(annotation, prompt))
        return out

    def _failed(self, annotation: Annotation, failure: Failure | None = None) -> Verdict:
        return failed_verdict(
            annotation, self.config, self.ctx, self.model, failure, prompt_version=self.config.prompt_version
        )

    def _judge(self, annotation: Annotation, prompt: Prompt) -> Verdict:
        for attempt in range(self.agent.max_reasks + 1):
            try:
                reply = call_with_retry(
                    partial(self.backend.complete, prompt, self.agent.max_output_tokens, self.agent.temperature),
                    self.retry_policy,
                )
            except AnnotatorError as exc:
                return self._failed(annotation, exc.failure(stage="judge"))
            if reply.refusal:
                return self._failed(
                    annotation, Failure(stage="judge", kind=ErrorKind.refusal, message=reply.refusal[:500])
                )
            try:
                parsed = JudgeOutput.model_validate_json(reply.text)
            except ValidationError as exc:
                error = "; ".join(
                    f"{'.'.join(str(p) for p in e['loc']) or '(root)'}: {e['msg']}" for e in exc.errors()[:6]
                )
                log.info("judge output invalid for %s (attempt %d): %s", annotation.id, attempt + 1, error)
                prompt = prompt.with_reask(reply.text, error)
                continue
            notes = [f"llm: {n}" for n in parsed.notes]
            return make_verdict(
                annotation,
                self.config,
                self.ctx,
                self.model,
                parsed.s_rec,
                parsed.s_reason,
                parsed.s_cot,
                notes,
                prompt_version=self.config.prompt_version,
            )
        message = f"judge output still invalid after {self.agent.max_reasks} re-asks"
        return self._failed(annotation, Failure(stage="judge", kind=ErrorKind.malformed_output, message=message))
