"""The adaptive jury's decisions on scripted votes: the real AdaptiveJury, Jury pool and ledger,
pooled ConsensusBuilder and stopping rule, over annotators whose answers and prices are set."""

from __future__ import annotations

import math

import pytest

from emoforge.agents.adaptive import AdaptiveJury
from emoforge.agents.policy import AdaptivePolicy, Offer, cost_order, top_margin, vote_strength
from emoforge.agents.providers import vote_sources
from emoforge.configs.agents import AdaptiveConfig, TaxonomyConfig
from emoforge.configs.quality import AggregationConfig
from emoforge.quality.consensus import ConsensusBuilder
from emoforge.storage.records import Consensus, Features, JuryDecision, RunContext, Segment
from tests.agents.scripted_jury import ScriptedAnnotator, Vote, scripted_jury

LABELS = ["angry", "happy", "neutral", "sad"]
CTX = RunContext(run_id="adaptive-test", config_hash="0123456789abcdef", emoforge_version="0.0.0")
ACCURACY = {"mini": 0.8, "mid": 0.9, "big": 0.9}
PRICE = {"mini": 0.001, "mid": 0.002, "big": 0.01}


def _segments(n: int) -> list[tuple[Segment, Features]]:
    out = []
    for i in range(n):
        seg = Segment(id=f"rec-0000-{i:05d}", recording_id="rec-0000", index=i, start_s=i, end_s=i + 1.0, kind="speech")
        out.append((seg, Features(segment_id=seg.id)))
    return out


def _run(
    free: list[Vote],
    paid: dict[str, Vote],
    n: int = 1,
    budget_usd: float | None = None,
    config: AdaptiveConfig | None = None,
) -> tuple[list[JuryDecision], dict[str, ScriptedAnnotator]]:
    """Every segment gets the same scripted votes; paid agents are listed most expensive first
    (config order), so asking cheapest first is the policy's doing."""
    agents = [ScriptedAnnotator(f"free{i}", lambda s, v=v: v, 0.0, CTX) for i, v in enumerate(free)]
    by_name = {}
    for name in sorted(paid, key=lambda a: -PRICE[a]):
        by_name[name] = ScriptedAnnotator(name, lambda s, v=paid[name]: v, PRICE[name], CTX)
        agents.append(by_name[name])
    jury = scripted_jury(agents, CTX, LABELS, budget_usd)
    # The judge is left out here (no verdicts, no discount): these tests pin the stopping rule.
    builder = ConsensusBuilder(
        AggregationConfig(judge_discount="none"), CTX, TaxonomyConfig(labels=LABELS), sources=vote_sources()
    )
    policy = AdaptivePolicy(config or AdaptiveConfig(min_confidence=0.8, accuracy=ACCURACY), len(LABELS))
    runner = AdaptiveJury(jury, policy, lambda s, f, a: [], builder.build)
    try:
        results = runner.run(_segments(n))
    finally:
        jury.close()
    return [d for _, d in results], by_name


def test_two_sure_free_votes_that_agree_buy_nothing() -> None:
    decisions, paid = _run([("happy", 0.9), ("happy", 0.9)], {"mini": ("sad", 0.8), "mid": ("sad", 0.9)})
    (d,) = decisions
    # Pooled: each vote multiplies happy's odds against every other label by 0.9*3/0.1 = 27:
    # margin log 729 = 6.59 nats > one vote at accuracy 0.9 (log 27 = 3.30). Nobody paid.
    assert (d.stop, d.route, d.calls, d.calls_saved, d.cost_usd) == ("decisive", "label", 0, 2, 0.0)
    assert d.asked == ["free0", "free1"] and set(d.skipped) == {"mini", "mid"}
    assert d.saved_usd == pytest.approx(0.003)
    assert d.confidence == pytest.approx(729 / 732, abs=1e-6)
    assert all(a.calls == [] for a in paid.values())


