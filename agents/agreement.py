"""Agreement statistics: Krippendorff's alpha, Cohen's and Fleiss' kappa, Spearman, ICC.

Every statistic is a plain function over numpy arrays so it can be checked against a
published example; ``corpus_agreement`` applies them to shard rows (per annotator pair,
per modality, pipeline vs human) and returns an ``AgreementReport``.

Krippendorff's alpha works on a *value-count* matrix ``n[u, c]`` (how many coders gave value
``c`` to unit ``u``), which is what a crowd vote table already is; a reliability matrix
(coders x units, NaN = missing) is converted to counts first. With ``m_u = sum_c n[u, c]``
and only units with ``m_u >= 2`` pairable, the coincidence matrix is

    o[c, k] = sum_u (n[u, c] * n[u, k] - [c == k] * n[u, c]) / (m_u - 1)

and with ``n_c = sum_k o[c, k]``, ``n = sum_c n_c``:

    alpha = 1 - (n - 1) * sum_{c,k} o[c, k] d[c, k] / sum_{c,k} n_c n_k d[c, k]

where ``d`` is the squared difference function of the level of measurement: nominal
``[c != k]``; interval ``(v_c - v_k)^2``; ordinal ``(sum_{g=c..k} n_g - (n_c + n_k) / 2)^2``
over the values in rank order (Krippendorff 2011, "Computing Krippendorff's alpha").
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from pydantic import Field

from emoforge.storage.records import Record, SegmentRow, Status

Level = Literal["nominal", "ordinal", "interval"]
Weights = Literal["linear", "quadratic"] | None


def value_counts(reliability: ArrayLike, values: Sequence[float] | None = None) -> tuple[NDArray, NDArray]:
    """Convert a coders x units reliability matrix (NaN = missing) to units x values counts.

    Returns:
        (counts, values): ``counts[u, i]`` coders who gave ``values[i]`` to unit ``u``.
    """
    data = np.asarray(reliability, dtype=float)
    if data.ndim != 2:
        raise ValueError(f"reliability matrix must be 2-D (coders x units), got shape {data.shape}")
    domain = np.unique(data[~np.isnan(data)]) if values is None else np.asarray(values, dtype=float)
    counts = (
        np.stack([(data == v).sum(axis=0) for v in domain], axis=1) if domain.size else np.zeros((data.shape[1], 0))
    )
    return counts.astype(float), domain


def _distance(level: Level, values: NDArray, n_c: NDArray) -> NDArray:
    if level == "nominal":
        return 1.0 - np.eye(len(values))
    if level == "interval":
        return np.subtract.outer(values, values) ** 2
    if level == "ordinal":
        # Cumulative marginals in rank order: sum_{g=c..k} n_g - (n_c + n_k)/2.
        cum = np.cumsum(n_c)
        lo = np.minimum.outer(np.arange(len(values)), np.arange(len(values)))
        hi = np.maximum.outer(np.arange(len(values)), np.arange(len(values)))
        between = cum[hi] - cum[lo] + n_c[lo]
        return (between - (n_c[:, None] + n_c[None, :]) / 2.0) ** 2
    raise ValueError(f"unknown level of measurement {level!r}")


def krippendorff_alpha_counts(counts: ArrayLike, level: Level = "nominal", values: ArrayLike | None = None) -> float:
    """Krippendorff's alpha from a units x values count matrix (see the module docstring).

    Args:
        counts: ``counts[u, i]`` = coders who gave value ``i`` to unit ``u``.
        level: nominal, ordinal or interval.
        values: numeric value of each column (interval; ordinal uses only their order, which
            must be ascending). Defaults to 0..V-1.

    Returns:
        alpha, or NaN when there is no pairable unit or no variation at all.
    """
    n_uc = np.asarray(counts, dtype=float)
    if n_uc.ndim != 2:
        raise ValueError(f"counts must be 2-D (units x values), got shape {n_uc.shape}")
    vals = np.arange(n_uc.shape[1], dtype=float) if values is None else np.asarray(values, dtype=float)
    if len(vals) != n_uc.shape[1]:
        raise ValueError(f"{len(vals)} values for {n_uc.shape[1]} count columns")
    m_u = n_uc.sum(axis=1)
    pairable = n_uc[m_u >= 2]
    if pairable.size == 0:
        return float("nan")
    inv = 1.0 / (pairable.sum(axis=1) - 1.0)
    coincidence = (pairable * inv[:, None]).T @ pairable - np.diag((pairable * inv[:, None]).sum(axis=0))
    n_c = coincidence.sum(axis=1)
    n = n_c.sum()
    delta = _distance(level, vals, n_c)
    expected = float(n_c @ delta @ n_c)
    if expected == 0.0:
        return float("nan")
    return 1.0 - (n - 1.0) * float((coincidence * delta).sum()) / expected


def krippendorff_alpha(reliability: ArrayLike, level: Level = "nominal") -> float:
    """Krippendorff's alpha from a coders x units reliability matrix (NaN = missing)."""
    counts, values = value_counts(reliability)
    return krippendorff_alpha_counts(counts, level=level, values=values)


