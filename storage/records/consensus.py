"""The aggregated label of a segment and how far to trust it."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from emoforge.storage.records.base import Provenance, Record


class LabelQuality(Record):
    """How likely a segment's consensus label is right, estimated from its whole jury.

    CROWDLAB (Goh, Tkachenko, Mueller 2022, arXiv:2210.06812; cleanlab's
    ``get_label_quality_multiannotator``), reimplemented in ``emoforge/quality/label_quality.py``:
    the jury's consensus distribution and every vote, each vote weighted by its annotator's
    estimated reliability (and the judge's S_final), give a posterior over the labels; the score
    is that posterior's probability of the consensus label. Review the lowest scores first.
    """

    score: float = Field(
        ge=0, le=1, description="Estimated probability that the consensus primary label is right (low: review first)."
    )
    method: str = Field(description="Method and version that computed the score, e.g. 'crowdlab-v1'.")
    scope: Literal["segment", "corpus"] = Field(
        description="segment: annotator reliabilities at their prior (phase 5, aggregate); corpus: reliabilities "
        "fitted across the corpus by `emoforge aggregate`."
    )
    fitted_rows: int | None = Field(
        default=None, description="Rows the annotator reliabilities were fitted on (corpus scope)."
    )


class Consensus(Record):
    """The aggregated label of a segment, with how much to trust it."""

    segment_id: str = Field(description="Parent segment id.")
    method: str = Field(description="Aggregator name (majority, weighted, dawid_skene, ...).")
    primary_label: str | None = Field(default=None, description="Aggregated label; null if no votes.")
    labels: list[str] = Field(default_factory=list, description="Aggregated multi-label set.")
    distribution: dict[str, float] = Field(default_factory=dict, description="Label -> probability.")
    confidence: float = Field(ge=0, le=1, description="Probability of the primary label.")
    entropy: float = Field(ge=0, description="Entropy of the distribution (bits).")
    agreement: float | None = Field(default=None, description="Share of valid votes for the primary label.")
    intensity: float | None = Field(default=None, description="Aggregated intensity 0..1.")
    valence: float | None = Field(default=None, description="Aggregated valence -1..1.")
    arousal: float | None = Field(default=None, description="Aggregated arousal -1..1.")
    n_annotations: int = Field(description="Annotations considered.")
    n_valid: int = Field(description="Annotations with status ok.")
    needs_review: bool = Field(description="Flagged for human review.")
    review_reasons: list[str] = Field(default_factory=list, description="Why it was flagged.")
    provenance: Provenance = Field(description="Aggregator and config hash.")
    # Added within schema v1 (nullable): shards written before it load with None, and older
    # emoforge versions ignore the extra struct field when they read newer shards.
    label_quality: LabelQuality | None = Field(
        default=None,
        description="Label-quality score of the consensus (CROWDLAB); the review queue is ordered by it. "
        "Null in shards written before it existed.",
    )
