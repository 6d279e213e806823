"""The annotate phase's batch mode: batch-mode agents' votes go through provider batches.

Their cache misses go out as one batch per agent for the recording's rows, or are collected
from a batch an earlier run sent (``agents/batch.py``). A row whose vote is still pending is
None: it stays uncommitted (never a row with a missing vote) and a later run into the same
corpus collects it, sending nothing again.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from emoforge.agents.base import SegmentClip
from emoforge.flows.phase import features_of, segment_of
from emoforge.flows.work import RecordingWork
from emoforge.storage.records import Annotation, JuryDecision, Segment

if TYPE_CHECKING:
    from emoforge.agents.jury import Jury

JuryRound = tuple[list[Annotation], JuryDecision] | None
"""One row's outcome in the annotate phase: its annotations and the jury's decision, or None
while one of its votes waits in a provider batch."""


def annotate_batched(
    jury: Jury, work: RecordingWork, clip_of: Callable[[Segment], SegmentClip] | None
) -> list[JuryRound]:
    """One ``JuryRound`` per row of ``work``: realtime agents answer now, batch-mode agents
    from their provider batch once it has ended."""
    from emoforge.agents.adaptive import full_decision

    deferred = []
    for r in work.rows:
        clip = clip_of(segment_of(r)) if clip_of else None
        deferred.append((*jury.annotate_deferred(segment_of(r), features_of(r), clip), clip))
    settled = jury.settle_rows([(done, asks) for done, asks, _ in deferred])
    return [
        None if anns is None else (anns, full_decision(jury, segment_of(r), features_of(r), clip, anns))
        for r, anns, (_, _, clip) in zip(work.rows, settled, deferred, strict=True)
    ]