def cohen_kappa(a: ArrayLike, b: ArrayLike, weights: Weights = None) -> float:
    """Cohen's kappa between two raters' labels; ``weights`` linear/quadratic for ordinal codes.

    kappa = 1 - sum(w * O) / sum(w * E), with O the observed confusion proportions, E the
    outer product of the marginals and w = [i != j], |i - j| or (i - j)^2 over sorted codes.
    """
    x, y = np.asarray(a), np.asarray(b)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"raters need equal-length 1-D label arrays, got {x.shape} and {y.shape}")
    labels, idx = np.unique(np.concatenate([x, y]), return_inverse=True)
    k = len(labels)
    observed = np.zeros((k, k))
    np.add.at(observed, (idx[: len(x)], idx[len(x) :]), 1.0)
    observed /= observed.sum()
    expected = np.outer(observed.sum(axis=1), observed.sum(axis=0))
    grid = np.subtract.outer(np.arange(k), np.arange(k))
    w = {None: (grid != 0).astype(float), "linear": np.abs(grid).astype(float), "quadratic": grid**2.0}[weights]
    denom = float((w * expected).sum())
    return float("nan") if denom == 0.0 else 1.0 - float((w * observed).sum()) / denom


def fleiss_kappa(counts: ArrayLike) -> float:
    """Fleiss' kappa from a subjects x categories count matrix.

    P_i = (sum_j n_ij^2 - n_i) / (n_i (n_i - 1)), p_j = sum_i n_ij / sum n, P_e = sum_j p_j^2,
    kappa = (mean P_i - P_e) / (1 - P_e). Subjects may have different rater counts n_i
    (each P_i uses its own); subjects with fewer than two ratings are dropped.
    """
    n_ij = np.asarray(counts, dtype=float)
    n_i = n_ij.sum(axis=1)
    n_ij, n_i = n_ij[n_i >= 2], n_i[n_i >= 2]
    if n_ij.size == 0:
        return float("nan")
    p_i = ((n_ij**2).sum(axis=1) - n_i) / (n_i * (n_i - 1.0))
    p_j = n_ij.sum(axis=0) / n_ij.sum()
    p_e = float((p_j**2).sum())
    return float("nan") if p_e == 1.0 else (float(p_i.mean()) - p_e) / (1.0 - p_e)


def spearman(a: ArrayLike, b: ArrayLike) -> float:
    """Spearman's rho: Pearson correlation of average-tie ranks."""
    from scipy.stats import rankdata

    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if x.shape != y.shape or x.ndim != 1 or len(x) < 2:
        raise ValueError(f"need two equal-length 1-D arrays of length >= 2, got {x.shape} and {y.shape}")
    rx, ry = rankdata(x) - (len(x) + 1) / 2.0, rankdata(y) - (len(y) + 1) / 2.0
    denom = float(np.sqrt((rx**2).sum() * (ry**2).sum()))
    return float("nan") if denom == 0.0 else float((rx * ry).sum()) / denom


