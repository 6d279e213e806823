"""Label Studio import: a JSON export becomes ``HumanLabel`` records per row id.

Nothing is trusted: each task and annotation that cannot be used is reported item by item
(``ImportProblem``) and skipped; the rest still imports. Field names match the labelling
config of ``emoforge/review/exporter.py``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError

from emoforge.review.tasks import ALSO, COMMENT, EMOTION, INTENSITY, VALENCE
from emoforge.storage.records import HumanLabel, Record, utcnow

ProblemKind = Literal[
    "unreadable",
    "malformed_item",
    "missing_row_id",
    "unknown_row",
    "cancelled",
    "no_label",
    "unknown_label",
    "bad_value",
    "future_timestamp",
]

# A clock a few minutes ahead of ours (another machine's) is not a forged review.
CLOCK_SKEW = timedelta(minutes=10)


class ImportProblem(Record):
    """One task or annotation of an export that was not imported, and why."""

    task_id: Any = Field(default=None, description="Label Studio task id, if present.")
    annotation_id: Any = Field(default=None, description="Label Studio annotation id, if present.")
    row_id: str | None = Field(default=None, description="Corpus row id the task names, if any.")
    kind: ProblemKind = Field(description="What was wrong.")
    message: str = Field(description="Detail.")


class ParsedExport(Record):
    labels: dict[str, list[HumanLabel]] = Field(description="row_id -> human labels found.")
    problems: list[ImportProblem] = Field(default_factory=list, description="Items skipped, one by one.")
    tasks: int = Field(default=0, description="Tasks read.")
    annotations: int = Field(default=0, description="Annotations read.")


def load_export(path: Path) -> tuple[Any, ImportProblem | None]:
    """The parsed JSON of an export file, or None and the one problem that made it unusable
    (missing, not UTF-8, not JSON): an import never ends in a traceback."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        return None, ImportProblem(kind="unreadable", message=f"{path}: cannot read: {exc.strerror or exc}")
    try:
        # utf-8-sig: an export re-saved by a Windows editor may start with a byte-order mark.
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        return None, ImportProblem(
            kind="unreadable",
            message=f"{path.name}: not UTF-8 text (byte {exc.start}); export the project again as JSON",
        )
    try:
        return json.loads(text), None
    except json.JSONDecodeError as exc:
        return None, ImportProblem(kind="malformed_item", message=f"not valid JSON: {exc}")


def task_file_reason(export: Any) -> str | None:
    """Why ``export`` is the task file `review export` wrote rather than Label Studio's export
    of the project (tasks without an ``annotations`` list), or None. Importing it listed one
    ``malformed_item`` per task and exited 0."""
    if not isinstance(export, list) or not export or not all(isinstance(t, dict) for t in export):
        return None
    if any("annotations" in t for t in export):
        return None
    return (
        f"its {len(export)} tasks carry no annotations: it is a task file (as `review export` writes), "
        "not Label Studio's export of the project (docs/release.md, step 7)"
    )


def _reviewer(completed_by: Any) -> str:
    if isinstance(completed_by, dict):
        return str(completed_by.get("email") or f"labelstudio-user:{completed_by.get('id')}")
    return f"labelstudio-user:{completed_by}"


def _when(ann: dict[str, Any]) -> datetime:
    for key in ("updated_at", "created_at"):
        if isinstance(ann.get(key), str):
            try:
                when = datetime.fromisoformat(ann[key].replace("Z", "+00:00"))
            except ValueError:
                continue
            # Label Studio writes UTC; a time without a zone is read as UTC, so it compares.
            return when if when.tzinfo is not None else when.replace(tzinfo=UTC)
    return utcnow()


def _strings(value: Any) -> list[str] | None:
    """A list of strings (Label Studio's choices and text), or None when it is anything else."""
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    return None


