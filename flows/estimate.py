"""``--dry-run``: count segments and estimate provider calls, tokens and cost, writing nothing.

Only the cheap front end runs (probe, decode, segment); features are not extracted and no
clips are cut, so prompt sizes are estimated from empty features plus the segment's
instruction, and an agent's audio/video from the segment's length at the providers' token
rates (``agents/costs.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

import emoforge
from emoforge.configs import PipelineConfig, config_hash
from emoforge.preprocess.media import MediaDecoder, MediaError, MediaProber
from emoforge.storage.inputs import discover_inputs
from emoforge.storage.records import Annotation, Features, RunContext, Segment, Status, Usage


class CostEstimate(BaseModel):
    recordings: int = 0
    unreadable: int = 0
    segments: int = 0
    media_seconds: float = 0.0
    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    faithfulness_calls: int = 0  # the judge's re-asks (weight d > 0, paid agents on): included above
    faithfulness_cost_usd: float = 0.0
    judge_calls: int = 0  # the LLM judge, one call per annotation (judge.backend llm): included above
    judge_cost_usd: float = 0.0
    policy: str = Field(
        "full",
        description="agents.policy. adaptive: the figures price every agent on every "
        "segment, the most the adaptive jury can spend (it buys only the votes worth their price).",
    )
    # Side by side: cost_usd is each agent in its configured mode; these are every paid agent in
    # real time, and every agent whose backend has a batch API in batch mode (costs.batch_factor).
    realtime_cost_usd: float = 0.0
    batch_cost_usd: float = 0.0
    by_agent: dict[str, dict[str, float | str]] = Field(
        default_factory=dict, description="agent -> mode, realtime_cost_usd, batch_cost_usd (the jury's calls only)."
    )
    ceiling: bool = Field(
        False, description="True under the adaptive policy: the figures are the most it can spend, not a forecast."
    )
    provider_problems: list[str] = Field(
        default_factory=list,
        description="Unset API keys and base_urls that do not answer (agents/preflight.py): `annotate` refuses to run.",
    )


def estimate_cost(
    inputs: Sequence[str | Path], config: PipelineConfig, input_root: str | Path | None = None
) -> CostEstimate:
    from emoforge.agents.jury import Jury
    from emoforge.preprocess.sampling.segmenter import Segmenter

    ctx = RunContext(run_id="dry-run", config_hash=config_hash(config), emoforge_version=emoforge.__version__)
    prober, decoder = MediaProber(config.sampling.media), MediaDecoder(config.sampling.media)
    segmenter = Segmenter(config.sampling)
    # cache_dir=None: an estimate must not read or write the response cache.
    jury = Jury(config.agents, ctx, cache_dir=None)
    probe = None
    if config.judge.faithfulness_on and config.judge.faithfulness_paid:
        from emoforge.agents.faithfulness import FaithfulnessProbe

        probe = FaithfulnessProbe(include_paid=True)
    judge = None
    if config.judge.backend == "llm":
        from emoforge.agents.judge import Judge

        judge = Judge(config.judge, ctx, config.judge_agent())
    from emoforge.agents.preflight import provider_problems

    est = CostEstimate(policy=config.agents.policy, ceiling=config.agents.policy == "adaptive")
    est.provider_problems = [p.line() for p in provider_problems(config)]
    for item in discover_inputs(inputs, input_root):
        est.recordings += 1
        if item.refused is not None:  # outside the input root: never read, not even to estimate
            est.unreadable += 1
            continue
        rec = prober.probe(item.uri)
        if rec.status == Status.failed:
            est.unreadable += 1
            continue
        try:
            segments = segmenter.segment(decoder.decode(rec))
        except MediaError:
            est.unreadable += 1
            continue
        est.media_seconds += rec.duration_s or 0.0
        for seg in segments:
            est.segments += 1
            usage = jury.estimate(seg, Features(segment_id=seg.id))
            est.calls += usage.calls
            est.input_tokens += usage.input_tokens
            est.output_tokens += usage.output_tokens
            est.cost_usd += usage.cost_usd
            _by_mode(est, jury, seg)
            extras = (
                [probe.upper_bound(agent, seg, Features(segment_id=seg.id)) for agent in jury.agents]
                if probe is not None
                else []
            )
            for extra in extras:
                est.faithfulness_calls += extra.calls
                est.faithfulness_cost_usd += extra.cost_usd
                _add(est, extra)
            if judge is not None:
                judged = judge.estimate(seg, Features(segment_id=seg.id), _placeholders(seg, jury, config, ctx))
                est.judge_calls += judged.calls
                est.judge_cost_usd += judged.cost_usd
                _add(est, judged)
    jury.close()
    realtime_extras = est.faithfulness_cost_usd + est.judge_cost_usd  # re-asks and the judge are realtime
    est.realtime_cost_usd = round(est.realtime_cost_usd + realtime_extras, 6)
    est.batch_cost_usd = round(est.batch_cost_usd + realtime_extras, 6)
    est.judge_cost_usd = round(est.judge_cost_usd, 6)
    for row in est.by_agent.values():
        row["realtime_cost_usd"] = round(float(row["realtime_cost_usd"]), 6)
        row["batch_cost_usd"] = round(float(row["batch_cost_usd"]), 6)
    est.faithfulness_cost_usd = round(est.faithfulness_cost_usd, 6)
    est.cost_usd = round(est.cost_usd, 6)
    return est


def _add(est: CostEstimate, usage: Usage) -> None:
    est.calls += usage.calls
    est.input_tokens += usage.input_tokens
    est.output_tokens += usage.output_tokens
    est.cost_usd += usage.cost_usd


def _placeholders(seg: Segment, jury: Any, config: PipelineConfig, ctx: RunContext) -> list[Annotation]:
    """One answer per agent of the jury, as the LLM judge will see them (label, one step, no
    evidence): the judge's prompt size depends on the case, which a dry run does not have."""
    label = config.agents.taxonomy.labels[0]
    return [
        Annotation(
            id=f"{seg.id}-{agent.name}", segment_id=seg.id, agent=agent.name, backend=agent.backend,
            labels=[label], primary_label=label, confidence=0.5,
            rationale=[f"Step 1: The cues point to {label}."], provenance=ctx.provenance("annotate", agent.name),
        )
        for agent in jury.agents
    ]  # fmt: skip


def _by_mode(est: CostEstimate, jury: Any, seg: Segment) -> None:
    """Add one segment's jury cost in real time and in batch mode, per agent; ``cost_usd``
    (counted at the realtime price by ``Jury.estimate``) moves to each agent's configured mode."""
    from emoforge.agents.costs import batch_factor

    for agent in jury.agents:
        realtime = agent.estimate(seg, Features(segment_id=seg.id)).cost_usd
        batch = realtime * batch_factor(agent.backend)
        mode = getattr(getattr(agent, "config", None), "mode", "realtime")
        row = est.by_agent.setdefault(agent.name, {"mode": mode, "realtime_cost_usd": 0.0, "batch_cost_usd": 0.0})
        row["realtime_cost_usd"] = float(row["realtime_cost_usd"]) + realtime
        row["batch_cost_usd"] = float(row["batch_cost_usd"]) + batch
        est.realtime_cost_usd += realtime
        est.batch_cost_usd += batch
        if mode == "batch":
            est.cost_usd += batch - realtime
