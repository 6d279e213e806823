"""The pooled vote's per-agent exponents fitted on labelled segments (fit_pool_weights)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from emoforge.agents.recognizers.base import output_prior, vote_priors
from emoforge.configs import load_config
from emoforge.quality.aggregation.pooled import PooledVote, fit_pool_weights
from emoforge.quality.calibration import expected_calibration_error

LABELS = ["a", "b", "c", "d"]


def simulated(n: int, seed: int) -> tuple[pd.DataFrame, dict[int, str]]:
    """A calibrated worker, an exact copy of it (shared errors), and an over-confident one."""
    rng = np.random.default_rng(seed)
    rows, truth = [], {}
    for i in range(n):
        y = LABELS[rng.integers(4)]
        truth[i] = y
        good = y if rng.random() < 0.7 else LABELS[rng.integers(4)]
        rows += [
            {"task": i, "worker": "good", "label": good, "confidence": 0.7},
            {"task": i, "worker": "copy", "label": good, "confidence": 0.7},
            {
                "task": i,
                "worker": "over",
                "label": y if rng.random() < 0.4 else LABELS[rng.integers(4)],
                "confidence": 0.9,
            },
        ]
    return pd.DataFrame(rows), truth


def ece_of(df: pd.DataFrame, truth: dict[int, str], weights: dict[str, float] | None) -> float:
    vote = PooledVote(LABELS, weights=weights).fit(df)
    conf = [float(vote.probas_.loc[t, vote.labels_[t]]) for t in truth]
    return expected_calibration_error(conf, [vote.labels_[t] == truth[t] for t in truth])


def test_weights_split_a_copied_vote_and_shrink_an_overconfident_one() -> None:
    df, truth = simulated(600, seed=0)
    w = fit_pool_weights(df, truth, LABELS)
    # Two copies of one calibrated vote together weigh about what the vote is worth once.
    assert w["good"] == pytest.approx(w["copy"], abs=1e-3)
    assert 0.8 < w["good"] + w["copy"] < 1.6
    assert w["over"] < 0.6
    # And on fresh juries the fitted consensus is better calibrated than the plain product.
    test, test_truth = simulated(600, seed=1)
    assert ece_of(test, test_truth, w) < 0.5 * ece_of(test, test_truth, None)


def test_few_labels_keep_weights_near_one() -> None:
    df, truth = simulated(600, seed=2)
    few = dict(list(truth.items())[:3])
    w = fit_pool_weights(df, few, LABELS, l2=10.0)
    assert all(abs(v - 1.0) < 0.3 for v in w.values())
    assert fit_pool_weights(df, {}, LABELS) == {}


def test_the_shipped_recognizers_declare_the_label_distribution_they_were_trained_on() -> None:
    text = output_prior("text_model", None)
    voice = output_prior("voice_model", None)
    face = output_prior("face_model", None)
    assert text is not None and voice is not None and face is not None
    for prior in (text, voice, face):
        assert sum(prior.values()) == pytest.approx(1.0)
    # MELD train + dev: 5,177 of 11,086 lines neutral. Voice: three corpora of equal weight, each
    # class equal within its corpus (RAVDESS 7 classes, nEMO and EmoDB 6 each, neutral in all
    # three). FER2013: happy most common.
    assert text["neutral"] == pytest.approx(5177 / 11086, abs=1e-4)
    assert voice["neutral"] == pytest.approx((1 / 7 + 1 / 6 + 1 / 6) / 3, abs=1e-6)
    assert voice["disgusted"] == pytest.approx((1 / 7 + 1 / 6) / 3, abs=1e-6)
    assert max(face, key=face.__getitem__) == "happy"
    # Agents of other kinds, or a user's own face weights, have none: read as uniform.
    assert output_prior("face_model", "/some/own/weights.onnx") is None
    assert output_prior("openai", None) is None
    assert set(vote_priors(load_config(None).agents)) == {"face", "voice", "text"}
