"""The report's table of the corpus by licence and consent, with what `emoforge export` would do
with each (``release.policy``, without ``--allow-unknown``)."""

from __future__ import annotations

import html

from emoforge.configs.release import ReleasePolicy
from emoforge.release.policy import PolicyGate, licence_class
from emoforge.storage.records import SegmentRow, Terms
from emoforge.storage.summary import terms_counts


def terms_section(rows: list[SegmentRow], policy: ReleasePolicy) -> str:
    counts = terms_counts(r.recording.model_dump(mode="json") for r in rows)
    if not counts:
        return "<p>No rows.</p>"
    gate = PolicyGate(policy)
    head = "".join(
        f"<th>{h}</th>" for h in ("licence", "licence class", "consent", "recordings", "rows", "export would")
    )
    body = []
    for c in counts:
        licence = None if c["licence"] == "(unknown)" else c["licence"]
        decision = gate.decide(Terms(licence=licence, consent=c["consent"]))
        action = decision.action + (" (terms unknown)" if decision.reason == "terms_unknown" else "")
        cells = (c["licence"], licence_class(licence, policy.open_licences), c["consent"], c["recordings"], c["rows"])
        body.append("<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in (*cells, action)) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"
