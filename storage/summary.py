"""Corpus summary for `emoforge inspect` and reports: counts read from the shards."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from typing import Any

from emoforge.storage.batches import pending_batches
from emoforge.storage.ledger import RunLedger
from emoforge.storage.records import phase_of
from emoforge.storage.shards import read_manifest, read_table, verify

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
BATCH_ROWS = 20_000  # rows turned into Python objects at once: memory stays flat with corpus size


def summarize(root: str) -> dict[str, Any]:
    manifest = read_manifest(root)
    table = read_table(root, columns=SUMMARY_COLUMNS)
    ledger = RunLedger()
    status = Counter(table.column("status").to_pylist())
    failures: Counter[str] = Counter()
    labels: Counter[str] = Counter()
    annotations: Counter[str] = Counter()
    kinds: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    off_domain: Counter[str] = Counter()
    review = verified = judged = off_domain_rows = 0
    confidences = []
    batches = (b for b in table.to_batches(max_chunksize=BATCH_ROWS))
    for failure, consensus, anns, jury, verdicts, humans in (
        row
        for b in batches
        for row in zip(
            *(b.column(c).to_pylist() for c in ("failure", "consensus", "annotations", "jury", "verdicts", "human")),
            strict=True,
        )
    ):
        ledger.add_columns(jury, anns or [], consensus, verdicts or [])
        if failure:
            failures[f"{phase_of(failure['stage'])}:{failure['kind']}"] += 1
        # As the report and the release count them: a human label replaces the consensus and
        # takes the row out of the review queue.
        human = max((h for h in humans or [] if h["label"]), key=lambda h: h["reviewed_at"], default=None)
        verified += bool(humans)
        if consensus:
            labels[(human or {}).get("label") or consensus["primary_label"] or "(none)"] += 1
            review += bool(consensus["needs_review"]) and not humans
            confidences.append(consensus["confidence"])
            judged += 1
            # "off_domain: voice trust 0.05 < 0.30" counts as off_domain.
            reasons.update(r.split(":", 1)[0] for r in consensus.get("review_reasons") or [])
        far = [a["agent"] for a in anns or [] if (a.get("domain") or {}).get("off_domain")]
        off_domain.update(far)
        off_domain_rows += bool(far)
        for a in anns or []:
            annotations[f"{a['agent']}:{a['status']}"] += 1
        kinds.update(failure_kinds(anns or [], verdicts or []))
    return {
        "root": root,
        "schema_version": manifest["schema_version"],
        "shards": len(manifest["shards"]),
        "runs": len(manifest["runs"]),
        "rows": table.num_rows,
        "status": dict(status),
        "labels": dict(labels),
        "failures": dict(failures),
        "annotations": dict(annotations),
        "needs_review": review,
        "review_reasons": dict(reasons),
        "off_domain": {
            "segments": off_domain_rows,
            "share": round(off_domain_rows / judged, 4) if judged else None,
            "by_agent": dict(off_domain),
        },
        "verified": verified,
        "failure_kinds": dict(kinds),
        "mean_confidence": round(sum(confidences) / len(confidences), 3) if confidences else None,
        "jury": ledger.model_dump(mode="json"),
        "terms": terms_counts(table.column("recording").to_pylist()),
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
    return [
        {"licence": lic, "consent": con, "recordings": len(ids[(lic, con)]), "rows": n}
        for (lic, con), n in sorted(rows.items(), key=lambda kv: (-kv[1], kv[0]))
    ]


def failure_kinds(annotations: list[dict[str, Any]], verdicts: list[dict[str, Any]]) -> Counter[str]:
    """Failed annotations and judgements of one row by kind (``agent voice: refusal``). A
    verdict on an annotation that had already failed only echoes that failure: not counted."""
    out: Counter[str] = Counter()
    failed = set()
    for a in annotations:
        if a.get("failure"):
            failed.add(a["id"])
            out[f"agent {a['agent']}: {a['failure']['kind']}"] += 1
    for v in verdicts:
        if v.get("failure") and v["annotation_id"] not in failed:
            out[f"judge {v['judge']}: {v['failure']['kind']}"] += 1
    return out