def test_a_split_jury_buys_votes_cheapest_first_until_decisive() -> None:
    decisions, paid = _run(
        [("happy", 0.6), ("sad", 0.6)], {"big": ("happy", 0.9), "mid": ("happy", 0.9), "mini": ("happy", 0.8)}
    )
    (d,) = decisions
    # The split free round leaves happy and sad at 0.41 each. At 0.5 USD a label every vote is
    # cheap next to what it adds, so the plan buys mini, then mid. After mid the margin over
    # sad (log 12 + log 27 = 5.78 nats) is more than big's vote can move (log 27 = 3.30): no
    # answer of big's flips the label, so the dearest agent is never asked.
    assert d.asked == ["free0", "free1", "mini", "mid"] and d.skipped == ["big"]
    assert (d.stop, d.route, d.rounds, d.calls, d.calls_saved) == ("decisive", "label", 3, 2, 1)
    assert d.cost_usd == pytest.approx(0.003) and d.saved_usd == pytest.approx(0.01)
    assert [len(paid[a].calls) for a in ("mini", "mid", "big")] == [1, 1, 0]


def test_a_label_worth_less_buys_fewer_votes() -> None:
    # At 0.01 USD a label, mid's vote (0.002 USD) must add 20 points of accuracy: after mini
    # the top label is at 0.89 and no vote left is worth its price.
    config = AdaptiveConfig(min_confidence=0.8, accuracy=ACCURACY, label_value_usd=0.01)
    decisions, _ = _run([("happy", 0.6), ("sad", 0.6)], {"mid": ("happy", 0.9), "mini": ("happy", 0.8)}, config=config)
    assert decisions[0].asked == ["free0", "free1", "mini"] and decisions[0].stop == "decisive"


def test_a_jury_that_never_agrees_asks_everyone_and_is_labelled_exhausted() -> None:
    decisions, paid = _run(
        [("happy", 0.6), ("sad", 0.6)], {"mini": ("angry", 0.8), "mid": ("neutral", 0.9), "big": ("happy", 0.5)}
    )
    assert [len(paid[a].calls) for a in ("mini", "mid", "big")] == [1, 1, 1]
    (d,) = decisions
    assert (d.stop, d.route, d.calls, d.calls_saved) == ("exhausted", "label", 3, 0)
    assert d.asked == ["free0", "free1", "mini", "mid", "big"]


def test_the_corpus_budget_is_shared_by_a_round_and_the_rest_go_to_review() -> None:
    # Three undecided segments, budget for one mini call: one segment gets it, the others
    # stop at once; the one that got mini cannot afford mid either. Nothing past the budget.
    decisions, paid = _run(
        [("happy", 0.6), ("sad", 0.6)], {"mini": ("happy", 0.8), "mid": ("happy", 0.9)}, n=3, budget_usd=0.0015
    )
    assert [d.stop for d in decisions] == ["budget"] * 3
    assert [d.route for d in decisions] == ["review"] * 3
    assert sorted(d.calls for d in decisions) == [0, 0, 1]
    assert len(paid["mini"].calls) == 1 and paid["mid"].calls == []
    assert sum(d.cost_usd for d in decisions) <= 0.0015


def test_the_segment_cap_stops_a_segment_short_of_its_next_vote() -> None:
    config = AdaptiveConfig(min_confidence=0.8, accuracy=ACCURACY, segment_cap_usd=0.0025)
    decisions, paid = _run(
        [("happy", 0.6), ("sad", 0.6)], {"mini": ("angry", 0.8), "mid": ("neutral", 0.9)}, n=2, config=config
    )
    # At 0.5 USD a label both votes are cheap, so the plan asks the more accurate mid first;
    # mid (0.002) fits the cap, mid + mini (0.003) does not.
    assert [(d.stop, d.route, d.calls) for d in decisions] == [("segment_cap", "review", 1)] * 2
    assert len(paid["mid"].calls) == 2 and paid["mini"].calls == []


