"""The adaptive jury: buy paid votes only where they can still change a segment's label.

``AdaptiveJury.run`` takes one recording's segments. Round 0 asks, on every segment, the
agents that make no call there (offline cue agents and recognizers, and paid agents whose
answer is in the response cache). Then, while segments stay open, the judge scores each
open segment's annotations, the consensus builder pools them, and ``AdaptivePolicy``
(``agents/policy.py``) decides: stop (decisive, every agent asked, budget or cap spent) or
ask the paid agent its plan buys next (the Bayes-optimal vote for the price, under
``agents.adaptive.objective``). Each later round asks one agent on every open segment whose
plan chose it (``Jury.ask``); for an agent in ``mode: batch``
the round is one provider batch (``_ask``), and a segment waiting on it is left for a later
run, which replays the rounds from the cache and goes on.

Every segment ends with a ``JuryDecision`` (storage/records/annotations.py): why the jury stopped,
where the segment goes, what it spent and what it did not. ``full_decision`` records the
same for the full jury, so the ledger and ``inspect`` read both policies alike.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from emoforge.agents.base import Annotator, SegmentClip
from emoforge.agents.jury import Jury
from emoforge.agents.policy import AdaptivePolicy, Decision, Offer, cost_order
from emoforge.storage.records import Annotation, Consensus, ErrorKind, Features, JuryDecision, Segment, Verdict

Scorer = Callable[[Segment, Features, list[Annotation]], list[Verdict]]
Pooler = Callable[[Segment, Features, list[Annotation], list[Verdict]], Consensus]


@dataclass
class _Open:
    """A segment the jury is still deciding."""

    segment: Segment
    features: Features
    clip: SegmentClip | None
    costs: dict[str, float]  # agent -> estimated USD of its call on this segment (0: no call)
    annotations: list[Annotation] = field(default_factory=list)
    rounds: int = 0
    tokens: dict[str, int] = field(default_factory=dict)
    decision: Decision | None = None
    consensus: Consensus | None = None
    pending: bool = False  # a vote it needs is in a provider batch that has not ended

    @property
    def asked(self) -> list[str]:
        return [a.agent for a in self.annotations]

    @property
    def spent(self) -> float:
        return sum(a.usage.cost_usd for a in self.annotations)


class AdaptiveJury:
    """Runs a jury round by round under ``AdaptivePolicy`` (module docstring).

    Args:
        jury: the configured jury (its agents, pool, ledger and response cache).
        policy: the stopping rule.
        score: the judge (``Judge.score``) on a segment's annotations so far.
        pool: the consensus builder (``ConsensusBuilder.build``).
    """

    def __init__(self, jury: Jury, policy: AdaptivePolicy, score: Scorer, pool: Pooler) -> None:
        self.jury, self.policy, self.score, self.pool = jury, policy, score, pool

    def run(
        self,
        items: Sequence[tuple[Segment, Features]],
        clip_of: Callable[[Segment], SegmentClip | None] | None = None,
    ) -> list[tuple[list[Annotation], JuryDecision] | None]:
        """Annotations (in the order asked) and the decision of every segment, in input order;
        None for a segment waiting on a provider batch (the row must not be committed yet)."""
        agents = {a.name: a for a in self.jury.agents}
        states = []
        for segment, features in items:
            clip = clip_of(segment) if clip_of is not None else None
            costs = {}
            for name, agent in agents.items():
                usage = agent.estimate(segment, features, clip)
                costs[name] = usage.cost_usd if usage.calls > 0 else 0.0
            states.append(_Open(segment, features, clip, costs))
        order = self._order(states)
        for st in states:  # round 0: everything that makes no call on this segment
            free = [agents[n] for n in order if n not in self._paid(st, order)]
            if free:
                self._record(st, self.jury.annotate(st.segment, st.features, st.clip, agents=free))
        open_ = list(states)
        while open_:
            self._decide(open_, order)
            rounds: dict[str, list[_Open]] = {}
            for st in open_:
                if st.decision is not None and st.decision.ask is not None:
                    rounds.setdefault(st.decision.ask, []).append(st)
                else:
                    st.clip = None  # decided: its clip is not needed again
            open_ = [st for group in rounds.values() for st in group]
            for name, group in rounds.items():
                for st, answer in zip(group, self._ask(agents[name], group), strict=True):
                    if answer is None:
                        st.pending = True  # its vote is in a provider batch: a later run goes on from here
                        continue
                    self._record(st, [answer])
                    if answer.failure is not None and answer.failure.kind == ErrorKind.budget_exceeded:
                        st.decision = Decision(stop="budget", route="review")  # another recording spent it first
            open_ = [st for st in open_ if not st.pending and (st.decision is None or st.decision.stop is None)]
        return [None if st.pending else (st.annotations, self._decision(st, order)) for st in states]

    def _ask(self, agent: Annotator, group: Sequence[_Open]) -> list[Annotation | None]:
        """One round: ``agent`` on every segment of ``group``. A batch-mode agent (with
        ``Jury.use_batches`` called) sends the round as one provider batch, or collects the one
        an earlier run sent for the same requests; None = still pending at the provider.

        Batch and adaptive compose by replay: a later run into the same corpus redoes the
        rounds from the start. Earlier rounds' answers come from the response cache (a
        collected batch lands there), the policy is deterministic given the votes, so it
        reaches the same pending round, collects it, and only then buys the next round."""
        items = [(s.segment, s.features, s.clip) for s in group]
        if agent.name not in self.jury.batch_agents or not self.jury.batching:
            return list(self.jury.ask(agent, items))
        deferred = [self.jury.annotate_deferred(*item, agents=[agent]) for item in items]
        settled = self.jury.settle_rows(deferred)
        return [None if anns is None else anns[0] for anns in settled]

    def _order(self, states: Sequence[_Open]) -> list[str]:
        """Agent names: the free ones in config order, then the paid ones cheapest first
        (mean estimated cost over the recording's segments)."""
        names = [a.name for a in self.jury.agents]
        mean = {n: sum(st.costs[n] for st in states) / max(1, len(states)) for n in names}
        free, paid = cost_order(mean, names)
        return free + paid

    @staticmethod
    def _paid(st: _Open, order: Sequence[str]) -> list[str]:
        """Agents that would make a call on this segment, in the order they would be asked."""
        return [n for n in order if st.costs[n] > 0]

    def _record(self, st: _Open, annotations: Sequence[Annotation]) -> None:
        st.annotations.extend(annotations)
        st.rounds += 1
        for annotation in annotations:
            for part, n in self.jury.tokens_by_part(annotation, st.segment, st.features, st.clip).items():
                st.tokens[part] = st.tokens.get(part, 0) + n

    def _decide(self, open_: Sequence[_Open], order: Sequence[str]) -> None:
        """The policy's decision for every open segment; the corpus budget left is shared
        by the round: a segment's planned call is set aside before the next one's check."""
        left = self.jury.ledger.left_usd()
        for st in open_:
            if st.decision is not None and st.decision.stop is not None:
                continue
            anns = st.annotations
            st.consensus = self.pool(st.segment, st.features, anns, self.score(st.segment, st.features, anns))
            asked = set(st.asked)
            remaining = [Offer(n, st.costs[n]) for n in self._paid(st, order) if n not in asked]
            st.decision = self.policy.decide(st.consensus, remaining, st.spent, left)
            if st.decision.ask is not None and left is not None:
                left -= st.costs[st.decision.ask]

    def _decision(self, st: _Open, order: Sequence[str]) -> JuryDecision:
        decision = st.decision or Decision(stop="exhausted")
        asked = st.asked
        skipped = [n for n in order if n not in asked]
        paid_skipped = [n for n in skipped if st.costs[n] > 0]
        confidence = st.consensus.confidence if st.consensus is not None and st.consensus.primary_label else None
        return JuryDecision(
            policy="adaptive",
            stop=decision.stop or "exhausted",
            route=decision.route,
            rounds=st.rounds,
            asked=asked,
            skipped=skipped,
            confidence=confidence,
            calls=sum(a.usage.calls for a in st.annotations),
            calls_saved=len(paid_skipped),
            cost_usd=round(st.spent, 8),
            saved_usd=round(sum(st.costs[n] for n in paid_skipped), 8),
            tokens=st.tokens,
        )


def full_decision(
    jury: Jury, segment: Segment, features: Features, clip: SegmentClip | None, annotations: Sequence[Annotation]
) -> JuryDecision:
    """The record of a full-jury segment: every agent asked in one round, nothing saved."""
    tokens: dict[str, int] = {}
    for annotation in annotations:
        for part, n in jury.tokens_by_part(annotation, segment, features, clip).items():
            tokens[part] = tokens.get(part, 0) + n
    return JuryDecision(
        policy="full",
        stop="full_jury",
        route="label",
        rounds=1,
        asked=[a.agent for a in annotations],
        calls=sum(a.usage.calls for a in annotations),
        cost_usd=round(sum(a.usage.cost_usd for a in annotations), 8),
        tokens=tokens,
    )
