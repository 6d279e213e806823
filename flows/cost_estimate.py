"""The record a dry run (``--dry-run``, ``flows/estimate.py``) fills: what a run would cost.

Apart from the walk itself so that each phase can add its share (``Phase.estimate``)
without the phases importing the walk over them."""

from __future__ import annotations

from pydantic import BaseModel, Field

from emoforge.storage.records import Usage


class CostEstimate(BaseModel):
    recordings: int = 0
    unreadable: int = 0
    segments: int = 0
    media_seconds: float = 0.0
    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    faithfulness_calls: int = 0  # the judge's re-asks (weight d > 0, paid agents on): included above
    faithfulness_cost_usd: float = 0.0
    judge_calls: int = 0  # the LLM judge, one call per annotation (judge.backend llm): included above
    judge_cost_usd: float = 0.0
    policy: str = Field(
        "full",
        description="agents.policy. adaptive: the figures price every agent on every "
        "segment, the most the adaptive jury can spend (it buys only the votes worth their price).",
    )
    # Side by side: cost_usd is each agent in its configured mode; these are every paid agent in
    # real time, and every agent whose backend has a batch API in batch mode (costs.batch_factor).
    realtime_cost_usd: float = 0.0
    batch_cost_usd: float = 0.0
    by_agent: dict[str, dict[str, float | str]] = Field(
        default_factory=dict, description="agent -> mode, realtime_cost_usd, batch_cost_usd (the jury's calls only)."
    )
    ceiling: bool = Field(
        False, description="True under the adaptive policy: the figures are the most it can spend, not a forecast."
    )
    provider_problems: list[str] = Field(
        default_factory=list,
        description="Unset API keys and base_urls that do not answer (agents/preflight.py): `annotate` refuses to run.",
    )

    def add(self, usage: Usage) -> None:
        """Count a usage in the totals."""
        self.calls += usage.calls
        self.input_tokens += usage.input_tokens
        self.output_tokens += usage.output_tokens
        self.cost_usd += usage.cost_usd
