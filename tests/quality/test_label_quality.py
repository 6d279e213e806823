"""Label quality (CROWDLAB): the numpy port against cleanlab's numbers, the segment-scope score
by hand, and the corpus fit on the simulated corpus with known truth."""

from __future__ import annotations

import math

import numpy as np
import pytest

from emoforge.agents.providers import vote_sources
from emoforge.configs.quality import AggregationConfig
from emoforge.quality.calibration import auroc
from emoforge.quality.label_quality import METHOD, corpus_label_quality, crowdlab, segment_label_quality
from tests.quality.corpus import LABELS, simulated_rows
from tests.quality.records import annotation

# cleanlab 2.9.0, get_label_quality_multiannotator(labels, pred_probs, consensus_method="majority_vote")
# on this input (12 items, 3 annotators, 4 classes, None = not labelled); printed once, pasted here.
REF_LABELS = [
    [None, 3, 0], [0, 0, 0], [0, None, 1], [3, 0, 0], [0, 0, None], [1, None, None],
    [1, 3, None], [2, 2, 1], [0, 0, 0], [1, 0, None], [1, 1, 0], [1, 3, 1],
]  # fmt: skip
REF_PRED = [
    [0.528936, 0.056113, 0.244324, 0.170627], [0.33304, 0.253831, 0.183616, 0.229513],
    [0.011352, 0.376808, 0.108601, 0.503239], [0.14556, 0.316053, 0.383274, 0.155113],
    [0.284674, 0.262204, 0.355599, 0.097523], [0.190225, 0.382112, 0.011969, 0.415694],
    [0.144865, 0.117278, 0.217335, 0.520522], [0.322668, 0.127191, 0.222766, 0.327375],
    [0.366356, 0.047353, 0.077089, 0.509202], [0.269413, 0.14489, 0.168667, 0.41703],
    [0.270955, 0.029843, 0.033498, 0.665704], [0.203362, 0.403102, 0.240224, 0.153312],
]  # fmt: skip
REF_CONSENSUS = [0, 0, 1, 0, 0, 1, 3, 2, 0, 0, 1, 1]
REF_SCORE = [
    0.455821, 0.572753, 0.389289, 0.377914, 0.516655, 0.505365,
    0.452141, 0.404266, 0.584125, 0.34232, 0.338417, 0.465818,
]  # fmt: skip


def test_crowdlab_matches_cleanlab() -> None:
    votes = np.array([[-1 if x is None else x for x in r] for r in REF_LABELS], dtype=np.intp)
    fit = crowdlab(votes, np.array(REF_PRED), np.array(REF_CONSENSUS, dtype=np.intp))
    assert fit.scores == pytest.approx(REF_SCORE, abs=1e-6)
    assert fit.posterior.sum(axis=1) == pytest.approx(np.ones(12))
    # A judge weight of 1 on every vote changes nothing; down-weighting the votes that
    # disagree with the consensus raises its score.
    ones = crowdlab(votes, np.array(REF_PRED), np.array(REF_CONSENSUS), np.ones(votes.shape))
    assert ones.scores == pytest.approx(fit.scores)
    disagree = (votes >= 0) & (votes != np.array(REF_CONSENSUS)[:, None])
    judged = crowdlab(votes, np.array(REF_PRED), np.array(REF_CONSENSUS), np.where(disagree, 0.2, 1.0))
    assert np.all(judged.scores[disagree.any(axis=1)] > fit.scores[disagree.any(axis=1)])


def test_segment_score_by_hand() -> None:
    votes = [annotation("a", ["happy"]), annotation("b", ["happy"]), annotation("c", ["sad"])]
    taxonomy = ["happy", "sad", "angry", "neutral"]
    q = segment_label_quality(votes, [0.8, 0.8, 0.6], {"happy": 0.7, "sad": 0.3}, "happy", taxonomy)
    assert q is not None and (q.method, q.scope, q.fitted_rows) == (METHOD, "segment", None)
    expected = (math.sqrt(3) * 0.7 + 0.8 + 0.8 + 0.4 / 3) / (math.sqrt(3) + 3)
    assert q.score == pytest.approx(expected)
    assert segment_label_quality([], [], {}, None, ["happy"]) is None


def test_consensus_carries_the_segment_score() -> None:
    rows, truth = simulated_rows(n=80, seed=11, human_every=1000)
    scores = [r.consensus.label_quality for r in rows if r.consensus]
    assert len(scores) == 80 and all(q is not None and q.scope == "segment" for q in scores)
    right = [r.consensus.primary_label == truth[r.row_id] for r in rows if r.consensus]
    assert sum(not x for x in right) > 0  # some wrong consensus labels to find
    assert auroc([q.score for q in scores if q], right) > 0.85


def test_corpus_fit_learns_who_to_trust() -> None:
    rows, truth = simulated_rows(n=300, seed=3, human_every=1000)
    fit = corpus_label_quality(rows, AggregationConfig(), LABELS, sources=vote_sources())
    assert fit.skipped is None and len(fit.scores) == 300
    w = fit.annotator_weights
    # Accuracies 0.9 / 0.7 / 0.45 and an annotator that always says neutral (no better than
    # the most common label: the smallest weight CROWDLAB gives).
    assert min(w["good"], w["fair"]) > w["poor"] > w["constant"] == pytest.approx(1e-6)
    assert all(q.scope == "corpus" and q.fitted_rows == 300 for q in fit.scores.values())
    right = [r.consensus.primary_label == truth[r.row_id] for r in rows if r.consensus]
    corpus = auroc([fit.scores[r.row_id].score for r in rows], right)
    segment = auroc([r.consensus.label_quality.score for r in rows if r.consensus and r.consensus.label_quality], right)
    # Measured: 0.861 after the corpus fit vs 0.808 at segment scope (seed 3, 24 wrong of 300).
    assert corpus > 0.84 and corpus > segment + 0.03


def test_corpus_fit_needs_enough_overlap() -> None:
    rows, _ = simulated_rows(n=10, seed=3, human_every=1000)
    fit = corpus_label_quality(rows, AggregationConfig(), LABELS, sources=vote_sources())
    assert fit.scores == {} and fit.skipped is not None and "10 rows" in fit.skipped
