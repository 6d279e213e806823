"""Faithfulness of a claim made elsewhere: a submitted prediction, measured without trusting it.

``FaithfulnessProbe`` (``scores.py``) scores an annotation this run made, so its confidence
and label scores are the agent's own and serve as the baseline p_full(y). A submitted
prediction's are not: a submitter stating confidence 0.01 would make any re-ask keep "all"
of it. And citing every modality would score 1 / 1 there (shown everything it answers as
before; with everything removed it cannot decide). So ``ClaimProbe`` asks the agent itself,
and scores each cited modality apart:

* **baseline**: the agent re-asked on the full input. If it does not give the claimed label
  y, the claim is not what this agent says, and its evidence explains nothing: 0 / 0.
  Otherwise p_full(y) is the agent's own probability of y (``scores.p_label``).
* **sufficiency** = [y_only = y] * min(1, p_only(y) / p_full(y)), shown only the cited
  evidence, as in ``scores.py``.
* **necessity** = the mean over the cited modalities m of
  1 - [y_without_m = y] * min(1, p_without_m(y) / p_full(y)): each modality removed on its
  own. A cited modality the agent does not need leaves the label as it was and scores 0, so
  citing three modalities of which one decides scores 1/3, not 1. With one modality cited it
  is ``scores.py``'s necessity.

Calls: 2 + (cited modalities) per claim; a failure that is not missing input (budget,
provider) stops the claim's re-asks and fails it with that kind. Paid re-asks only with
``include_paid``; the caller's budget (``agents.budget_usd``) bounds them.
"""

from __future__ import annotations

from emoforge.agents.base import Annotator, SegmentClip
from emoforge.agents.costs import CostLedger, add_usage
from emoforge.agents.faithfulness.scores import (
    MISSING_INPUT,
    FaithfulnessScore,
    MaskedInput,
    is_paid,
    kept_share,
    masked_inputs,
    p_label,
)
from emoforge.storage.records import Annotation, Features, Segment, Status, Usage


def claim_inputs(claim: Annotation, features: Features, clip: SegmentClip | None) -> list[MaskedInput]:
    """[full input, only the cited evidence, then without each cited modality in turn]."""
    only, _ = masked_inputs(claim, features, clip)
    removals = []
    for modality in sorted({c.modality for c in claim.evidence}):
        one = claim.model_copy(update={"evidence": [c for c in claim.evidence if c.modality == modality]})
        removals.append(masked_inputs(one, features, clip)[1])
    return [(features, clip), only, *removals]


class ClaimProbe:
    """Re-asks an annotator about a claim it may not have made (module docstring).

    Args:
        include_paid: also probe a paid agent (2 + cited modalities calls per claim).
        ledger: where the re-asks' usage is recorded, as ``{agent}:faithfulness``.
    """

    def __init__(self, include_paid: bool = False, ledger: CostLedger | None = None) -> None:
        self.include_paid = include_paid
        self.ledger = ledger

    def score(
        self,
        annotator: Annotator,
        segment: Segment,
        features: Features,
        claim: Annotation,
        clip: SegmentClip | None = None,
    ) -> FaithfulnessScore:
        row = FaithfulnessScore(annotation_id=claim.id, agent=claim.agent, label=claim.primary_label)
        y = claim.primary_label
        if y is None:
            return row.model_copy(update={"status": Status.skipped, "error": "the claim names no label"})
        if not claim.evidence:
            return row.model_copy(update={"sufficiency": 0.0, "necessity": 0.0, "error": "cites no evidence"})
        inputs = claim_inputs(claim, features, clip)
        cost = Usage()
        for masked in inputs:
            cost = add_usage(cost, annotator.estimate(segment, *masked))
        if not self.include_paid and is_paid(cost):
            return row.model_copy(update={"status": Status.skipped, "error": "paid agent: include_paid is off"})
        answers: list[Annotation] = []
        for masked_features, masked_clip in inputs:
            answer = annotator.annotate(segment, masked_features, masked_clip)
            answers.append(answer)
            row = row.model_copy(update={"usage": add_usage(row.usage, answer.usage)})
            failure = answer.failure if answer.status != Status.ok else None
            if failure is not None and failure.kind not in MISSING_INPUT:
                if self.ledger is not None:
                    self.ledger.record(f"{claim.agent}:faithfulness", segment.id, row.usage)
                return row.model_copy(
                    update={"status": Status.failed, "error_kind": failure.kind, "error": failure.message}
                )
        if self.ledger is not None:
            self.ledger.record(f"{claim.agent}:faithfulness", segment.id, row.usage)
        full, only, *without = answers
        row = row.model_copy(
            update={
                "label_only_cited": only.primary_label,
                "label_without_cited": without[0].primary_label if len(without) == 1 else None,
            }
        )
        if full.status != Status.ok or full.primary_label != y:
            said = full.primary_label if full.status == Status.ok else "nothing"
            return row.model_copy(
                update={
                    "sufficiency": 0.0,
                    "necessity": 0.0,
                    "error": f"the agent answers {said} on the full input, not {y}",
                }
            )
        p_full = p_label(full, y)
        necessity = sum(1.0 - kept_share(a, y, p_full) for a in without) / len(without)
        return row.model_copy(
            update={"sufficiency": round(kept_share(only, y, p_full), 4), "necessity": round(necessity, 4)}
        )
