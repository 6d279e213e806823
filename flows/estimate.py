"""``--dry-run``: count segments and estimate provider calls, tokens and cost, writing nothing.

Only the cheap front end runs (probe, decode, segment); features are not extracted and no
clips are cut, so prompt sizes are estimated from empty features plus the segment's
instruction, and an agent's audio/video from the segment's length at the providers' token
rates (``agents/costs.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from pydantic import BaseModel

import emoforge
from emoforge.configs import PipelineConfig, config_hash
from emoforge.preprocess.media import MediaDecoder, MediaError, MediaProber
from emoforge.storage.inputs import discover_inputs
from emoforge.storage.records import Features, RunContext, Status


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
    est = CostEstimate()
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
            extras = (
                [probe.upper_bound(agent, seg, Features(segment_id=seg.id)) for agent in jury.agents]
                if probe is not None
                else []
            )
            for extra in extras:
                est.faithfulness_calls += extra.calls
                est.faithfulness_cost_usd += extra.cost_usd
                est.calls += extra.calls
                est.input_tokens += extra.input_tokens
                est.output_tokens += extra.output_tokens
                est.cost_usd += extra.cost_usd
    jury.close()
    est.faithfulness_cost_usd = round(est.faithfulness_cost_usd, 6)
    est.cost_usd = round(est.cost_usd, 6)
    return est