def test_a_failed_paid_vote_moves_on_to_the_next_agent() -> None:
    decisions, paid = _run([("happy", 0.6), ("sad", 0.6)], {"mini": None, "mid": ("happy", 0.9), "big": ("happy", 0.9)})
    (d,) = decisions
    assert d.asked[:4] == ["free0", "free1", "mini", "mid"] and len(paid["mid"].calls) == 1


def test_flip_bound_gain_and_margin_arithmetic() -> None:
    assert vote_strength(0.8, 4) == pytest.approx(math.log(12))
    assert vote_strength(0.9, 7, exponent=0.5) == pytest.approx(0.5 * math.log(54))
    assert top_margin({"happy": 0.8, "sad": 0.1, "angry": 0.1}, "happy") == pytest.approx(math.log(8))
    assert top_margin({"happy": 1.0}, "happy") == math.inf
    policy = AdaptivePolicy(AdaptiveConfig(accuracy={"a": 0.8, "b": 0.9}), 4)
    assert policy.flip_bound([Offer("a", 1.0), Offer("b", 2.0)]) == pytest.approx(math.log(12) + math.log(27))
    # Two labels at even odds, one vote at 0.9 left: its label is then right 90 % of the time.
    two = AdaptivePolicy(AdaptiveConfig(accuracy={"a": 0.9, "c": 0.7}), 2)
    assert two.gain({"x": 0.5, "y": 0.5}, [Offer("a", 1.0)]) == pytest.approx(0.4)
    # 0.8 against 0.2 and a vote at 0.7 (odds 7:3 < 4:1): it cannot flip the label, no gain.
    assert two.gain({"x": 0.8, "y": 0.2}, [Offer("c", 1.0)]) == pytest.approx(0.0)
    # Two such votes can (7/3 squared > 4): only when both say y, which then wins and is right
    # with P(z = y, both say y) = 0.2 * 0.49 instead of x's 0.8 * 0.09.
    assert two.gain({"x": 0.8, "y": 0.2}, [Offer("c", 1.0), Offer("c", 1.0)]) == pytest.approx(0.2 * 0.49 - 0.8 * 0.09)
    # Past MAX_OUTCOMES (7 labels, 5 agents: 16,807) the outcomes are sampled: five votes at
    # 0.9 on a flat prior elect the truth 99.77 % of the time (summed over all outcomes).
    seven = AdaptivePolicy(AdaptiveConfig(default_accuracy=0.9), 7)
    sampled = seven.gain({k: 1 / 7 for k in "abcdefg"}, [Offer(f"w{i}", 1.0) for i in range(5)])
    assert sampled + 1 / 7 == pytest.approx(0.99765, abs=0.002)
    assert cost_order({"x": 0.0, "y": 0.02, "z": 0.01, "w": 0.01}, ["x", "y", "z", "w"]) == (["x"], ["z", "w", "y"])


def test_a_flagged_consensus_is_never_decisive_while_votes_are_left() -> None:
    policy = AdaptivePolicy(AdaptiveConfig(min_confidence=0.5, label_value_usd=0.001), 4)
    flagged = Consensus(
        segment_id="s",
        method="pooled",
        primary_label="happy",
        distribution={"happy": 0.99, "sad": 0.01},
        confidence=0.99,
        entropy=0.1,
        n_annotations=2,
        n_valid=2,
        needs_review=True,
        review_reasons=["low_judge_score: mean S_final 0.20 < 0.40"],
        provenance=CTX.provenance("aggregate"),
    )
    assert policy.decide(flagged, [Offer("a", 0.01)], 0.0, None).ask == "a"
    assert policy.decide(flagged, [], 0.0, None).stop == "exhausted"
    clean = flagged.model_copy(update={"needs_review": False, "review_reasons": []})
    assert policy.decide(clean, [Offer("a", 0.01)], 0.0, None).stop == "decisive"