ICCForm = Literal["ICC1", "ICC2", "ICC3", "ICC1k", "ICC2k", "ICC3k"]


def icc(ratings: ArrayLike, form: ICCForm = "ICC2") -> float:
    """Intraclass correlation (Shrout & Fleiss 1979) of a targets x raters matrix, no missing.

    With n targets, k raters and the two-way ANOVA mean squares BMS (targets), JMS (raters),
    EMS (residual), WMS (within targets):
        ICC1  = (BMS - WMS) / (BMS + (k-1) WMS)            ICC1k = (BMS - WMS) / BMS
        ICC2  = (BMS - EMS) / (BMS + (k-1) EMS + k (JMS - EMS) / n)
        ICC2k = (BMS - EMS) / (BMS + (JMS - EMS) / n)
        ICC3  = (BMS - EMS) / (BMS + (k-1) EMS)            ICC3k = (BMS - EMS) / BMS
    """
    x = np.asarray(ratings, dtype=float)
    if x.ndim != 2 or min(x.shape) < 2 or np.isnan(x).any():
        raise ValueError(f"ICC needs a complete targets x raters matrix (>= 2 x 2), got {x.shape}")
    n, k = x.shape
    grand = x.mean()
    ss_targets = k * ((x.mean(axis=1) - grand) ** 2).sum()
    ss_raters = n * ((x.mean(axis=0) - grand) ** 2).sum()
    ss_total = ((x - grand) ** 2).sum()
    bms = ss_targets / (n - 1)
    jms = ss_raters / (k - 1)
    ems = (ss_total - ss_targets - ss_raters) / ((n - 1) * (k - 1))
    wms = (ss_total - ss_targets) / (n * (k - 1))
    forms = {
        "ICC1": (bms - wms, bms + (k - 1) * wms),
        "ICC1k": (bms - wms, bms),
        "ICC2": (bms - ems, bms + (k - 1) * ems + k * (jms - ems) / n),
        "ICC2k": (bms - ems, bms + (jms - ems) / n),
        "ICC3": (bms - ems, bms + (k - 1) * ems),
        "ICC3k": (bms - ems, bms),
    }
    num, den = forms[form]
    return float("nan") if den == 0.0 else float(num / den)


def majority_accuracy(counts: ArrayLike, truth: ArrayLike) -> float:
    """Expected accuracy of the majority vote of each unit's counts against ``truth``
    (column indices); a tie among t labels that includes the truth scores 1/t, which is the
    accuracy of breaking ties at random."""
    n_uc = np.asarray(counts, dtype=float)
    t = np.asarray(truth, dtype=int)
    top = n_uc == n_uc.max(axis=1, keepdims=True)
    hit = top[np.arange(len(t)), t] / top.sum(axis=1)
    return float(hit.mean())


def response_accuracy(counts: ArrayLike, truth: ArrayLike) -> float:
    """Share of individual responses equal to the truth (per-response recognition rate)."""
    n_uc = np.asarray(counts, dtype=float)
    t = np.asarray(truth, dtype=int)
    return float(n_uc[np.arange(len(t)), t].sum() / n_uc.sum())


# --------------------------------------------------------------------------- corpus report


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


def finite(x: float | None) -> float | None:
    """JSON-friendly statistic: NaN (undefined) becomes None, values are rounded to 6 places."""
    return None if x is None or math.isnan(x) else round(float(x), 6)


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
            block, computed by ``agents.review.agreement`` when any row has a human label.
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
        from emoforge.agents.review.agreement import human_agreement
        from emoforge.configs.release import ReviewConfig

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
