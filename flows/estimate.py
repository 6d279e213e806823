"""``--dry-run``: count segments and estimate provider calls, tokens and cost, writing nothing.

The dry run walks ``PIPELINE`` like a run, calling each phase's ``estimate`` instead of its
``fill``: the cheap front end runs for real (probe, decode, segment), features are not
extracted and no clips are cut, so prompt sizes are estimated from empty features plus the
segment's instruction, and an agent's audio/video from the segment's length at the
providers' token rates (``agents/costs.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import emoforge
from emoforge.configs import PipelineConfig, config_hash
from emoforge.flows import pipeline
from emoforge.flows.cost_estimate import CostEstimate
from emoforge.flows.leases import released
from emoforge.flows.phase import PhaseEnv
from emoforge.flows.work import RecordingWork
from emoforge.storage.inputs import discover_inputs
from emoforge.storage.records import RunContext


@released
def estimate_cost(
    inputs: Sequence[str | Path], config: PipelineConfig, input_root: str | Path | None = None
) -> CostEstimate:
    from emoforge.agents.preflight import provider_problems

    ctx = RunContext(run_id="dry-run", config_hash=config_hash(config), emoforge_version=emoforge.__version__)
    # No out and no cache_dir: an estimate must not read or write the corpus or the response cache.
    phases = [phase(PhaseEnv(config=config, ctx=ctx)) for phase in pipeline.PIPELINE]
    est = CostEstimate(policy=config.agents.policy, ceiling=config.agents.policy == "adaptive")
    est.provider_problems = [p.line() for p in provider_problems(config)]
    for item in discover_inputs(inputs, input_root):
        est.recordings += 1
        if item.refused is not None:  # outside the input root: never read, not even to estimate
            est.unreadable += 1
            continue
        work = RecordingWork(item=item)
        for phase in phases:
            if phase.wants(work):
                phase.estimate(work, est)
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
