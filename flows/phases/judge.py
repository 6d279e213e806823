"""Phase ``judge``: S_rec, S_reason, S_cot and S_final for every annotation of every row."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from emoforge.agents.cache import ResponseCache
from emoforge.agents.costs import run_ledger
from emoforge.configs import PipelineConfig
from emoforge.flows.cost_estimate import CostEstimate
from emoforge.flows.leases import lease
from emoforge.flows.phase import Phase, features_of, segment_of
from emoforge.flows.phases.annotate import Annotate, clip_cutter
from emoforge.flows.runners import provider_slots
from emoforge.flows.work import RecordingWork
from emoforge.storage.records import Annotation, RunContext, Segment, Verdict

if TYPE_CHECKING:
    from emoforge.agents.judge import Judge as JudgeTool
    from emoforge.agents.jury import Jury


class Judge(Phase):
    """S_rec, S_reason, S_cot and S_final for every annotation of every row.

    An LLM judge spends from the run's budget and answers from the jury's response cache."""

    name = "judge"

    def fill(self, work: RecordingWork) -> None:
        from emoforge.agents.judge import Judge as JudgeTool

        config = self.config
        judge = lease(JudgeTool, config.judge, self.ctx, config.judge_agent())
        judge.use(run_ledger(self.ctx.run_id, config.agents.budget_usd), response_cache(config, self.env.cache_dir))
        if not config.judge.faithfulness_on:
            verdicts = [judge.score(segment_of(r), features_of(r), r.annotations) for r in work.rows]
        else:
            verdicts = self._with_faithfulness(judge, work)
        for row, v in zip(work.rows, verdicts, strict=True):
            row.verdicts = v

    def _with_faithfulness(self, judge: JudgeTool, work: RecordingWork) -> list[list[Verdict]]:
        """S_faith re-asks the jury's own annotators with masked evidence, on the same clips."""
        from emoforge.agents.jury import Jury

        config = self.config
        jury = lease(Jury, config.agents, self.ctx, self.env.cache_path)
        jury.use_ledger(run_ledger(self.ctx.run_id, config.agents.budget_usd))
        judge.use_annotators(jury.agents, include_paid=config.judge.faithfulness_paid)
        clip_of = clip_cutter(self, jury, work)
        with provider_slots(config.agents, config.run):
            return [
                judge.score(segment_of(r), features_of(r), r.annotations, clip=clip_of(segment_of(r)))
                if clip_of
                else judge.score(segment_of(r), features_of(r), r.annotations)
                for r in work.rows
            ]

    def estimate(self, work: RecordingWork, est: CostEstimate) -> None:
        """The faithfulness re-asks (paid agents on) at their upper bound, and the LLM judge."""
        from emoforge.agents.faithfulness import FaithfulnessProbe
        from emoforge.agents.judge import Judge as JudgeTool
        from emoforge.agents.jury import Jury

        config = self.config
        paid_faithfulness = config.judge.faithfulness_on and config.judge.faithfulness_paid
        llm = config.judge.backend == "llm"
        if not (paid_faithfulness or llm):
            return
        jury = lease(Jury, config.agents, self.ctx, self.env.cache_path)
        probe = FaithfulnessProbe(include_paid=True) if paid_faithfulness else None
        judge = lease(JudgeTool, config.judge, self.ctx, config.judge_agent()) if llm else None
        for row in work.rows:
            seg, features = segment_of(row), features_of(row)
            extras = [probe.upper_bound(agent, seg, features) for agent in jury.agents] if probe is not None else []
            for extra in extras:
                est.faithfulness_calls += extra.calls
                est.faithfulness_cost_usd += extra.cost_usd
                est.add(extra)
            if judge is not None:
                judged = judge.estimate(seg, features, _placeholders(seg, jury, config, self.ctx))
                est.judge_calls += judged.calls
                est.judge_cost_usd += judged.cost_usd
                est.add(judged)

    def done_with_media(self) -> bool:
        return True


def _placeholders(seg: Segment, jury: Jury, config: PipelineConfig, ctx: RunContext) -> list[Annotation]:
    """One answer per agent of the jury, as the LLM judge will see them (label, one step, no
    evidence): the judge's prompt size depends on the case, which a dry run does not have."""
    label = config.agents.taxonomy.labels[0]
    return [
        Annotation(
            id=f"{seg.id}-{agent.name}", segment_id=seg.id, agent=agent.name, backend=agent.backend,
            labels=[label], primary_label=label, confidence=0.5,
            rationale=[f"Step 1: The cues point to {label}."], provenance=ctx.provenance(Annotate.name, agent.name),
        )
        for agent in jury.agents
    ]  # fmt: skip


def response_cache(config: PipelineConfig, cache_dir: str | None) -> ResponseCache | None:
    """The response cache the jury uses (``agents.cache``), or None when it is off."""
    cache = config.agents.cache
    root = cache.path or cache_dir
    return ResponseCache(Path(root)) if cache.enabled and root else None
