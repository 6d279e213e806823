"""Aggregators: reference values from crowd-kit 1.4.2, recovery of known truth, properties."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emoforge.quality.aggregation import AGGREGATORS, MACE, DawidSkene, MajorityVote, WeightedVote

# Ten tasks, four workers, labels a/b/c (one string per worker, task i = character i).
ANSWERS = {"w1": "aabbccabca", "w2": "abbbccaacc", "w3": "aabcccbbca", "w4": "cabbacabba"}
# crowd-kit 1.4.2: DawidSkene(n_iter=1, tol=-inf).fit(df).probas_ (rows t0..t9, columns a, b, c).
CROWDKIT_DS_ONE_ITER = [
    [0.989106, 0.0, 0.010894],
    [0.981833, 0.012111, 0.006056],
    [0.001363, 0.998637, 0.0],
    [0.000673, 0.986989, 0.012337],
    [0.006563, 0.001639, 0.991798],
    [0.001586, 0.0, 0.998414],
    [0.954581, 0.045419, 0.0],
    [0.006329, 0.993671, 0.0],
    [0.000655, 0.009003, 0.990342],
    [0.950534, 0.001099, 0.048367],
]
# ... and its errors_ for w4 (rows observed a, b, c; columns true a, b, c).
CROWDKIT_DS_W4 = [[0.743217, 0.01977, 0.342103], [0.002317, 0.98023, 0.327865], [0.254466, 0.0, 0.330033]]


def long_frame(answers: dict[str, str]) -> pd.DataFrame:
    rows = [(f"t{i}", worker, label) for worker, labels in answers.items() for i, label in enumerate(labels)]
    return pd.DataFrame(rows, columns=["task", "worker", "label"])


def test_dawid_skene_matches_crowdkit_after_one_iteration() -> None:
    ds = DawidSkene(n_iter=1, tol=1e-300).fit(long_frame(ANSWERS))
    np.testing.assert_allclose(ds.probas_.to_numpy(), CROWDKIT_DS_ONE_ITER, atol=2e-6)
    np.testing.assert_allclose(ds.errors_.loc["w4"].to_numpy(), CROWDKIT_DS_W4, atol=2e-6)
    assert ds.n_iter_ == 1


def test_dawid_skene_learns_a_flipping_worker() -> None:
    truth = "hshshhsssh"
    flip = {"h": "s", "s": "h"}
    answers = {
        "w1": truth,
        "w2": "".join(flip[t] if i in (3, 7) else t for i, t in enumerate(truth)),
        "w3": "".join(flip[t] for t in truth),  # always wrong: DS learns the flip and uses it
        "w4": "h" * len(truth),  # says h whatever the clip
        "w5": "".join(flip[t] if i % 2 else t for i, t in enumerate(truth)),
    }
    df = long_frame(answers)
    expected = pd.Series(list(truth), index=[f"t{i}" for i in range(len(truth))])
    mv_acc = (MajorityVote().fit(df).labels_ == expected).mean()
    ds = DawidSkene().fit(df)
    assert (ds.labels_ == expected).mean() == 1.0
    assert mv_acc < 0.8
    np.testing.assert_allclose(ds.errors_.loc["w3"].to_numpy(), [[0, 1], [1, 0]], atol=1e-6)
    assert ds.loss_history_ == sorted(ds.loss_history_)  # EM never lowers the ELBO


def test_majority_vote_shares_and_ties() -> None:
    df = pd.DataFrame(
        [
            ("t1", "w1", "sad"),
            ("t1", "w2", "sad"),
            ("t1", "w3", "happy"),
            ("t2", "w1", "happy"),
            ("t2", "w2", "sad"),
        ],
        columns=["task", "worker", "label"],
    )
    mv = MajorityVote().fit(df)
    assert mv.probas_.loc["t1"].to_dict() == pytest.approx({"happy": 1 / 3, "sad": 2 / 3})
    assert mv.predict().to_dict() == {"t1": "sad", "t2": "happy"}  # tie -> first label in sorted order
    assert mv.skills_.to_dict() == pytest.approx({"w1": 1.0, "w2": 0.5, "w3": 0.0})


def test_weighted_vote_follows_the_judge() -> None:
    df = pd.DataFrame(
        [
            ("t1", "w1", "sad", 0.2),
            ("t1", "w2", "sad", 0.1),
            ("t1", "w3", "happy", 0.9),
            ("t2", "w1", "angry", 0.0),
            ("t2", "w2", "happy", 0.0),
            ("t2", "w3", "angry", 0.0),
        ],
        columns=["task", "worker", "label", "weight"],
    )
    wv = WeightedVote().fit(df)
    assert wv.probas_.loc["t1", "happy"] == pytest.approx(0.75)
    assert wv.labels_["t1"] == "happy"
    assert wv.labels_["t2"] == "angry" and wv.fallback_tasks_ == ["t2"]  # all judged 0: plain counts
    with pytest.raises(ValueError, match="weight"):
        WeightedVote().fit(df.drop(columns="weight"))
    with pytest.raises(ValueError, match="NaN"):
        WeightedVote().fit(df.assign(weight=np.nan))


def test_mace_finds_spammers() -> None:
    rng = np.random.default_rng(11)
    labels = np.array(["angry", "happy", "neutral", "sad"])
    truth = rng.integers(0, 4, 150)
    rows = []
    for t, z in enumerate(truth):
        for w, accuracy in enumerate([0.9, 0.85, 0.8]):
            y = z if rng.random() < accuracy else rng.integers(0, 4)
            rows.append((t, f"good{w}", labels[y]))
        rows.append((t, "constant", "neutral"))
        rows.append((t, "random", labels[rng.integers(0, 4)]))
    df = pd.DataFrame(rows, columns=["task", "worker", "label"])
    mace = MACE().fit(df)
    competence = mace.competence_
    assert competence[["good0", "good1", "good2"]].min() > 0.7
    assert competence[["constant", "random"]].max() < 0.2
    assert mace.spam_distribution_.loc["constant", "neutral"] > 0.9
    expected = pd.Series(labels[truth], index=range(len(truth)))
    mace_acc = (mace.labels_ == expected).mean()
    assert mace_acc >= (MajorityVote().fit(df).labels_ == expected).mean()
    assert mace_acc > 0.95


def test_predict_without_fit_raises() -> None:
    with pytest.raises(RuntimeError, match="not fitted"):
        DawidSkene().predict()


votes = st.lists(
    st.tuples(st.integers(0, 5), st.integers(0, 3), st.sampled_from(["a", "b", "c"]), st.floats(0.0, 1.0)),
    min_size=1,
    max_size=40,
)


@settings(max_examples=40, deadline=None)
@given(votes, st.sampled_from(sorted(AGGREGATORS)))
def test_probabilities_sum_to_one(rows: list[tuple[int, int, str, float]], name: str) -> None:
    df = pd.DataFrame(rows, columns=["task", "worker", "label", "weight"])
    df = df.drop_duplicates(["task", "worker"])
    model = AGGREGATORS[name]().fit(df)
    probas = model.predict_proba()
    np.testing.assert_allclose(probas.sum(axis=1).to_numpy(), 1.0, atol=1e-9)
    assert (probas.to_numpy() >= 0).all()
    assert set(probas.index) == set(df["task"])
    top = probas.max(axis=1)
    chosen = np.array([probas.loc[t, label] for t, label in model.predict().items()])
    np.testing.assert_allclose(chosen, top.to_numpy())
