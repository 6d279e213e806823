"""Annotators that say what a script tells them, at a known price: the adaptive jury's policy
tests and the simulated corpus of ``benchmarks/bench_jury.py`` run the real ``AdaptiveJury``,
judge and consensus builder over them. A paid one reserves its price from the jury's ledger
before answering (past the budget it fails with ``budget_exceeded``, as an LLM agent does)
and counts its calls."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from emoforge.agents.base import SegmentClip
from emoforge.agents.costs import BudgetExceeded, CostLedger
from emoforge.agents.jury import Jury
from emoforge.configs.agents import AgentConfig, AgentsConfig, TaxonomyConfig
from emoforge.storage.records import (
    Annotation,
    Cue,
    ErrorKind,
    Failure,
    Features,
    RunContext,
    Segment,
    Status,
    Usage,
)

# One vote: (label, stated confidence), or None for "no answer" (a provider error).
Vote = tuple[str, float] | None
Script = Callable[[Segment], Vote]


class ScriptedAnnotator:
    """An Annotator whose answer per segment comes from ``script``; ``price_usd`` per call."""

    def __init__(
        self,
        name: str,
        script: Script | Mapping[str, Vote],
        price_usd: float,
        ctx: RunContext,
        backend: str = "openai",
        rationale: Callable[[Segment, str], tuple[list[str], list[Cue]]] | None = None,
    ) -> None:
        self.name, self.backend, self.price_usd, self.ctx = name, backend, price_usd, ctx
        self.script: Script = script if callable(script) else (lambda seg, table=script: table[seg.id])
        self.rationale = rationale
        self.ledger: CostLedger | None = None
        self.calls: list[str] = []  # segment ids, in the order asked

    def estimate(self, segment: Segment, features: Features, clip: SegmentClip | None = None) -> Usage:
        if self.price_usd <= 0:
            return Usage()
        return Usage(calls=1, attempts=1, cost_usd=self.price_usd, input_tokens=1000, output_tokens=100)

    def annotate(self, segment: Segment, features: Features, clip: SegmentClip | None = None) -> Annotation:
        base = {
            "id": f"{segment.id}-{self.name}",
            "segment_id": segment.id,
            "agent": self.name,
            "backend": self.backend,
            "provenance": self.ctx.provenance("annotate", self.name),
        }
        usage = Usage()
        if self.price_usd > 0:
            try:
                if self.ledger is not None:
                    self.ledger.reserve(self.price_usd)
            except BudgetExceeded as exc:
                failure = Failure(stage="annotate", kind=ErrorKind.budget_exceeded, message=str(exc))
                return Annotation(**base, status=Status.failed, failure=failure, usage=usage)
            if self.ledger is not None:
                self.ledger.settle(self.price_usd, self.price_usd)
            self.calls.append(segment.id)
            usage = Usage(calls=1, attempts=1, cost_usd=self.price_usd, input_tokens=1000, output_tokens=100)
        vote = self.script(segment)
        if vote is None:
            failure = Failure(stage="annotate", kind=ErrorKind.provider_error, message="scripted outage")
            return Annotation(**base, status=Status.failed, failure=failure, usage=usage)
        label, confidence = vote
        steps, cues = (
            self.rationale(segment, label) if self.rationale else ([f"Step 1: Therefore the label is {label}."], [])
        )
        return Annotation(
            **base,
            labels=[label],
            primary_label=label,
            confidence=confidence,
            rationale=steps,
            evidence=cues,
            usage=usage,
        )

    def close(self) -> None:
        return None


def scripted_jury(
    agents: Sequence[ScriptedAnnotator], ctx: RunContext, labels: Sequence[str], budget_usd: float | None = None
) -> Jury:
    """A real ``Jury`` (pool, ledger) whose members are ``agents``."""
    taxonomy = TaxonomyConfig(labels=list(labels), embedding_model=None)
    config = AgentsConfig(
        jury=[AgentConfig(name="placeholder", backend="face_cues")], taxonomy=taxonomy, budget_usd=budget_usd
    )
    jury = Jury(config, ctx)
    jury.agents = list(agents)
    jury.use_ledger(CostLedger(budget_usd))
    for agent in agents:
        agent.ledger = jury.ledger
    return jury
