"""Agreement statistics against published examples and reference implementations."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import spearmanr
from sklearn.metrics import cohen_kappa_score

from emoforge.quality.agreement import (
    cohen_kappa,
    fleiss_kappa,
    icc,
    krippendorff_alpha,
    krippendorff_alpha_counts,
    spearman,
    value_counts,
)

NAN = np.nan
# Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", section C: 4 coders x 12 units.
KRIPPENDORFF_EXAMPLE = [
    [1, 2, 3, 3, 2, 1, 4, 1, 2, NAN, NAN, NAN],
    [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, NAN, 3],
    [NAN, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, NAN],
    [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, NAN],
]
# Fleiss (1971) as reproduced on Wikipedia: 10 subjects, 14 raters, 5 categories, kappa = 0.210.
FLEISS_EXAMPLE = [
    [0, 0, 0, 0, 14],
    [0, 2, 6, 4, 2],
    [0, 0, 3, 5, 6],
    [0, 3, 9, 2, 0],
    [2, 2, 8, 1, 1],
    [7, 7, 0, 0, 0],
    [3, 2, 6, 3, 0],
    [2, 5, 3, 2, 2],
    [6, 5, 2, 1, 0],
    [0, 2, 2, 3, 7],
]
# Shrout & Fleiss (1979), Table 2: 6 targets x 4 judges.
SHROUT_FLEISS = [[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8], [7, 1, 2, 6], [10, 5, 6, 9], [6, 2, 4, 7]]


@pytest.mark.parametrize(("level", "expected"), [("nominal", 0.743), ("ordinal", 0.815), ("interval", 0.849)])
def test_krippendorff_published_example(level: Any, expected: float) -> None:
    assert krippendorff_alpha(KRIPPENDORFF_EXAMPLE, level) == pytest.approx(expected, abs=5e-4)


@pytest.mark.parametrize("level", ["nominal", "ordinal", "interval"])
def test_krippendorff_counts_equal_reliability_matrix(level: Any) -> None:
    import krippendorff

    counts, values = value_counts(KRIPPENDORFF_EXAMPLE)
    ours = krippendorff_alpha_counts(counts, level, values)
    assert ours == pytest.approx(krippendorff_alpha(KRIPPENDORFF_EXAMPLE, level), abs=1e-12)
    assert ours == pytest.approx(
        krippendorff.alpha(reliability_data=KRIPPENDORFF_EXAMPLE, level_of_measurement=level), abs=1e-9
    )


def test_fleiss_published_example() -> None:
    assert fleiss_kappa(FLEISS_EXAMPLE) == pytest.approx(0.210, abs=5e-4)


@pytest.mark.parametrize(
    ("form", "expected"),
    [("ICC1", 0.17), ("ICC2", 0.29), ("ICC3", 0.71), ("ICC1k", 0.44), ("ICC2k", 0.62), ("ICC3k", 0.91)],
)
def test_icc_shrout_fleiss(form: Any, expected: float) -> None:
    assert icc(SHROUT_FLEISS, form) == pytest.approx(expected, abs=0.005)


@pytest.mark.parametrize("weights", [None, "linear", "quadratic"])
def test_cohen_kappa_matches_sklearn(weights: Any) -> None:
    rng = np.random.default_rng(7)
    a = rng.integers(0, 5, 200)
    b = np.where(rng.random(200) < 0.6, a, rng.integers(0, 5, 200))
    assert cohen_kappa(a, b, weights) == pytest.approx(cohen_kappa_score(a, b, weights=weights), abs=1e-12)


def test_cohen_kappa_strings() -> None:
    a = ["happy", "sad", "sad", "angry", "happy", "neutral"]
    b = ["happy", "sad", "angry", "angry", "neutral", "neutral"]
    assert cohen_kappa(a, b) == pytest.approx(cohen_kappa_score(a, b), abs=1e-12)


def test_spearman_matches_scipy_with_ties() -> None:
    rng = np.random.default_rng(3)
    x = rng.integers(0, 6, 80).astype(float)
    y = x + rng.normal(0, 2, 80).round()
    assert spearman(x, y) == pytest.approx(spearmanr(x, y).statistic, abs=1e-12)


codes = st.lists(st.integers(0, 4), min_size=2, max_size=40)


@settings(max_examples=60, deadline=None)
@given(codes, st.integers(2, 6), st.sampled_from(["nominal", "ordinal", "interval"]))
def test_alpha_is_one_for_perfect_agreement(units: list[int], coders: int, level: Any) -> None:
    if len(set(units)) < 2:
        units = [*units, (units[0] + 1) % 5]  # alpha is undefined without any variation
    matrix = np.tile(np.asarray(units, dtype=float), (coders, 1))
    assert krippendorff_alpha(matrix, level) == pytest.approx(1.0)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 3), st.integers(0, 3)), min_size=2, max_size=50),
    st.sampled_from([None, "linear", "quadratic"]),
)
def test_kappa_is_symmetric(pairs: list[tuple[int, int]], weights: Any) -> None:
    a = np.array([p[0] for p in pairs])
    b = np.array([p[1] for p in pairs])
    k_ab, k_ba = cohen_kappa(a, b, weights), cohen_kappa(b, a, weights)
    assert (np.isnan(k_ab) and np.isnan(k_ba)) or k_ab == pytest.approx(k_ba, abs=1e-12)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.lists(st.integers(0, 6), min_size=4, max_size=4), min_size=2, max_size=30))
def test_alpha_counts_agree_with_krippendorff_package(rows: list[list[int]]) -> None:
    import krippendorff

    counts = np.asarray(rows, dtype=float)
    if (counts.sum(axis=1) >= 2).sum() < 1 or (counts.sum(axis=0) > 0).sum() < 2:
        return  # undefined: no pairable unit or a single value overall
    ours = krippendorff_alpha_counts(counts)
    theirs = krippendorff.alpha(value_counts=counts, level_of_measurement="nominal")
    assert (np.isnan(ours) and np.isnan(theirs)) or ours == pytest.approx(theirs, abs=1e-9)
