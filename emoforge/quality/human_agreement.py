"""How well machines agree with humans (the pipeline-vs-human block of the agreement report).

For every row with a human verification (the newest one counts), the human label is paired
with the consensus label and with each agent's primary label; Cohen's kappa and nominal
Krippendorff's alpha are computed over those pairs (``emoforge.quality.agreement``). Intensity
and valence pairs (human vs consensus) get Spearman's rho and ICC(2,1) (two-way random,
absolute agreement). The survey's near-expert thresholds (kappa > 0.8, ICC > 0.9, from
``release.review``) are reported as pass/fail; a statistic that cannot be computed (too
few pairs, no variation) is null and counts as neither.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
from pydantic import Field

from emoforge.configs.release import ReviewConfig
from emoforge.quality.stats import cohen_kappa, finite, icc, krippendorff_alpha, spearman
from emoforge.storage.records import HumanLabel, Record, SegmentRow, Status


class PairStats(Record):
    n: int = Field(description="Paired items.")
    accuracy: float | None = Field(default=None, description="Share of pairs that agree exactly.")
    kappa: float | None = Field(default=None, description="Cohen's kappa (null if undefined).")
    alpha: float | None = Field(default=None, description="Krippendorff's alpha, nominal.")


class ScaleStats(Record):
    n: int = Field(description="Paired values.")
    spearman: float | None = Field(default=None, description="Spearman's rho.")
    icc: float | None = Field(default=None, description="ICC(2,1), absolute agreement.")


class ReviewerInfo(Record):
    labels: int = Field(description="Verifications by this reviewer.")
    first: str = Field(description="Earliest review time (ISO).")
    last: str = Field(description="Latest review time (ISO).")


class HumanAgreementReport(Record):
    rows_verified: int = Field(description="Rows with at least one human label.")
    vs_consensus: PairStats = Field(description="Human label vs consensus primary label.")
    vs_agents: dict[str, PairStats] = Field(description="Human label vs each agent's primary label.")
    intensity: ScaleStats = Field(description="Human vs consensus intensity.")
    valence: ScaleStats = Field(description="Human vs consensus valence.")
    thresholds: dict[str, float] = Field(description="kappa and icc pass thresholds.")
    passed: dict[str, bool | None] = Field(description="Statistic -> passes its threshold (null: undefined).")
    reviewers: dict[str, ReviewerInfo] = Field(description="Who reviewed, how much, when.")


def pair_stats(a: list[str], b: list[str]) -> PairStats:
    """Exact agreement, Cohen's kappa and nominal alpha of two label sequences."""
    if not a:
        return PairStats(n=0)
    codes = {lab: i for i, lab in enumerate(sorted(set(a) | set(b)))}
    matrix = np.array([[codes[x] for x in a], [codes[y] for y in b]], dtype=float)
    return PairStats(
        n=len(a),
        accuracy=round(sum(x == y for x, y in zip(a, b, strict=True)) / len(a), 6),
        kappa=finite(cohen_kappa(np.array(a), np.array(b))),
        alpha=finite(krippendorff_alpha(matrix, level="nominal")) if len(a) > 1 else None,
    )


def scale_stats(a: list[float], b: list[float]) -> ScaleStats:
    if len(a) < 2:
        return ScaleStats(n=len(a))
    return ScaleStats(n=len(a), spearman=finite(spearman(a, b)), icc=finite(icc(np.column_stack([a, b]), "ICC2")))


def latest_human(row: SegmentRow) -> HumanLabel | None:
    labelled = [h for h in row.human if h.label]
    return max(labelled, key=lambda h: h.reviewed_at) if labelled else None


def human_agreement(rows: list[SegmentRow], config: ReviewConfig) -> HumanAgreementReport:
    """Agreement of the newest human label of each verified row with the machines."""
    cons_pairs: tuple[list[str], list[str]] = ([], [])
    agent_pairs: dict[str, tuple[list[str], list[str]]] = defaultdict(lambda: ([], []))
    scales: dict[str, tuple[list[float], list[float]]] = {"intensity": ([], []), "valence": ([], [])}
    reviewers: dict[str, list[str]] = defaultdict(list)
    verified = 0
    for row in rows:
        for h in row.human:
            reviewers[h.reviewer].append(h.reviewed_at.isoformat())
        human = latest_human(row)
        if human is None or human.label is None:
            continue
        verified += 1
        cons = row.consensus
        if cons is not None and cons.primary_label:
            cons_pairs[0].append(human.label)
            cons_pairs[1].append(cons.primary_label)
            for name in scales:
                hv, cv = getattr(human, name), getattr(cons, name)
                if hv is not None and cv is not None:
                    scales[name][0].append(hv)
                    scales[name][1].append(cv)
        for ann in row.annotations:
            if ann.status == Status.ok and ann.primary_label:
                agent_pairs[ann.agent][0].append(human.label)
                agent_pairs[ann.agent][1].append(ann.primary_label)
    vs_cons = pair_stats(*cons_pairs)
    intensity, valence = scale_stats(*scales["intensity"]), scale_stats(*scales["valence"])

    def passes(value: float | None, threshold: float) -> bool | None:
        return None if value is None else value > threshold

    return HumanAgreementReport(
        rows_verified=verified,
        vs_consensus=vs_cons,
        vs_agents={agent: pair_stats(*pairs) for agent, pairs in sorted(agent_pairs.items())},
        intensity=intensity,
        valence=valence,
        thresholds={"kappa": config.kappa_pass, "icc": config.icc_pass},
        passed={
            "kappa_vs_consensus": passes(vs_cons.kappa, config.kappa_pass),
            "icc_intensity": passes(intensity.icc, config.icc_pass),
            "icc_valence": passes(valence.icc, config.icc_pass),
        },
        reviewers={
            who: ReviewerInfo(labels=len(times), first=min(times), last=max(times))
            for who, times in sorted(reviewers.items())
        },
    )
