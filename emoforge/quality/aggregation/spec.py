"""What an aggregator declares about itself, beside its class (``Aggregator.spec``).

The per-segment consensus, the corpus run, calibration and the config's choices read these
declarations through ``AGGREGATORS`` instead of keeping lists of aggregator names.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd


class Scope(StrEnum):
    """Where an aggregator may run."""

    SEGMENT = "segment"  # on one segment's jury, in phase 5
    CORPUS = "corpus"  # over the whole corpus, in ``emoforge aggregate``

    @property
    def config_key(self) -> str:
        """The YAML key that picks the aggregators of this scope."""
        return "aggregation.method" if self is Scope.SEGMENT else "aggregation.corpus_methods"


class Votes(StrEnum):
    """The input shape: what each row of the ``task / worker / label`` frame carries besides."""

    LABELS = "labels"  # nothing: every vote counts once
    JUDGED = "judged"  # ``weight``: the judge's S_final of the vote
    JUDGED_DISTRIBUTIONS = "judged_distributions"  # one row per (vote, label): ``prob`` and ``weight``
    CONFIDENCES = "confidences"  # ``confidence``: the vote's calibrated confidence, judge-discounted

    @property
    def judged(self) -> bool:
        """Whether the judge's weight is how much a vote counts: then a segment's vote needs a
        verdict on every annotation, and an unjudged vote in the corpus counts nothing."""
        return self in (Votes.JUDGED, Votes.JUDGED_DISTRIBUTIONS)


@dataclass(frozen=True)
class AggregatorSpec:
    """One aggregator's capabilities.

    Args:
        name: its config name (``aggregation.method``, ``aggregation.corpus_methods``) and the
            ``method`` of the consensus and sidecar rows it makes.
        scopes: where it may run.
        votes: the input shape it reads.
        reliability: the fitted attribute (worker -> score) reported as each annotator's
            reliability in the corpus manifest.
    """

    name: str
    scopes: frozenset[Scope]
    votes: Votes = Votes.LABELS
    reliability: str = "skills_"

    def corpus_votes(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The corpus vote table (``votes_frame``) as this aggregator reads it."""
        if self.votes.judged:
            return frame.assign(weight=frame["weight"].fillna(0.0))
        return frame
