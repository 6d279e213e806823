"""Which vote the adaptive jury buys next, and when it stops: a plan on the pooled consensus.

After each round the consensus builder pools the segment's votes into a posterior ``p`` over
the labels (``emoforge/quality/aggregation/pooled.py``). Each paid agent ``w`` not asked yet
votes with its calibrated accuracy ``a_w`` (right with probability ``a_w``, else one of the
other ``K - 1`` labels alike), so its vote for label ``v`` has predictive probability
``sum_k p(k) P_w(v | k)`` and moves the log-odds of ``v`` by ``beta_w log(a_w (K - 1) /
(1 - a_w))`` (``beta_w`` its pool exponent), as the pooled vote then will.

The plan is the Bayes-optimal sequential decision over those agents (the finite-horizon
optimal stopping and selection problem of crowdsourcing control; Dai, Mausam and Weld,
"Decision-theoretic control of crowd-sourced workflows", AAAI 2010)::

    V(p, R) = max( max_k p(k),                                    stop: the label's accuracy
                   max_{w in R} -c_w + sum_v P_w(v) V(p | v, R - w) )   ask w, then decide again

where ``c_w`` is the price of ``w``'s vote in units of accuracy: its estimated USD over
``label_value_usd`` (objective ``usd``) or ``min_gain_per_call`` (objective ``calls``). It
is summed exactly over every vote outcome (a vote for a label of probability 0 moves
nothing, so those outcomes are one). A plan may stop where asking every agent left would
still gain accuracy: when the dearest votes are worth less than they cost, or when only
another cheap vote's answer decides whether they are needed. That is what a fixed "ask the
next one until the votes left could not matter" rule cannot do.

Two shortcuts keep it cheap and exact. When ``log p(top) - log p(runner-up)`` exceeds what
every agent left could move together (``flip_bound``), no outcome can change the label and
the plan stops. When the expected accuracy gained by asking all of them (``gain``, the
value of perfect use of their votes) is below the cheapest one's price, no plan that asks
can pay, and it stops too. Past ``MAX_PLAN`` agents the plan looks at the cheapest
``MAX_PLAN``; the rest come in as those are asked.

Where the votes are calibrated the plan gives up accuracy only where buying it costs more
than it is worth; an agent stating more confidence than its accuracy breaks that, so set
``agents.adaptive.accuracy`` from a calibration run (``benchmarks/bench_quality.py``).
The plan's stop is taken only when the top label has probability >= ``min_confidence``
and no review flag is raised; otherwise the best vote is bought anyway. A vote that would
pass the segment's cap or what is left of the corpus budget is not bought: the plan is made
again over the affordable agents, and where it still wants one it cannot buy, the segment
goes to review.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from emoforge.configs.agents import AdaptiveConfig
from emoforge.storage.records import Consensus

# Outcomes of the remaining votes summed exactly (7 labels, 4 agents: 2,401); past it, sampled.
MAX_OUTCOMES = 4096
# Agents the plan looks ahead over (7 labels, 4 agents: about 9,000 nodes; the rest later).
MAX_PLAN = 4

Stop = Literal["decisive", "exhausted", "budget", "segment_cap"]


@dataclass(frozen=True)
class Offer:
    """A paid agent the jury could ask next, with its estimated cost on this segment."""

    agent: str
    cost_usd: float


@dataclass(frozen=True)
class Decision:
    """Ask ``ask`` next, or stop (``stop`` says why; ``route`` where the segment goes)."""

    ask: str | None = None
    stop: Stop | None = None
    route: Literal["label", "review"] = "label"
    margin: float = 0.0
    flip_bound: float = 0.0
    gain: float = 0.0


@dataclass(frozen=True)
class Plan:
    """The plan's value (expected accuracy net of the votes' prices), the agent to ask next
    (None: stop), the agent it would ask if it had to (``best``), and the accuracy that asking
    every agent left would add (``gain``; where ``decide`` computed it)."""

    value: float
    ask: str | None
    best: str | None
    gain: float = 0.0


def vote_strength(accuracy: float, n_labels: int, exponent: float = 1.0) -> float:
    """Most log-odds one calibrated vote moves between two labels (module docstring)."""
    k = max(n_labels, 2)
    return exponent * math.log(accuracy * (k - 1) / (1.0 - accuracy))


def top_margin(distribution: Mapping[str, float], top: str | None) -> float:
    """``log p(top) - log p(runner-up)``; infinite with no runner-up, minus infinite with no top."""
    p_top = distribution.get(top or "", 0.0)
    if top is None or p_top <= 0:
        return -math.inf
    rest = [p for k, p in distribution.items() if k != top]
    runner_up = max(rest, default=0.0)
    return math.inf if runner_up <= 0 else math.log(p_top) - math.log(runner_up)


class AdaptivePolicy:
    """The adaptive jury's plan and stopping rule (module docstring)."""

    def __init__(
        self,
        config: AdaptiveConfig,
        n_labels: int,
        exponents: Mapping[str, float] | None = None,
    ) -> None:
        self.config = config
        self.n_labels = n_labels
        self.exponents = dict(exponents or {})  # aggregation.pool_weights: the votes' exponents
        # Plans of states seen before (same posterior, same agents left): a corpus repeats them.
        self._memo: dict[tuple[bytes, tuple[tuple[str, float], ...]], Plan] = {}

    def accuracy(self, agent: str) -> float:
        return self.config.accuracy.get(agent, self.config.default_accuracy)

    def price(self, offer: Offer) -> float:
        """The offer's price in units of accuracy (module docstring)."""
        if self.config.objective == "calls":
            return self.config.min_gain_per_call
        return offer.cost_usd / self.config.label_value_usd

    def flip_bound(self, remaining: Sequence[Offer]) -> float:
        """Most log-odds every vote left could move against the top label together."""
        return sum(
            vote_strength(self.accuracy(o.agent), self.n_labels, self.exponents.get(o.agent, 1.0)) for o in remaining
        )

    def _belief(self, distribution: Mapping[str, float]) -> NDArray[Any]:
        """``distribution`` as a vector over ``K`` labels (labels it does not name: 0)."""
        labels = sorted(distribution)
        k = max(self.n_labels, len(labels), 2)
        p = np.array([distribution[x] for x in labels] + [0.0] * (k - len(labels)), dtype=float)
        typed: NDArray[Any] = p / p.sum()  # numpy's stubs type this Any
        return typed

    def gain(self, distribution: Mapping[str, float], remaining: Sequence[Offer]) -> float:
        """Expected accuracy gained by asking every agent in ``remaining`` (module docstring)."""
        p = self._belief(distribution)
        k = len(p)
        if not remaining:
            return 0.0
        acc = np.array([self.accuracy(o.agent) for o in remaining])
        strength = np.array(
            [vote_strength(self.accuracy(o.agent), k, self.exponents.get(o.agent, 1.0)) for o in remaining]
        )
        n = len(remaining)
        if k**n <= MAX_OUTCOMES:
            votes = np.array(list(itertools.product(range(k), repeat=n)), dtype=np.intp).reshape(-1, n)
        else:  # sampled from the predictive distribution, seeded: the same decision every run
            rng = np.random.default_rng(0)
            truth = rng.choice(k, size=MAX_OUTCOMES, p=p)
            right = rng.random((MAX_OUTCOMES, n)) < acc
            other = (truth[:, None] + rng.integers(1, k, size=(MAX_OUTCOMES, n))) % k
            votes = np.where(right, truth[:, None], other)
        hit = votes[:, :, None] == np.arange(k)[None, None, :]  # outcome x agent x label
        # P(votes | truth = label) for every outcome and label.
        likelihood = np.where(hit, acc[None, :, None], ((1 - acc) / (k - 1))[None, :, None]).prod(axis=1)
        joint = p[None, :] * likelihood
        with np.errstate(divide="ignore"):
            logits = np.log(p)[None, :] + (hit * strength[None, :, None]).sum(axis=1)
        chosen = logits.argmax(axis=1)
        rows = np.arange(len(votes))
        if k**n <= MAX_OUTCOMES:
            after = float(joint[rows, chosen].sum())
        else:
            after = float((joint[rows, chosen] / joint.sum(axis=1)).mean())
        return max(0.0, after - float(p.max()))

    def plan(self, distribution: Mapping[str, float], remaining: Sequence[Offer]) -> Plan:
        """The Bayes-optimal next step over ``remaining`` (module docstring)."""
        p = self._belief(distribution)
        offers = sorted(remaining, key=lambda o: self.price(o))[:MAX_PLAN]  # stable: ties keep the order
        if not offers:
            return Plan(float(p.max()), None, None)
        return self._plan(p, tuple(o.agent for o in offers), {o.agent: o for o in offers})

    def _plan(self, p: NDArray[Any], left: tuple[str, ...], offers: Mapping[str, Offer]) -> Plan:
        key = (np.round(p, 9).tobytes(), tuple((a, self.price(offers[a])) for a in left))
        if (hit := self._memo.get(key)) is not None:
            return hit
        k = len(p)
        stop = float(p.max())
        best: tuple[float, str | None] = (-math.inf, None)
        for agent in left:
            rest = tuple(a for a in left if a != agent)
            a = self.accuracy(agent)
            factor = math.exp(vote_strength(a, k, self.exponents.get(agent, 1.0)))
            wrong = (1 - a) / (k - 1)
            seen = np.flatnonzero(p > 0)
            predictive = p[seen] * a + (1 - p[seen]) * wrong  # P(vote = label) for labels of p > 0
            after = np.repeat(p[None, :], len(seen), axis=0)
            after[np.arange(len(seen)), seen] *= factor
            after /= after.sum(axis=1, keepdims=True)
            if rest:
                values = np.array([self._plan(q, rest, offers).value for q in after])
                unseen = self._plan(p, rest, offers).value  # a vote for a label at 0 moves nothing
            else:
                values, unseen = after.max(axis=1), stop
            value = float(predictive @ values) + (1 - float(predictive.sum())) * unseen
            value -= self.price(offers[agent])
            if value > best[0] + 1e-12:
                best = (value, agent)
        plan = Plan(best[0], best[1], best[1]) if best[0] > stop + 1e-12 else Plan(stop, None, best[1])
        if len(self._memo) < 200_000:
            self._memo[key] = plan
        return plan

    def decide(
        self,
        consensus: Consensus | None,
        remaining: Sequence[Offer],
        segment_spent_usd: float,
        corpus_left_usd: float | None,
    ) -> Decision:
        """The next step for one segment after a round.

        Args:
            consensus: the consensus of the votes so far (with the judge's verdicts), or None
                when no vote was valid yet.
            remaining: the paid agents not asked yet, in the order they would be asked.
            segment_spent_usd: what this segment's annotators have cost so far.
            corpus_left_usd: what is left of the corpus budget (None: no budget).
        """
        margin, bound, gain = -math.inf, self.flip_bound(remaining), math.inf
        cap = self.config.segment_cap_usd

        def blocked(offer: Offer) -> Stop | None:
            if cap is not None and segment_spent_usd + offer.cost_usd > cap + 1e-12:
                return "segment_cap"
            if corpus_left_usd is not None and offer.cost_usd > corpus_left_usd + 1e-12:
                return "budget"
            return None

        want = remaining[0] if remaining else None  # nothing to plan on yet: the cheapest vote
        if consensus is not None and consensus.primary_label is not None:
            margin = top_margin(consensus.distribution, consensus.primary_label)
            clean = not (self.config.require_unflagged and consensus.needs_review)
            decisive = clean and consensus.confidence >= self.config.min_confidence
            plan = self._decide_plan(consensus.distribution, remaining, margin, bound)
            gain = plan.gain
            if plan.ask is None and decisive:
                return Decision(stop="decisive", margin=margin, flip_bound=bound, gain=gain)
            want = self._offer(remaining, plan.ask or plan.best) or want  # not decisive: the best vote anyway
            affordable = [o for o in remaining if blocked(o) is None]
            if want is not None and blocked(want) is not None and affordable:
                # The vote it wants is past the cap or the budget: the best of what it can buy,
                # if that is worth buying (or the label is not decisive yet).
                cheaper = self._decide_plan(consensus.distribution, affordable, margin, self.flip_bound(affordable))
                if cheaper.ask is not None or not decisive:
                    want = self._offer(affordable, cheaper.ask or cheaper.best) or affordable[0]
        if want is None:
            return Decision(stop="exhausted", margin=margin, flip_bound=bound, gain=0.0)
        why = blocked(want)
        if why is not None:
            return Decision(stop=why, route="review", margin=margin, flip_bound=bound, gain=gain)
        return Decision(ask=want.agent, margin=margin, flip_bound=bound, gain=gain)

    def _decide_plan(
        self, distribution: Mapping[str, float], remaining: Sequence[Offer], margin: float, bound: float
    ) -> Plan:
        """The plan with its two exact shortcuts (module docstring), and the gain of asking all."""
        stop = max(distribution.values(), default=0.0)  # the value of stopping: the top label's accuracy
        if not remaining or margin > bound:
            return Plan(stop, None, None, gain=0.0)  # no outcome of the votes left can flip the label
        gain = self.gain(distribution, remaining)
        if gain <= min(self.price(o) for o in remaining):
            return Plan(stop, None, None, gain=gain)  # even all of them are worth less than the cheapest
        plan = self.plan(distribution, remaining)
        return Plan(plan.value, plan.ask, plan.best, gain=gain)

    @staticmethod
    def _offer(offers: Sequence[Offer], agent: str | None) -> Offer | None:
        return next((o for o in offers if o.agent == agent), None)


def cost_order(costs: Mapping[str, float], order: Sequence[str]) -> tuple[list[str], list[str]]:
    """(free agents, paid agents cheapest first); ties keep the configured ``order``."""
    free = [a for a in order if costs.get(a, 0.0) <= 0]
    paid = sorted((a for a in order if costs.get(a, 0.0) > 0), key=lambda a: (costs[a], order.index(a)))
    return free, paid
