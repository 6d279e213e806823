"""The judge: one Verdict (S_rec, S_reason, S_cot, S_final) per annotation of a segment.

``Judge`` picks the backend from ``JudgeConfig.backend``: ``rules`` is the deterministic
offline judge (``rules.py``), ``llm`` any annotator chat backend (``llm.py``), configured
inline as ``judge.llm`` or passed in as an ``AgentConfig`` (e.g. the jury entry named by
``judge.agent``). With a faithfulness weight ``d`` > 0 it also re-asks the jury's annotators
(``use_annotators``) with masked evidence and folds S_faith into S_final (``faithful.py``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from emoforge.agents.base import Annotator, ChatBackend, SegmentClip
from emoforge.agents.cache import ResponseCache
from emoforge.agents.costs import CostLedger
from emoforge.agents.faithfulness import FaithfulnessProbe
from emoforge.agents.judge.faithful import add_faithfulness
from emoforge.agents.judge.llm import LLMJudge
from emoforge.agents.judge.rules import RulesJudge, set_f1
from emoforge.configs.agents import AgentConfig
from emoforge.configs.quality import JudgeConfig
from emoforge.storage.records import Annotation, Features, RunContext, Segment, Usage, Verdict

__all__ = ["Judge", "LLMJudge", "RulesJudge", "set_f1"]


class Judge:
    """Scores annotations; failed annotations and failed judgements get failed zero verdicts."""

    def __init__(
        self,
        config: JudgeConfig,
        ctx: RunContext,
        agent: AgentConfig | None = None,
        backend: ChatBackend | None = None,
    ) -> None:
        self.config = config
        self.ctx = ctx
        self.annotators: dict[str, Annotator] = {}
        self.probe = FaithfulnessProbe()
        self._impl: RulesJudge | LLMJudge
        if config.backend == "rules":
            self._impl = RulesJudge(config, ctx)
            return
        agent_config = agent or config.llm
        if agent_config is None:
            raise ValueError(
                "judge.backend is 'llm' but judge.llm is not set and no agent config was passed"
                + (f" (judge.agent={config.agent!r}: pass that jury entry)" if config.agent else "")
            )
        self._impl = LLMJudge(config, ctx, agent_config, backend=backend)

    def use(self, ledger: CostLedger, cache: ResponseCache | None) -> None:
        """Spend from the run's budget and answer from its response cache (the jury's own).

        Set per run rather than built in: one Judge instance serves many runs in a long-lived
        worker, and each run's cap covers its annotators and its judge together."""
        if isinstance(self._impl, LLMJudge):
            self._impl.ledger = ledger
            self._impl.cache = cache
        self.probe.ledger = ledger

    def use_annotators(self, annotators: Iterable[Annotator], include_paid: bool = False) -> None:
        """The annotator objects to re-ask for S_faith (the jury's ``agents``), by name.

        Only read when the task's weight ``d`` > 0; paid agents are re-asked only with
        ``include_paid`` (two more calls per annotation, from the ledger given to ``use``)."""
        self.annotators = {a.name: a for a in annotators}
        self.probe.include_paid = include_paid

    def estimate(self, segment: Segment, features: Features, annotations: list[Annotation]) -> Usage:
        """What judging ``annotations`` would cost (``--dry-run``): the offline judge nothing, the
        LLM judge one call per annotation; faithfulness re-asks are estimated by the probe."""
        if isinstance(self._impl, LLMJudge):
            return self._impl.estimate(segment, features, annotations)
        return Usage()

    def score(
        self,
        segment: Segment,
        features: Features,
        annotations: list[Annotation],
        reference: str | Sequence[str] | None = None,
        clip: SegmentClip | None = None,
    ) -> list[Verdict]:
        """One Verdict per annotation, in order; ids ``{annotation.id}-{config.name}``.

        Args:
            reference: the known label(s) of the segment, when the corpus has them; S_rec is
                then set-level F1 against it instead of peers and evidence.
            clip: the segment's clip as the jury got it, for the S_faith re-asks (d > 0 only).
        """
        verdicts = self._impl.score(segment, features, annotations, reference)
        weights = self.config.weights[self.config.task]
        if weights.d <= 0:
            return verdicts
        out = []
        for annotation, verdict in zip(annotations, verdicts, strict=True):
            annotator = self.annotators.get(annotation.agent)
            score = None if annotator is None else self.probe.score(annotator, segment, features, annotation, clip)
            out.append(add_faithfulness(verdict, weights, score))
        return out
