"""Verdict construction shared by the offline and the LLM judge."""

from __future__ import annotations

from emoforge.configs.quality import JudgeConfig
from emoforge.storage.records import Annotation, ErrorKind, Failure, RunContext, Status, Verdict

RULES_VERSION = "rules-v1"


def make_verdict(
    annotation: Annotation,
    config: JudgeConfig,
    ctx: RunContext,
    model: str,
    s_rec: float,
    s_reason: float,
    s_cot: float,
    notes: list[str],
    prompt_version: str = RULES_VERSION,
) -> Verdict:
    w = config.weights[config.task]
    clip = [min(1.0, max(0.0, s)) for s in (s_rec, s_reason, s_cot)]
    final = min(1.0, max(0.0, w.a * clip[0] + w.b * clip[1] + w.c * clip[2]))
    return Verdict(
        id=f"{annotation.id}-{config.name}",
        annotation_id=annotation.id,
        judge=config.name,
        s_rec=clip[0],
        s_reason=clip[1],
        s_cot=clip[2],
        s_final=final,
        weights=[w.a, w.b, w.c],
        task=config.task,
        notes=notes,
        provenance=ctx.provenance(stage="judge", model=model, prompt_version=prompt_version),
    )


def failed_verdict(
    annotation: Annotation,
    config: JudgeConfig,
    ctx: RunContext,
    model: str,
    failure: Failure | None = None,
    prompt_version: str = RULES_VERSION,
) -> Verdict:
    """Zeros, flagged: a failed annotation, or a judgement that could not be parsed or made."""
    w = config.weights[config.task]
    if failure is None:
        cause = annotation.failure
        failure = Failure(
            stage="judge",
            kind=ErrorKind.invalid_input,
            message=f"annotation {annotation.id} failed"
            + (f" ({cause.kind}: {cause.message[:200]})" if cause is not None else ""),
        )
    return Verdict(
        id=f"{annotation.id}-{config.name}",
        annotation_id=annotation.id,
        judge=config.name,
        status=Status.failed,
        failure=failure,
        s_rec=0.0,
        s_reason=0.0,
        s_cot=0.0,
        s_final=0.0,
        weights=[w.a, w.b, w.c],
        task=config.task,
        notes=[f"not judged: {failure.message}"],
        provenance=ctx.provenance(stage="judge", model=model, prompt_version=prompt_version),
    )
