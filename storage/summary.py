"""Corpus summary for `emoforge inspect` and reports: counts read from the shards."""

from __future__ import annotations

from collections import Counter
from typing import Any

from emoforge.storage.records import phase_of
from emoforge.storage.shards import read_manifest, read_table, verify


def summarize(root: str) -> dict[str, Any]:
    manifest = read_manifest(root)
    table = read_table(root, columns=["status", "failure", "consensus", "annotations"])
    status = Counter(table.column("status").to_pylist())
    failures: Counter[str] = Counter()
    labels: Counter[str] = Counter()
    annotations: Counter[str] = Counter()
    review = 0
    confidences = []
    for failure, consensus, anns in zip(
        table.column("failure").to_pylist(),
        table.column("consensus").to_pylist(),
        table.column("annotations").to_pylist(),
        strict=True,
    ):
        if failure:
            failures[f"{phase_of(failure['stage'])}:{failure['kind']}"] += 1
        if consensus:
            labels[consensus["primary_label"] or "(none)"] += 1
            review += bool(consensus["needs_review"])
            confidences.append(consensus["confidence"])
        for a in anns or []:
            annotations[f"{a['agent']}:{a['status']}"] += 1
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
        "mean_confidence": round(sum(confidences) / len(confidences), 3) if confidences else None,
        "stats": manifest.get("stats", {}),
        "problems": verify(root),
    }
