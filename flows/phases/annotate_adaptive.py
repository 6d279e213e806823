"""The annotate phase's adaptive mode (``agents.policy: adaptive``): the jury asks in
rounds, and after each the judge and the consensus decide whether the label is settled
(``agents/adaptive.py``); a batch agent's round is one provider batch."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from emoforge.agents.base import SegmentClip
from emoforge.flows.leases import lease
from emoforge.flows.phase import PhaseEnv, features_of, segment_of
from emoforge.flows.phases.annotate_batch import JuryRound
from emoforge.flows.work import RecordingWork
from emoforge.storage.records import Segment

if TYPE_CHECKING:
    from emoforge.agents.jury import Jury


def annotate_adaptive(
    env: PhaseEnv, jury: Jury, work: RecordingWork, clip_of: Callable[[Segment], SegmentClip] | None
) -> list[JuryRound]:
    """One ``JuryRound`` per row of ``work``, each from as few rounds as decide its label."""
    from emoforge.agents.adaptive import AdaptiveJury
    from emoforge.agents.judge import Judge
    from emoforge.agents.policy import AdaptivePolicy
    from emoforge.agents.providers import vote_sources
    from emoforge.agents.recognizers.base import vote_priors
    from emoforge.quality.consensus import ConsensusBuilder

    config = env.config
    # Rounds are judged offline: an LLM judge sees the other votes, so it would be paid
    # again every round; it scores the final jury once, in the judge phase.
    judge = lease(Judge, config.judge.model_copy(update={"backend": "rules"}), env.ctx)
    taxonomy = config.agents.taxonomy
    priors = vote_priors(config.agents)
    builder = lease(ConsensusBuilder, config.aggregation, env.ctx, taxonomy, priors, sources=vote_sources())
    policy = AdaptivePolicy(config.agents.adaptive, len(taxonomy.labels), config.aggregation.pool_weights)
    runner = AdaptiveJury(jury, policy, judge.score, builder.build)
    return runner.run([(segment_of(r), features_of(r)) for r in work.rows], clip_of)
