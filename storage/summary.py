"""Corpus summary for `emoforge inspect` and reports: counts read from the shards."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from typing import Any

from emoforge.storage.batches import pending_batches
from emoforge.storage.shards import iter_tables, read_manifest, verify
from emoforge.storage.summary_tally import SummaryTally

# The fields the summary counts, and no others: rationales, cues and label distributions
# stay on disk (read_table reads dotted paths as those fields only).
_ANN = "annotations.list.element"
_VER = "verdicts.list.element"
SUMMARY_COLUMNS = [
    "status", "failure.stage", "failure.kind", "jury",
    "consensus.primary_label", "consensus.needs_review", "consensus.confidence", "consensus.review_reasons",
    *(f"{_ANN}.{f}" for f in ("id", "agent", "backend", "status", "failure.kind", "usage", "domain.off_domain")),
    *(f"{_VER}.{f}" for f in ("annotation_id", "judge", "failure.kind", "usage")),
    "human.list.element.label", "human.list.element.reviewed_at",
    "recording.id", "recording.terms",
]  # fmt: skip


def summarize(root: str) -> dict[str, Any]:
    """What ``emoforge inspect`` prints, counted a shard at a time (``iter_tables``): memory
    holds the corpus's row ids and one shard's summary columns, not every row."""
    manifest = read_manifest(root)
    tally = SummaryTally()
    for table in iter_tables(root, columns=SUMMARY_COLUMNS):
        tally.add(table)
    confidences = tally.confidence_n
    return {
        "root": root,
        "schema_version": manifest["schema_version"],
        "shards": len(manifest["shards"]),
        "runs": len(manifest["runs"]),
        "rows": tally.rows,
        "status": dict(tally.status),
        "labels": dict(tally.labels),
        "failures": dict(tally.failures),
        "annotations": dict(tally.annotations),
        "needs_review": tally.review,
        "review_reasons": dict(tally.reasons),
        "off_domain": {
            "segments": tally.off_domain_rows,
            "share": round(tally.off_domain_rows / tally.judged, 4) if tally.judged else None,
            "by_agent": dict(tally.off_domain),
        },
        "verified": tally.verified,
        "failure_kinds": dict(tally.kinds),
        "mean_confidence": round(tally.confidence_sum / confidences, 3) if confidences else None,
        "jury": tally.ledger.model_dump(mode="json"),
        "terms": _terms_list(tally.terms_rows, tally.terms_ids),
        "stats": manifest.get("stats", {}),
        "batches": pending_batches(root),
        "problems": verify(root, full=False),  # size and footer: inspect reads no shard whole
    }


def terms_counts(recordings: Iterable[dict[str, Any] | None]) -> list[dict[str, Any]]:
    """Rows and recordings per licence and consent, from rows' ``recording`` structs (v1 rows
    carry no terms: unknown), most rows first."""
    rows: Counter[tuple[str, str]] = Counter()
    ids: dict[tuple[str, str], set[str]] = defaultdict(set)
    for rec in recordings:
        terms = (rec or {}).get("terms") or {}
        key = (terms.get("licence") or "(unknown)", terms.get("consent") or "unknown")
        rows[key] += 1
        ids[key].add((rec or {}).get("id") or "")
    return _terms_list(rows, ids)


def _terms_list(rows: Counter[tuple[str, str]], ids: dict[tuple[str, str], set[str]]) -> list[dict[str, Any]]:
    return [
        {"licence": lic, "consent": con, "recordings": len(ids[(lic, con)]), "rows": n}
        for (lic, con), n in sorted(rows.items(), key=lambda kv: (-kv[1], kv[0]))
    ]
