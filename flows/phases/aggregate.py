"""Phase ``aggregate``: consensus label, confidence and review flags for every row."""

from __future__ import annotations

from emoforge.flows.leases import lease
from emoforge.flows.phase import Phase, features_of, segment_of
from emoforge.flows.work import RecordingWork
from emoforge.storage.records import Consensus, SegmentRow


class Aggregate(Phase):
    """Consensus label, confidence and review flags for every row."""

    name = "aggregate"

    def fill(self, work: RecordingWork) -> None:
        from emoforge.agents.providers import vote_sources
        from emoforge.agents.recognizers.base import vote_priors
        from emoforge.quality.consensus import ConsensusBuilder

        config = self.config
        builder = lease(
            ConsensusBuilder,
            config.aggregation,
            self.ctx,
            config.agents.taxonomy,
            vote_priors(config.agents),
            sources=vote_sources(),
        )
        consensus = [builder.build(segment_of(r), features_of(r), r.annotations, r.verdicts) for r in work.rows]
        for row, c in zip(work.rows, consensus, strict=True):
            row.consensus = c if row.jury is None or row.jury.route != "review" else _to_review(c, row)


def _to_review(consensus: Consensus, row: SegmentRow) -> Consensus:
    """The adaptive jury stopped on the budget or the cap short of a decisive label: a human decides."""
    jury = row.jury
    if jury is None:
        return consensus
    asked = ", ".join(jury.asked) or "nobody"
    reason = f"jury_{jury.stop}: stopped undecided after {asked}"
    return consensus.model_copy(update={"needs_review": True, "review_reasons": [*consensus.review_reasons, reason]})
