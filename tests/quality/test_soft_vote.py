def test_soft_vote_weak_disagreeing_annotators_give_low_confidence() -> None:
    import pandas as pd

    from emoforge.quality.aggregation import SoftVote

    rows = []
    # Two hesitant annotators that disagree; one confident annotator on another task.
    for worker, dist in (
        ("a", {"sad": 0.3, "neutral": 0.7 / 2, "happy": 0.7 / 2}),
        ("b", {"happy": 0.3, "neutral": 0.7 / 2, "sad": 0.7 / 2}),
    ):
        rows += [{"task": "t1", "worker": worker, "label": k, "prob": p, "weight": 1.0} for k, p in dist.items()]
    rows += [{"task": "t2", "worker": "a", "label": "angry", "prob": 1.0, "weight": 0.5}]
    model = SoftVote().fit(pd.DataFrame(rows))
    proba = model.predict_proba()
    assert abs(proba.loc["t1"].sum() - 1.0) < 1e-12
    assert proba.loc["t1"].max() < 0.4  # not a confident 50 % "majority"
    assert model.predict().loc["t2"] == "angry" and proba.loc["t2", "angry"] == 1.0


def test_soft_vote_equals_majority_for_one_hot_unit_weights() -> None:
    import pandas as pd

    from emoforge.quality.aggregation import MajorityVote, SoftVote

    votes = pd.DataFrame({"task": ["t"] * 3, "worker": ["a", "b", "c"], "label": ["x", "x", "y"]})
    soft = SoftVote().fit(votes.assign(prob=1.0, weight=1.0)).predict_proba()
    hard = MajorityVote().fit(votes).predict_proba()
    pd.testing.assert_frame_equal(soft.sort_index(axis=1), hard.sort_index(axis=1), check_names=False)


def test_vote_distribution_spreads_doubt_evenly_not_onto_runner_ups() -> None:
    from emoforge.quality.consensus import vote_distribution
    from tests.quality.records import annotation

    a = annotation("x", ["sad"]).model_copy(
        update={"confidence": 0.3, "label_scores": {"sad": 0.6, "neutral": 0.3, "happy": 0.1}}
    )
    labels = ["neutral", "happy", "sad", "angry"]
    dist = vote_distribution(a, labels, 0.3)
    assert abs(dist["sad"] - (0.3 + 0.7 / 4)) < 1e-12
    # The runner-up score (neutral 0.3) earns nothing over a label the agent never scored.
    assert dist["neutral"] == dist["happy"] == dist["angry"] and abs(sum(dist.values()) - 1) < 1e-12
    assert vote_distribution(a, labels, 0.0) == {k: 0.25 for k in labels}


def test_consensus_of_two_weak_disagreeing_agents_goes_to_review() -> None:
    from emoforge.agents.providers import vote_sources
    from emoforge.configs.quality import AggregationConfig
    from emoforge.quality.consensus import ConsensusBuilder
    from tests.quality.records import CTX, SEGMENT, annotation
    from tests.quality.test_consensus import verdict

    anns = [
        annotation("v", ["disgusted"]).model_copy(
            update={"confidence": 0.23, "label_scores": {"disgusted": 0.55, "happy": 0.2, "neutral": 0.25}}
        ),
        annotation("t", ["neutral"]).model_copy(
            update={"confidence": 0.15, "label_scores": {"neutral": 0.36, "sad": 0.24, "happy": 0.4}}
        ),
    ]
    verdicts = [verdict(a, 0.5) for a in anns]
    c = ConsensusBuilder(AggregationConfig(method="soft"), CTX, sources=vote_sources()).build(
        SEGMENT, None, anns, verdicts
    )
    assert c.method == "soft" and c.confidence < 0.5
    assert c.needs_review and any(r.startswith("low_confidence") for r in c.review_reasons)


def test_soft_vote_reads_each_vote_against_its_agents_output_prior() -> None:
    """A text model trained on 42 % neutral dialogue says "neutral" at 0.7: worth a
    likelihood ratio of 1.7, not a 0.7 share of the mixture. Against a voice vote "sad"
    at 0.6 (uniform prior over 7 labels, ratio 4.2), the soft vote must follow the
    stronger evidence, as the pooled vote does; without the prior, the text model's base
    rate would outvote it (neutral 0.40 vs sad 0.35)."""
    from emoforge.agents.providers import vote_sources
    from emoforge.configs.quality import AggregationConfig
    from emoforge.quality.consensus import ConsensusBuilder
    from tests.quality.records import CTX, SEGMENT, annotation
    from tests.quality.test_consensus import verdict

    labels = ["angry", "disgusted", "fearful", "happy", "neutral", "sad", "surprised"]
    prior = {k: (0.42 if k == "neutral" else 0.58 / 6) for k in labels}
    anns = [
        annotation("text", ["neutral"]).model_copy(update={"confidence": 0.7, "backend": "text_model"}),
        annotation("voice", ["sad"]).model_copy(update={"confidence": 0.6, "backend": "voice_model"}),
    ]
    verdicts = [verdict(a, 1.0) for a in anns]
    from emoforge.configs.agents import TaxonomyConfig

    taxonomy = TaxonomyConfig(labels=labels, embedding_model=None)
    config = AggregationConfig(method="soft")
    with_prior = ConsensusBuilder(config, CTX, taxonomy, {"text": prior}, sources=vote_sources()).build(
        SEGMENT, None, anns, verdicts
    )
    assert with_prior.primary_label == "sad"
    # text on a uniform prior: neutral 1.667 : 0.517 for each other label -> 0.349 / 0.108;
    # voice: sad 0.6 + 0.4 / 7 = 0.657; the mixture: sad (0.108 + 0.657) / 2 = 0.383.
    assert abs(with_prior.distribution["sad"] - 0.383) < 0.002
    assert abs(with_prior.distribution["neutral"] - (0.349 + 0.4 / 7) / 2) < 0.002
    without = ConsensusBuilder(config, CTX, taxonomy, sources=vote_sources()).build(SEGMENT, None, anns, verdicts)
    assert without.primary_label == "neutral"
