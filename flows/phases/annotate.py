"""Phase ``annotate``: the jury labels every row, in the mode the config picks.

Three modes, one module each: every agent on every row in real time (here), the
batch-mode agents through provider batches (``annotate_batch.py``), and the adaptive jury
that buys only the votes worth their price (``annotate_adaptive.py``, ``agents.policy:
adaptive``). Each returns one ``JuryRound`` per row: its annotations and the jury's
decision, or None while a vote waits in a provider batch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from emoforge.agents.base import SegmentClip
from emoforge.agents.clips import ClipCutter
from emoforge.agents.costs import run_ledger
from emoforge.flows.cost_estimate import CostEstimate
from emoforge.flows.leases import lease
from emoforge.flows.phase import Phase, features_of, segment_of
from emoforge.flows.phases.annotate_adaptive import annotate_adaptive
from emoforge.flows.phases.annotate_batch import JuryRound, annotate_batched
from emoforge.flows.runners import provider_slots
from emoforge.flows.work import RecordingWork
from emoforge.storage.records import Features, Segment

if TYPE_CHECKING:
    from emoforge.agents.jury import Jury

ClipOf = Callable[[Segment], SegmentClip]


class Annotate(Phase):
    """The jury labels every row (with its clip, for agents that take one): every agent, or
    with ``agents.policy: adaptive`` only the votes worth their price until the label is decided."""

    name = "annotate"

    def fill(self, work: RecordingWork) -> None:
        from emoforge.agents.jury import Jury

        config = self.config
        jury = lease(Jury, config.agents, self.ctx, self.env.cache_path)
        jury.use_ledger(run_ledger(self.ctx.run_id, config.agents.budget_usd))
        clip_of = clip_cutter(self, jury, work)
        # Provider slots are global (Prefect server side): runs in parallel share them.
        with provider_slots(config.agents, config.run):
            if jury.batch_agents:
                if self.env.out is None:
                    raise ValueError(f"agents {jury.batch_agents} in mode 'batch' need the corpus folder (out)")
                jury.use_batches(self.env.out, self.ctx.run_id)
            if config.agents.policy == "adaptive":
                results = annotate_adaptive(self.env, jury, work, clip_of)  # a batch agent's round is one batch
            elif jury.batch_agents:
                results = annotate_batched(jury, work, clip_of)
            else:
                results = _annotate_realtime(jury, work, clip_of)
        kept = []
        for row, result in zip(work.rows, results, strict=True):
            if result is None:  # a vote is pending in a provider batch: the row waits for it
                continue
            row.annotations, row.jury = result
            kept.append(row)
        work.pending_segments += len(work.rows) - len(kept)
        work.rows = kept

    def estimate(self, work: RecordingWork, est: CostEstimate) -> None:
        from emoforge.agents.jury import Jury

        # Without clips, agents count their audio/video at the segment's length.
        jury = lease(Jury, self.config.agents, self.ctx, self.env.cache_path)
        for row in work.rows:
            seg = segment_of(row)
            est.add(jury.estimate(seg, features_of(row)))
            _by_mode(est, jury, seg, features_of(row))

    def done_with_media(self) -> bool:
        # One clip at a time was cut from it; only the judge's faithfulness re-asks need it again.
        return not self.config.judge.faithfulness_on


def clip_cutter(phase: Phase, jury: Jury, work: RecordingWork) -> ClipOf | None:
    """Each segment's clip from the work's decoded media, for a jury with agents that take one."""
    media, needs = work.media, jury.clip_needs
    if not (needs.any and media):
        return None
    cutter = lease(ClipCutter, phase.config.agents.clips, phase.config.sampling.media)
    return lambda seg: cutter.cut(media, seg, needs)


def _annotate_realtime(jury: Jury, work: RecordingWork, clip_of: ClipOf | None) -> list[JuryRound]:
    from emoforge.agents.adaptive import full_decision

    results: list[JuryRound] = []
    for r in work.rows:
        seg = segment_of(r)
        clip = clip_of(seg) if clip_of else None
        anns = jury.annotate(seg, features_of(r), clip)
        results.append((anns, full_decision(jury, seg, features_of(r), clip, anns)))
    return results


def _by_mode(est: CostEstimate, jury: Jury, seg: Segment, features: Features) -> None:
    """Add one segment's jury cost in real time and in batch mode, per agent; ``cost_usd``
    (counted at the realtime price by ``Jury.estimate``) moves to each agent's configured mode."""
    from emoforge.agents.costs import batch_factor

    for agent in jury.agents:
        realtime = agent.estimate(seg, features).cost_usd
        batch = realtime * batch_factor(agent.backend)
        mode = getattr(getattr(agent, "config", None), "mode", "realtime")
        row = est.by_agent.setdefault(agent.name, {"mode": mode, "realtime_cost_usd": 0.0, "batch_cost_usd": 0.0})
        row["realtime_cost_usd"] = float(row["realtime_cost_usd"]) + realtime
        row["batch_cost_usd"] = float(row["batch_cost_usd"]) + batch
        est.realtime_cost_usd += realtime
        est.batch_cost_usd += batch
        if mode == "batch":
            est.cost_usd += batch - realtime
