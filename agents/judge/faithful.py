"""The judge's optional faithfulness axis: S_faith, weight ``d`` of ``JudgeWeights``.

S_faith is ``FaithfulnessScore.faithfulness`` (mean of sufficiency and necessity of the
cited evidence, ``agents/faithfulness/scores.py``), measured by re-asking the annotator
that wrote the annotation. With d > 0, S_final = a*S_rec + b*S_reason + c*S_cot + d*S_faith
and the verdict's ``weights`` are [a, b, c, d]. Where S_faith could not be measured (no
annotator object for that agent, a paid agent with ``include_paid`` off, a failed re-ask),
S_final is the other three renormalised, weights [a, b, c] / (a+b+c), and a note says why:
an axis nobody measured must not count as 0. The score is kept in ``notes`` (a free-form
column of schema v1), as ``S_faith: 0.83 (sufficiency 0.90, necessity 0.75, ...)``.
"""

from __future__ import annotations

import re

from emoforge.agents.costs import add_usage
from emoforge.agents.faithfulness import FaithfulnessScore
from emoforge.configs.quality import JudgeWeights
from emoforge.storage.records import Usage, Verdict


def add_faithfulness(verdict: Verdict, weights: JudgeWeights, score: FaithfulnessScore | None) -> Verdict:
    """The verdict with S_faith folded into S_final (module docstring); unchanged when d == 0."""
    if weights.d <= 0:
        return verdict
    if score is not None and (score.usage.calls > 0 or score.usage.cost_usd > 0):
        # The re-asks of paid annotators are this judgement's spend: the ledger reads it here.
        verdict = verdict.model_copy(update={"usage": add_usage(verdict.usage or Usage(), score.usage)})
    if verdict.status != "ok":
        return verdict
    base = weights.a + weights.b + weights.c
    partial = weights.a * verdict.s_rec + weights.b * verdict.s_reason + weights.c * verdict.s_cot
    faith = score.faithfulness if score is not None else None
    if faith is not None and score is not None:
        note = (
            f"S_faith: {faith:.2f} (sufficiency {score.sufficiency:.2f}: label {score.label_only_cited!r} "
            f"from the cited evidence only; necessity {score.necessity:.2f}: label "
            f"{score.label_without_cited!r} without it)"
        )
        final = min(1.0, max(0.0, partial + weights.d * faith))
        return verdict.model_copy(
            update={
                "s_final": final,
                "weights": [weights.a, weights.b, weights.c, weights.d],
                "notes": [*verdict.notes, note],
            }
        )
    why = "no annotator to re-ask" if score is None else (score.error or str(score.error_kind) or score.status)
    final = min(1.0, max(0.0, partial / base)) if base > 0 else 0.0
    effective = [w / base for w in (weights.a, weights.b, weights.c)] if base > 0 else [0.0, 0.0, 0.0]
    return verdict.model_copy(
        update={"s_final": final, "weights": effective, "notes": [*verdict.notes, f"S_faith: not measured ({why})"]}
    )


_NOTE = re.compile(r"^S_faith: (?P<faith>[0-9.]+) \(sufficiency (?P<suff>[0-9.]+):.*; necessity (?P<nec>[0-9.]+):")


def read_faithfulness(verdict: Verdict) -> tuple[float, float] | None:
    """(sufficiency, necessity) that ``add_faithfulness`` wrote on a verdict, else None."""
    for note in verdict.notes:
        match = _NOTE.match(note)
        if match:
            return float(match["suff"]), float(match["nec"])
    return None
