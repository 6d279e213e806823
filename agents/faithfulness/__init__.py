"""Causal faithfulness of rationales: does the cited evidence cause the label?

``masking.py`` defines masking on our records (drop a modality, blank named features or time
ranges, withhold key frames and clip parts); ``scores.py`` re-asks an annotator with only its
cited evidence and without it, and scores sufficiency and necessity (maths there);
``claims.py`` does the same for a claim made elsewhere (a submitted prediction), trusting
none of its stated scores.
"""

from emoforge.agents.faithfulness.masking import blank_features, blank_spans, drop_parts, parts_of
from emoforge.agents.faithfulness.scores import (
    FaithfulnessProbe,
    FaithfulnessScore,
    is_paid,
    masked_inputs,
    summarise,
)

__all__ = [
    "FaithfulnessProbe",
    "FaithfulnessScore",
    "blank_features",
    "blank_spans",
    "drop_parts",
    "is_paid",
    "masked_inputs",
    "parts_of",
    "summarise",
]
