"""The judge: one Verdict (S_rec, S_reason, S_cot, S_final) per annotation of a segment.

``Judge`` picks the backend from ``JudgeConfig.backend``: ``rules`` is the deterministic
offline judge (``rules.py``), ``llm`` any annotator chat backend (``llm.py``), configured
inline as ``judge.llm`` or passed in as an ``AgentConfig`` (e.g. the jury entry named by
``judge.agent``).
"""

from __future__ import annotations

from collections.abc import Sequence

from emoforge.agents.base import ChatBackend
from emoforge.agents.cache import ResponseCache
from emoforge.agents.costs import CostLedger
from emoforge.agents.judge.llm import LLMJudge
from emoforge.agents.judge.rules import RulesJudge, set_f1
from emoforge.configs.agents import AgentConfig
from emoforge.configs.quality import JudgeConfig
from emoforge.storage.records import Annotation, Features, RunContext, Segment, Verdict

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

    def score(
        self,
        segment: Segment,
        features: Features,
        annotations: list[Annotation],
        reference: str | Sequence[str] | None = None,
    ) -> list[Verdict]:
        """One Verdict per annotation, in order; ids ``{annotation.id}-{config.name}``.

        Args:
            reference: the known label(s) of the segment, when the corpus has them; S_rec is
                then set-level F1 against it instead of peers and evidence.
        """
        return self._impl.score(segment, features, annotations, reference)