def _brute_force(p: list[float], agents: list[tuple[float, float]]) -> float:
    """V(p, R) of agents/policy.py written out independently: every order, every answer."""
    k = len(p)
    best = max(p)
    for i, (acc, price) in enumerate(agents):
        rest = agents[:i] + agents[i + 1 :]
        value = -price
        for v in range(k):
            like = [acc if z == v else (1 - acc) / (k - 1) for z in range(k)]
            joint = [pz * lz for pz, lz in zip(p, like, strict=True)]
            if sum(joint) > 0:
                value += sum(joint) * _brute_force([j / sum(joint) for j in joint], rest)
        best = max(best, value)
    return best


@pytest.mark.parametrize(
    "p, agents",
    [
        ([0.6, 0.4], [(0.9, 0.29)]),
        ([0.6, 0.4], [(0.9, 0.31)]),
        ([0.5, 0.3, 0.2], [(0.8, 0.01), (0.7, 0.002)]),
        ([0.4, 0.4, 0.1, 0.1], [(0.8, 0.002), (0.9, 0.004), (0.9, 0.02)]),
        ([0.9, 0.05, 0.05], [(0.7, 0.05), (0.95, 0.001)]),
    ],
)
def test_the_plan_is_the_bayes_optimal_value(p: list[float], agents: list[tuple[float, float]]) -> None:
    names = [f"w{i}" for i in range(len(agents))]
    config = AdaptiveConfig(accuracy=dict(zip(names, (a for a, _ in agents), strict=True)), label_value_usd=1.0)
    policy = AdaptivePolicy(config, len(p))
    labels = "abcd"[: len(p)]
    plan = policy.plan(
        dict(zip(labels, p, strict=True)), [Offer(n, c) for n, (_, c) in zip(names, agents, strict=True)]
    )
    assert plan.value == pytest.approx(_brute_force(p, agents), abs=1e-9)
    # One vote at 0.9 on 0.6 / 0.4 lifts the expected accuracy to 0.9: worth buying below 0.3.
    if agents == [(0.9, 0.29)]:
        assert plan.ask == "w0" and plan.value == pytest.approx(0.9 - 0.29)
    if agents == [(0.9, 0.31)]:
        assert plan.ask is None and plan.value == pytest.approx(0.6)


def test_objective_usd_asks_the_cheap_vote_first_and_calls_the_strong_one() -> None:
    split = {"happy": 0.45, "sad": 0.45, "angry": 0.05, "neutral": 0.05}
    offers = [Offer("mini", 0.001), Offer("big", 0.02)]
    accuracy = {"mini": 0.75, "big": 0.95}
    usd = AdaptivePolicy(AdaptiveConfig(accuracy=accuracy, label_value_usd=0.1), 4)
    calls = AdaptivePolicy(AdaptiveConfig(accuracy=accuracy, objective="calls", min_gain_per_call=0.05), 4)
    # In USD big costs 20 times mini; by the call they cost the same and big tells more.
    assert usd.plan(split, offers).ask == "mini"
    assert calls.plan(split, offers).ask == "big"


def test_a_vote_that_cannot_flip_the_label_is_never_bought_however_cheap() -> None:
    policy = AdaptivePolicy(AdaptiveConfig(accuracy={"a": 0.7}, label_value_usd=1e6), 4)
    sure = Consensus(
        segment_id="s",
        method="pooled",
        primary_label="happy",
        distribution={"happy": 0.9, "sad": 0.05, "angry": 0.05},
        confidence=0.9,
        entropy=0.3,
        n_annotations=2,
        n_valid=2,
        needs_review=False,
        provenance=CTX.provenance("aggregate"),
    )
    # log(0.9 / 0.05) = 2.89 nats > one vote at 0.7 on 4 labels (log 7 = 1.95).
    d = policy.decide(sure, [Offer("a", 1e-9)], 0.0, None)
    assert (d.stop, d.gain) == ("decisive", 0.0) and d.margin > d.flip_bound


def test_the_old_max_gain_key_is_refused_with_what_replaced_it() -> None:
    with pytest.raises(ValueError, match=r"max_gain is gone.*label_value_usd or min_gain_per_call"):
        AdaptiveConfig.model_validate({"max_gain": 0.05})
