"""Where the calls went: one cost ledger per run (or per corpus), read from the rows.

Per agent (calls, cached answers, tokens, USD, segments asked and skipped; the judge as
``judge:<name>``, from each verdict's ``usage``: its LLM calls and the faithfulness re-asks
of paid annotators), per part of the jury's input (text, image, audio and video tokens, and
output tokens, from each row's ``JuryDecision.tokens``), and per labelled segment. Built from committed rows, so it
holds for any task runner (threads, processes, Dask workers) and for a corpus read back.
A labelled segment has a consensus label and is not in the review queue.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field, computed_field

from emoforge.storage.records import SegmentRow


class AgentSpend(BaseModel):
    asked: int = Field(0, description="Segments the agent was asked on.")
    skipped: int = Field(0, description="Segments the adaptive jury did not ask it on.")
    calls: int = Field(0, description="Provider calls (retries and re-asks included; 0 for cache hits).")
    cached: int = Field(0, description="Answers from the response cache (paid agents).")
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0

    def ask(self, usage: dict[str, Any]) -> None:
        """Count one answer and what it spent (``usage``: a stored ``Usage`` as a dict).

        Only the response cache sets ``cached``; offline agents write a zero Usage (never cached)."""
        self.asked += 1
        self.calls += int(usage.get("calls") or 0)
        self.cached += bool(usage.get("cached"))
        self.input_tokens += int(usage.get("input_tokens") or 0)
        self.output_tokens += int(usage.get("output_tokens") or 0)
        self.cost_usd = round(self.cost_usd + float(usage.get("cost_usd") or 0.0), 8)


class RunLedger(BaseModel):
    """The ledger; ``add`` one row at a time (or ``add_columns`` from Arrow row dicts)."""

    segments: int = Field(0, description="Segments the jury ran on.")
    labelled: int = Field(0, description="Segments with a consensus label, not sent to review.")
    calls: int = Field(0, description="Provider calls: the jury's and the judge's.")
    calls_saved: int = Field(0, description="Paid calls the adaptive jury did not make.")
    cost_usd: float = Field(0.0, description="USD: the jury's and the judge's.")
    saved_usd: float = Field(0.0, description="Estimated cost of the calls not made.")
    by_agent: dict[str, AgentSpend] = Field(default_factory=dict)
    by_part: dict[str, int] = Field(default_factory=dict, description="Tokens: text, image, audio, video, output.")
    stops: dict[str, int] = Field(default_factory=dict, description="JuryDecision.stop -> segments.")
    policies: dict[str, int] = Field(default_factory=dict, description="JuryDecision.policy -> segments.")

    def add(self, row: SegmentRow) -> None:
        self.add_columns(
            row.model_dump(mode="json", include={"jury"}).get("jury"),
            [a.model_dump(mode="json", include={"agent", "backend", "usage"}) for a in row.annotations],
            row.consensus.model_dump(mode="json", include={"primary_label", "needs_review"}) if row.consensus else None,
            [v.model_dump(mode="json", include={"judge", "usage"}) for v in row.verdicts],
        )

    def add_columns(
        self,
        jury: dict[str, Any] | None,
        annotations: list[dict[str, Any]],
        consensus: Any,
        verdicts: list[dict[str, Any]] | None = None,
    ) -> None:
        """One row from its ``jury``, ``annotations``, ``consensus`` and ``verdicts`` values as dicts."""
        if jury is None:
            return  # written before the jury kept its decisions, or a row that never reached annotate
        self.segments += 1
        if consensus and consensus.get("primary_label") and not consensus.get("needs_review"):
            self.labelled += 1
        self.calls += int(jury.get("calls") or 0)
        self.calls_saved += int(jury.get("calls_saved") or 0)
        self.cost_usd = round(self.cost_usd + float(jury.get("cost_usd") or 0.0), 8)
        self.saved_usd = round(self.saved_usd + float(jury.get("saved_usd") or 0.0), 8)
        self.stops[jury["stop"]] = self.stops.get(jury["stop"], 0) + 1
        self.policies[jury["policy"]] = self.policies.get(jury["policy"], 0) + 1
        tokens = jury.get("tokens") or {}
        for part, n in tokens.items() if isinstance(tokens, dict) else ((kv["key"], kv["value"]) for kv in tokens):
            self.by_part[part] = self.by_part.get(part, 0) + int(n)
        for annotation in annotations:
            self.by_agent.setdefault(annotation["agent"], AgentSpend()).ask(annotation.get("usage") or {})
        for name in jury.get("skipped") or []:
            self.by_agent.setdefault(name, AgentSpend()).skipped += 1
        for verdict in verdicts or []:
            usage = verdict.get("usage")
            if not usage:
                continue  # the offline rules judge, or a row written before verdicts kept their spend
            self.by_agent.setdefault(f"judge:{verdict['judge']}", AgentSpend()).ask(usage)
            self.calls += int(usage.get("calls") or 0)
            self.cost_usd = round(self.cost_usd + float(usage.get("cost_usd") or 0.0), 8)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def per_labelled_segment(self) -> dict[str, float | None]:
        """USD and calls per labelled segment (None before any segment is labelled)."""
        n = self.labelled
        return {
            "cost_usd": round(self.cost_usd / n, 6) if n else None,
            "calls": round(self.calls / n, 4) if n else None,
        }
