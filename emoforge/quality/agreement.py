"""Corpus agreement: ``corpus_agreement`` applies the statistics of ``stats`` to
shard rows (per annotator pair, per modality, pipeline vs human) and returns an
``AgreementReport``. The statistics are re-exported here, where their callers import them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
from pydantic import Field

from emoforge.configs.release import ReviewConfig
from emoforge.quality.human_agreement import human_agreement
from emoforge.quality.stats import (
    ICCForm,
    Level,
    Weights,
    cohen_kappa,
    finite,
    fleiss_kappa,
    icc,
    krippendorff_alpha,
    krippendorff_alpha_counts,
    majority_accuracy,
    response_accuracy,
    spearman,
    value_counts,
)
from emoforge.storage.records import Record, SegmentRow, Status

__all__ = [
    "AgreementReport",
    "AnnotatorAgreement",
    "ICCForm",
    "Level",
    "ModalityAgreement",
    "PairAgreement",
    "Weights",
    "cohen_kappa",
    "corpus_agreement",
    "finite",
    "fleiss_kappa",
    "icc",
    "krippendorff_alpha",
    "krippendorff_alpha_counts",
    "majority_accuracy",
    "response_accuracy",
    "spearman",
    "value_counts",
]


class PairAgreement(Record):
    """Two annotators on the segments both labelled."""

    a: str = Field(description="First agent.")
    b: str = Field(description="Second agent.")
    n: int = Field(description="Segments both labelled.")
    kappa: float | None = Field(default=None, description="Cohen's kappa of primary labels.")
    spearman_valence: float | None = Field(default=None, description="Spearman's rho of valences.")


class AnnotatorAgreement(Record):
    n: int = Field(description="Segments the agent labelled (status ok).")
    failed: int = Field(description="Segments where the agent failed.")
    accuracy_vs_consensus: float | None = Field(default=None, description="Share equal to the consensus.")
    kappa_vs_consensus: float | None = Field(default=None, description="Cohen's kappa vs the consensus.")


class ModalityAgreement(Record):
    n_segments: int = Field(description="Segments where the modality was available.")
    alpha_nominal: float | None = Field(default=None, description="Inter-annotator alpha on those segments.")
    fleiss_kappa: float | None = Field(default=None, description="Fleiss' kappa on those segments.")


class AgreementReport(Record):
    """Inter-annotator agreement of a corpus (and, when verified, machines vs humans)."""

    n_segments: int = Field(description="Segments with at least one valid annotation.")
    n_annotations: int = Field(description="Valid annotations.")
    agents: list[str] = Field(description="Agents seen.")
    alpha: dict[str, float | None] = Field(description="Krippendorff's alpha: label (nominal), scales.")
    fleiss_kappa: float | None = Field(default=None, description="Fleiss' kappa of primary labels.")
    pairs: list[PairAgreement] = Field(description="Cohen's kappa / Spearman per agent pair.")
    per_annotator: dict[str, AnnotatorAgreement] = Field(description="Each agent vs the consensus.")
    per_modality: dict[str, ModalityAgreement] = Field(description="Agreement where a modality exists.")
    human: dict[str, Any] | None = Field(default=None, description="Pipeline vs human (agents.review).")


def _label_alpha_and_fleiss(votes: list[dict[str, str]]) -> tuple[float | None, float | None]:
    labels = sorted({lab for v in votes for lab in v.values()})
    if not votes or len(labels) < 1:
        return None, None
    counts = np.zeros((len(votes), len(labels)))
    for u, v in enumerate(votes):
        for lab in v.values():
            counts[u, labels.index(lab)] += 1
    return finite(krippendorff_alpha_counts(counts)), finite(fleiss_kappa(counts))


def corpus_agreement(rows: Iterable[SegmentRow], human_review: Any = None) -> AgreementReport:
    """Agreement statistics over a corpus's rows (only ok annotations with a label count).

    Args:
        human_review: ``release.review`` config (pass/fail thresholds) for the pipeline-vs-human
            block, computed by ``quality.human_agreement`` when any row has a human label.
    """
    votes: list[dict[str, str]] = []
    scales: dict[str, list[dict[str, float]]] = {"valence": [], "arousal": [], "intensity": []}
    consensus: list[str | None] = []
    modalities: list[set[str]] = []
    failed: dict[str, int] = {}
    all_rows = list(rows)
    for row in all_rows:
        valid = [a for a in row.annotations if a.status == Status.ok and a.primary_label]
        for a in row.annotations:
            if a.status != Status.ok:
                failed[a.agent] = failed.get(a.agent, 0) + 1
        if not valid:
            continue
        votes.append({a.agent: a.primary_label or "" for a in valid})
        for name, table in scales.items():
            table.append({a.agent: v for a in valid if (v := getattr(a, name)) is not None})
        consensus.append(row.consensus.primary_label if row.consensus else None)
        modalities.append(set(row.features.modalities) if row.features else set())
    agents = sorted({agent for v in votes for agent in v} | set(failed))
    alpha_label, fleiss = _label_alpha_and_fleiss(votes)
    alpha: dict[str, float | None] = {"label_nominal": alpha_label}
    for name, table in scales.items():
        matrix = np.array([[t.get(agent, np.nan) for t in table] for agent in agents], dtype=float)
        level: Level = "interval"
        alpha[f"{name}_{level}"] = finite(krippendorff_alpha(matrix, level)) if matrix.size else None
        if name == "intensity" and matrix.size:
            alpha["intensity_ordinal"] = finite(krippendorff_alpha(np.round(matrix, 1), "ordinal"))
    pairs = []
    for i, first in enumerate(agents):
        for second in agents[i + 1 :]:
            both = [v for v in votes if first in v and second in v]
            val = [t for t in scales["valence"] if first in t and second in t]
            rho = finite(spearman([t[first] for t in val], [t[second] for t in val])) if len(val) >= 2 else None
            kappa = finite(cohen_kappa([v[first] for v in both], [v[second] for v in both])) if both else None
            pairs.append(PairAgreement(a=first, b=second, n=len(both), kappa=kappa, spearman_valence=rho))
    per_annotator = {}
    for agent in agents:
        paired = [(v[agent], c) for v, c in zip(votes, consensus, strict=True) if agent in v and c]
        per_annotator[agent] = AnnotatorAgreement(
            n=sum(agent in v for v in votes),
            failed=failed.get(agent, 0),
            accuracy_vs_consensus=finite(sum(x == y for x, y in paired) / len(paired)) if paired else None,
            kappa_vs_consensus=finite(cohen_kappa([x for x, _ in paired], [y for _, y in paired])) if paired else None,
        )
    per_modality = {}
    for modality in ("face", "voice", "text"):
        subset = [v for v, m in zip(votes, modalities, strict=True) if modality in m]
        a_mod, f_mod = _label_alpha_and_fleiss(subset)
        per_modality[modality] = ModalityAgreement(n_segments=len(subset), alpha_nominal=a_mod, fleiss_kappa=f_mod)
    human = None
    if any(h.label for row in all_rows for h in row.human):
        human = human_agreement(all_rows, human_review or ReviewConfig()).model_dump(mode="json")
    return AgreementReport(
        n_segments=len(votes),
        n_annotations=sum(len(v) for v in votes),
        agents=agents,
        alpha=alpha,
        fleiss_kappa=fleiss,
        pairs=pairs,
        per_annotator=per_annotator,
        per_modality=per_modality,
        human=human,
    )