class LabelStudioParser:
    """Reads a Label Studio JSON export (a list of tasks) into human labels per row."""

    def __init__(self, taxonomy: list[str], known_rows: set[str], source: str) -> None:
        self.taxonomy = taxonomy
        self.known_rows = known_rows
        self.source = source

    def parse(self, export: Any) -> ParsedExport:
        out = ParsedExport(labels={})
        if not isinstance(export, list):
            out.problems.append(ImportProblem(kind="malformed_item", message="export is not a JSON list of tasks"))
            return out
        for task in export:
            out.tasks += 1
            if not isinstance(task, dict) or not isinstance(task.get("data"), dict):
                out.problems.append(
                    ImportProblem(kind="malformed_item", message=f"task #{out.tasks} has no data object")
                )
                continue
            tid, row_id = task.get("id"), task["data"].get("row_id")
            if not isinstance(row_id, str):
                out.problems.append(ImportProblem(task_id=tid, kind="missing_row_id", message="data.row_id missing"))
                continue
            if row_id not in self.known_rows:
                out.problems.append(
                    ImportProblem(task_id=tid, row_id=row_id, kind="unknown_row", message="row id not in this corpus")
                )
                continue
            anns = task.get("annotations")
            if not isinstance(anns, list):
                out.problems.append(
                    ImportProblem(
                        task_id=tid, row_id=row_id, kind="malformed_item", message="annotations is not a list"
                    )
                )
                continue
            for ann in anns:
                out.annotations += 1
                label = self._annotation(ann, tid, row_id, out.problems)
                if label is not None:
                    out.labels.setdefault(row_id, []).append(label)
        return out

    def _annotation(self, ann: Any, tid: Any, row_id: str, problems: list[ImportProblem]) -> HumanLabel | None:
        def problem(kind: ProblemKind, msg: str) -> None:
            problems.append(ImportProblem(task_id=tid, annotation_id=aid, row_id=row_id, kind=kind, message=msg))

        aid = ann.get("id") if isinstance(ann, dict) else None
        if not isinstance(ann, dict) or not isinstance(ann.get("result"), list):
            problem("malformed_item", "annotation without a result list")
            return None
        if ann.get("was_cancelled"):
            problem("cancelled", "annotation was skipped/cancelled in Label Studio")
            return None
        values: dict[str, Any] = {}
        for item in ann["result"]:
            if not isinstance(item, dict) or not isinstance(item.get("value"), dict):
                problem("malformed_item", f"result item is not an object with a value: {item!r:.80}")
                continue
            values[str(item.get("from_name"))] = item["value"]
        typed = {
            name: _strings((values.get(name) or {}).get(key) or [])
            for name, key in ((EMOTION, "choices"), (ALSO, "choices"), (COMMENT, "text"))
        }
        wrong = [name for name, value in typed.items() if value is None]
        if wrong:
            problem("malformed_item", f"{', '.join(wrong)}: expected a list of strings")
            return None
        primary, also, text = typed[EMOTION] or [], typed[ALSO] or [], typed[COMMENT] or []
        if not primary:
            problem("no_label", "no primary emotion chosen (partial annotation)")
            return None
        chosen = [str(c) for c in [*primary, *also]]
        unknown = [c for c in chosen if c not in self.taxonomy]
        if unknown:
            problem("unknown_label", f"labels outside the taxonomy: {unknown}")
            return None
        nums: dict[str, float | None] = {}
        for name, lo, hi in ((INTENSITY, 0.0, 1.0), (VALENCE, -1.0, 1.0)):
            raw = (values.get(name) or {}).get("number")
            if raw is None:
                nums[name] = None
            elif isinstance(raw, int | float) and not isinstance(raw, bool) and lo <= raw <= hi:
                nums[name] = float(raw)
            else:
                problem("bad_value", f"{name}={raw!r} outside [{lo}, {hi}]; imported without it")
                nums[name] = None
        when = _when(ann)
        if when > utcnow() + CLOCK_SKEW:
            # The newest review wins the release label: a far-future one would beat every real one.
            problem("future_timestamp", f"reviewed at {when.isoformat()}, later than now; not imported")
            return None
        try:
            return HumanLabel(
                reviewer=_reviewer(ann.get("completed_by")),
                label=chosen[0],
                labels=list(dict.fromkeys(chosen)),
                intensity=nums[INTENSITY],
                valence=nums[VALENCE],
                comment=" ".join(map(str, text)) or None,
                reviewed_at=when,
                source=f"labelstudio:{self.source}#task={tid}/annotation={aid}",
            )
        except ValidationError as exc:
            problem("malformed_item", str(exc).splitlines()[0])
            return None
