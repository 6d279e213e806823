"""The report's "Where the calls went" section: the cost ledger of the corpus and of each run.

The corpus ledger is read from the rows (``storage/ledger.py``: each row's jury decision
and annotations), so it covers every run that wrote a row still in the corpus; each run's
own ledger is the one ``annotate`` stored in the manifest's run record.
"""

from __future__ import annotations

import html
from typing import Any

from emoforge.storage.ledger import RunLedger
from emoforge.storage.records import SegmentRow


def _cells(values: list[Any], tag: str = "td") -> str:
    return "".join(f"<{tag}>{html.escape(str(v))}</{tag}>" for v in values)


def _table(header: list[str], rows: list[list[Any]]) -> str:
    body = "".join(f"<tr>{_cells(r)}</tr>" for r in rows)
    return f"<table><tr>{_cells(header, 'th')}</tr>{body}</table>"


def ledger_section(rows: list[SegmentRow], manifest: dict[str, Any]) -> str:
    """HTML: calls made and saved, cost per labelled segment, per agent, per token part, per run."""
    ledger = RunLedger()
    for row in rows:
        ledger.add(row)
    if not ledger.segments:
        return "<p>No row records its jury's decisions (written before the cost ledger existed).</p>"
    asked = ledger.calls + ledger.calls_saved
    share = f" ({ledger.calls_saved / asked:.0%} of the full jury's)" if asked else ""
    per = ledger.per_labelled_segment
    stops = ", ".join(f"{k} {v}" for k, v in sorted(ledger.stops.items()))
    summary = (
        f"<p>{ledger.segments} segments ({stops}); paid calls made: {ledger.calls}; calls saved by the adaptive "
        f"jury: {ledger.calls_saved}{share}; cost {ledger.cost_usd:.4f} USD, about {ledger.saved_usd:.4f} USD saved; "
        f"per labelled segment: {per['cost_usd']} USD and {per['calls']} calls.</p>"
    )
    agents = _table(
        ["agent", "asked", "skipped", "calls", "cached", "input tokens", "output tokens", "USD"],
        [
            [name, a.asked, a.skipped, a.calls, a.cached, a.input_tokens, a.output_tokens, f"{a.cost_usd:.4f}"]
            for name, a in sorted(ledger.by_agent.items())
        ],
    )
    parts = _table(["part", "tokens"], [[k, v] for k, v in sorted(ledger.by_part.items())]) if ledger.by_part else ""
    runs = []
    for run in manifest.get("runs", []):
        own = (run.get("counts") or {}).get("ledger")
        if own:
            runs.append(
                [
                    run.get("run_id", ""),
                    own["segments"],
                    own["calls"],
                    own["calls_saved"],
                    f"{own['cost_usd']:.4f}",
                    (own.get("per_labelled_segment") or {}).get("cost_usd"),
                ]
            )
    per_run = (
        _table(["run", "segments", "calls", "calls saved", "USD", "USD per labelled segment"], runs) if runs else ""
    )
    return summary + agents + parts + per_run
