"""Agreement statistics: Krippendorff's alpha, Cohen's and Fleiss' kappa, Spearman, ICC.

Plain functions over numpy arrays, each checkable against a published example; they depend
on nothing in the package, so the corpus report (``emoforge/quality/agreement.py``) and the human
review agreement (``emoforge/quality/human_agreement.py``) both build on them without importing each
other (they used to form an import cycle).

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
from collections.abc import Sequence
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

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


def finite(x: float | None) -> float | None:
    """JSON-friendly statistic: NaN (undefined) becomes None, values are rounded to 6 places."""
    return None if x is None or math.isnan(x) else round(float(x), 6)
