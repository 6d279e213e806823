"""When the adaptive jury stops buying votes: a decision on the pooled consensus so far.

After each round the consensus builder pools the segment's votes into a posterior ``p``
over the labels (``emoforge/quality/aggregation/pooled.py``). The jury stops when ``p`` is
decisive: its top label has probability at least ``min_confidence`` and buying the votes
still left could not raise the expected accuracy of the label by more than ``max_gain``.

That second condition is the value of the remaining votes. Each agent ``w`` left votes
with its calibrated accuracy ``a_w`` (right with probability ``a_w``, else one of the other
``K - 1`` labels alike). Reading ``p`` as the belief about the truth, the expected accuracy
after all of them have voted is::

    E_v[ P(z = c(v) | v) ] = sum_v  p(c(v)) prod_w P_w(v_w | c(v))

where ``c(v)`` is the label the pooled vote would then elect (each vote for label ``k``
adds ``beta_w log(a_w (K - 1) / (1 - a_w))`` to the log-odds of ``k``; ``beta_w`` its pool
exponent). The gain is that minus ``max_k p(k)``, summed exactly over the ``K^R`` outcomes
(sampled past ``MAX_OUTCOMES``). A shortcut makes the common case exact and cheap: when
``log p(top) - log p(runner-up)`` exceeds the sum of those log-odds over every agent left,
no outcome can flip the label and the gain is 0 (a vote for a third label moves it by the
same amount from a lower start, so the runner-up is the binding case). Where the jury
stops early it gives up at most ``max_gain`` of accuracy in expectation, if the votes are
calibrated: an agent stating more confidence than its accuracy breaks that, so set
``agents.adaptive.accuracy`` from a calibration run (``benchmarks/bench_quality.py``).

Otherwise the next agent, cheapest first, is asked, unless its estimated cost would pass
the segment's cap or what is left of the corpus budget: then the segment goes to review.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from emoforge.configs.agents import AdaptiveConfig
from emoforge.storage.records import Consensus

# Outcomes of the remaining votes summed exactly (7 labels, 4 agents: 2,401); past it, sampled.
MAX_OUTCOMES = 4096

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
    """The stopping rule of the adaptive jury (module docstring)."""

    def __init__(
        self,
        config: AdaptiveConfig,
        n_labels: int,
        exponents: Mapping[str, float] | None = None,
    ) -> None:
        self.config = config
        self.n_labels = n_labels
        self.exponents = dict(exponents or {})  # aggregation.pool_weights: the votes' exponents

    def accuracy(self, agent: str) -> float:
        return self.config.accuracy.get(agent, self.config.default_accuracy)

    def flip_bound(self, remaining: Sequence[Offer]) -> float:
        """Most log-odds every vote left could move against the top label together."""
        return sum(
            vote_strength(self.accuracy(o.agent), self.n_labels, self.exponents.get(o.agent, 1.0)) for o in remaining
        )

    def gain(self, distribution: Mapping[str, float], remaining: Sequence[Offer]) -> float:
        """Expected accuracy gained by asking every agent in ``remaining`` (module docstring)."""
        labels = sorted(distribution)
        k = max(self.n_labels, len(labels), 2)
        p = np.array([distribution[x] for x in labels] + [0.0] * (k - len(labels)), dtype=float)
        p = p / p.sum()
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
        if consensus is not None and consensus.primary_label is not None:
            margin = top_margin(consensus.distribution, consensus.primary_label)
            clean = not (self.config.require_unflagged and consensus.needs_review)
            sure = consensus.confidence >= self.config.min_confidence
            if clean and sure:
                # No outcome of the votes left can flip the label: nothing to gain, exactly.
                gain = 0.0 if margin > bound else self.gain(consensus.distribution, remaining)
                if gain <= self.config.max_gain:
                    return Decision(stop="decisive", margin=margin, flip_bound=bound, gain=gain)
        if not remaining:
            return Decision(stop="exhausted", margin=margin, flip_bound=bound, gain=0.0)
        nxt = remaining[0]
        cap = self.config.segment_cap_usd
        if cap is not None and segment_spent_usd + nxt.cost_usd > cap + 1e-12:
            return Decision(stop="segment_cap", route="review", margin=margin, flip_bound=bound, gain=gain)
        if corpus_left_usd is not None and nxt.cost_usd > corpus_left_usd + 1e-12:
            return Decision(stop="budget", route="review", margin=margin, flip_bound=bound, gain=gain)
        return Decision(ask=nxt.agent, margin=margin, flip_bound=bound, gain=gain)


def cost_order(costs: Mapping[str, float], order: Sequence[str]) -> tuple[list[str], list[str]]:
    """(free agents, paid agents cheapest first); ties keep the configured ``order``."""
    free = [a for a in order if costs.get(a, 0.0) <= 0]
    paid = sorted((a for a in order if costs.get(a, 0.0) > 0), key=lambda a: (costs[a], order.index(a)))
    return free, paid
