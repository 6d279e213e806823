"""Attach human labels from a Label Studio export to corpus rows, losing nothing.

Each imported ``HumanLabel`` is appended to its row's ``human`` list and the row is written
again through ``CorpusWriter`` (same row id, so the newest copy wins on read). Every other
field is copied unchanged. A label whose ``source`` (export file, task, annotation) is
already on the row is not added twice, so re-importing an export is harmless.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field

from emoforge.configs.release import ReviewConfig
from emoforge.configs.storage import StorageConfig
from emoforge.review.parser import ImportProblem, LabelStudioParser, load_export
from emoforge.storage.records import Record, SegmentRow, utcnow
from emoforge.storage.shards import CorpusWriter, read_manifest, read_rows


def corpus_taxonomy(manifest: dict[str, Any]) -> list[str]:
    """Label set of the newest run that recorded its config, else the default config's."""
    for run in reversed(manifest.get("runs") or []):
        labels = ((run.get("config") or {}).get("agents") or {}).get("taxonomy", {}).get("labels")
        if labels:
            return list(labels)
    from emoforge.configs import load_config

    return list(load_config().agents.taxonomy.labels)


class ReviewImportReport(Record):
    export: str = Field(description="Export file read.")
    run_id: str = Field(description="Corpus run id under which updated rows were written.")
    tasks: int = Field(description="Tasks in the export.")
    annotations: int = Field(description="Annotations in the export.")
    imported: int = Field(description="Human labels newly attached.")
    already_present: int = Field(description="Labels skipped because that annotation was imported before.")
    rows_updated: int = Field(description="Rows rewritten with new human labels.")
    reviewers: dict[str, int] = Field(description="Reviewer -> labels imported.")
    problems: list[ImportProblem] = Field(description="Items not imported, one by one.")


class ReviewImporter:
    """Reads a Label Studio export and writes the human labels into a corpus."""

    def __init__(self, config: ReviewConfig, storage: StorageConfig | None = None) -> None:
        self.config = config
        self.storage = storage or StorageConfig()

    def run(self, root: str, export_path: str | Path) -> ReviewImportReport:
        export_path = Path(export_path)
        manifest = read_manifest(root)
        rows = {r.row_id: r for r in read_rows(root)}
        export, bad = load_export(export_path)
        parser = LabelStudioParser(corpus_taxonomy(manifest), set(rows), export_path.name)
        parsed = parser.parse(export) if bad is None else None
        problems = [bad] if bad else parsed.problems if parsed else []
        run_id = f"review-{utcnow().strftime('%Y%m%dT%H%M%S%f')}"
        updated: list[SegmentRow] = []
        imported = dupes = 0
        reviewers: dict[str, int] = {}
        for row_id, labels in sorted((parsed.labels if parsed else {}).items()):
            row = rows[row_id]
            seen = {h.source for h in row.human}
            new = []
            for label in labels:
                if label.source in seen:
                    dupes += 1
                    continue
                seen.add(label.source)
                new.append(label)
                reviewers[label.reviewer] = reviewers.get(label.reviewer, 0) + 1
            if new:
                imported += len(new)
                updated.append(row.model_copy(update={"human": [*row.human, *new]}))
        if updated:
            last = manifest["runs"][-1] if manifest.get("runs") else {}
            writer = CorpusWriter(
                root, self.storage, run_id, resolved_config=last.get("config"), config_hash=last.get("config_hash", "")
            )
            writer.write(updated)
            writer.close({"review_import": export_path.name, "human_labels": imported, "rows": len(updated)})
        return ReviewImportReport(
            export=str(export_path),
            run_id=run_id,
            tasks=parsed.tasks if parsed else 0,
            annotations=parsed.annotations if parsed else 0,
            imported=imported,
            already_present=dupes,
            rows_updated=len(updated),
            reviewers=reviewers,
            problems=problems,
        )
