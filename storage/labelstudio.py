"""Label Studio round trip: review-queue tasks out, human labels back in.

Out: one task per queued segment (media reference, time span, transcript, jury summary) with
every annotator's answer as a separate prediction (``model_version`` = agent/model,
``score`` = its confidence), plus the labelling config XML those tasks fit.

In: a Label Studio JSON export becomes ``HumanLabel`` records per row id. Nothing is trusted:
each task and annotation that cannot be used is reported item by item (``ImportProblem``)
and skipped; the rest still imports.
"""

from __future__ import annotations

import random
from datetime import datetime
from typing import Any, Literal
from xml.sax.saxutils import quoteattr

from pydantic import Field, ValidationError

from emoforge.configs.release import ReviewConfig
from emoforge.storage.records import HumanLabel, Record, SegmentRow, Status, utcnow

EMOTION, ALSO, INTENSITY, VALENCE, COMMENT = "emotion", "also", "intensity", "valence", "comment"
TEXT_TAG = "transcript"
AUDIO_SUFFIXES = (".wav", ".flac", ".mp3", ".ogg", ".m4a", ".opus", ".aac")


def labeling_config(labels: list[str], media: Literal["video", "audio"] = "video") -> str:
    """Label Studio labelling config XML for ``labels`` (the tasks' ``data`` keys fit it)."""
    choices = "".join(f"<Choice value={quoteattr(lab)}/>" for lab in labels)
    tag = "Video" if media == "video" else "Audio"
    return (
        "<View>"
        f'<{tag} name="media" value="$media"/>'
        '<Header value="$span"/>'
        f'<Text name="{TEXT_TAG}" value="$transcript"/>'
        '<Header value="Jury"/><Text name="jury" value="$jury"/>'
        '<Header value="Primary emotion"/>'
        f'<Choices name="{EMOTION}" toName="{TEXT_TAG}" choice="single" required="true">{choices}</Choices>'
        '<Header value="Other emotions present"/>'
        f'<Choices name="{ALSO}" toName="{TEXT_TAG}" choice="multiple">{choices}</Choices>'
        f'<Header value="Intensity (0..1)"/><Number name="{INTENSITY}" toName="{TEXT_TAG}" min="0" max="1" step="0.1"/>'
        f'<Header value="Valence (-1..1)"/><Number name="{VALENCE}" toName="{TEXT_TAG}" min="-1" max="1" step="0.1"/>'
        f'<TextArea name="{COMMENT}" toName="{TEXT_TAG}" placeholder="Note (optional)"/>'
        "</View>"
    )


def _choice(name: str, labels: list[str]) -> dict[str, Any]:
    return {"from_name": name, "to_name": TEXT_TAG, "type": "choices", "value": {"choices": labels}}


def _number(name: str, value: float) -> dict[str, Any]:
    return {"from_name": name, "to_name": TEXT_TAG, "type": "number", "value": {"number": round(value, 3)}}


class LabelStudioExport(Record):
    """Tasks plus the labelling config they fit."""

    tasks: list[dict[str, Any]] = Field(description="Label Studio task JSON (data + predictions).")
    labeling_config: str = Field(description="Labelling config XML.")
    queued: int = Field(description="Rows flagged needs_review.")
    audit: int = Field(description="Rows added as the random audit sample.")


class LabelStudioExporter:
    """Turns the review queue (plus an audit sample) into Label Studio tasks."""

    def __init__(self, config: ReviewConfig) -> None:
        self.config = config

    def export(self, rows: list[SegmentRow], labels: list[str]) -> LabelStudioExport:
        ok = sorted((r for r in rows if r.status == Status.ok and r.segment), key=lambda r: r.row_id)
        queued = [r for r in ok if r.consensus and r.consensus.needs_review]
        rest = [r for r in ok if not (r.consensus and r.consensus.needs_review)]
        n_audit = round(len(rest) * self.config.audit_fraction)
        audit = random.Random(self.config.audit_seed).sample(rest, n_audit) if n_audit else []
        media: Literal["video", "audio"] = (
            "audio" if ok and all(r.recording.uri.lower().endswith(AUDIO_SUFFIXES) for r in ok) else "video"
        )
        tasks = [self._task(r, labels, "review") for r in queued]
        tasks += [self._task(r, labels, "audit") for r in sorted(audit, key=lambda r: r.row_id)]
        return LabelStudioExport(
            tasks=tasks, labeling_config=labeling_config(labels, media), queued=len(queued), audit=len(audit)
        )

    def _task(self, row: SegmentRow, taxonomy: list[str], why: str) -> dict[str, Any]:
        seg, cons = row.segment, row.consensus
        if seg is None:
            raise ValueError(f"row {row.row_id} has no segment")
        transcript = row.features.transcript.text if row.features and row.features.transcript else ""
        jury, predictions = [], []
        for ann in row.annotations:
            if ann.status != Status.ok:
                jury.append(f"{ann.agent}: failed ({ann.failure.kind if ann.failure else '?'})")
                continue
            jury.append(f"{ann.agent}: {ann.primary_label} ({ann.confidence if ann.confidence is not None else '-'})"
                        + (f" - {ann.rationale[-1]}" if ann.rationale else ""))
            result = []
            if ann.primary_label in taxonomy:
                result.append(_choice(EMOTION, [ann.primary_label]))
            others = [lab for lab in ann.labels if lab in taxonomy and lab != ann.primary_label]
            if others:
                result.append(_choice(ALSO, others))
            if ann.intensity is not None:
                result.append(_number(INTENSITY, ann.intensity))
            if ann.valence is not None:
                result.append(_number(VALENCE, ann.valence))
            predictions.append({
                "model_version": f"{ann.agent}/{ann.provenance.model or ann.backend}",
                "score": ann.confidence if ann.confidence is not None else 0.0,
                "result": result,
            })
        reasons = ", ".join(cons.review_reasons) if cons else ""
        return {
            "data": {
                "row_id": row.row_id,
                "media": self.config.media_url_prefix + row.recording.uri,
                "start_s": seg.start_s,
                "end_s": seg.end_s,
                "span": f"{seg.start_s:.2f}-{seg.end_s:.2f} s of {row.recording.id} "
                f"({why}{': ' + reasons if reasons else ''})",
                "transcript": transcript or "(no transcript)",
                "jury": "\n".join(jury) or "(no annotations)",
                "consensus": cons.primary_label if cons else None,
                "queue": why,
            },
            "predictions": predictions,
        }


ProblemKind = Literal[
    "malformed_item", "missing_row_id", "unknown_row", "cancelled", "no_label", "unknown_label", "bad_value",
]


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


def _reviewer(completed_by: Any) -> str:
    if isinstance(completed_by, dict):
        return str(completed_by.get("email") or f"labelstudio-user:{completed_by.get('id')}")
    return f"labelstudio-user:{completed_by}"


def _when(ann: dict[str, Any]) -> datetime:
    for key in ("updated_at", "created_at"):
        if isinstance(ann.get(key), str):
            try:
                return datetime.fromisoformat(ann[key].replace("Z", "+00:00"))
            except ValueError:
                continue
    return utcnow()


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
                out.problems.append(ImportProblem(task_id=tid, row_id=row_id, kind="unknown_row",
                                                  message="row id not in this corpus"))
                continue
            anns = task.get("annotations")
            if not isinstance(anns, list):
                out.problems.append(ImportProblem(task_id=tid, row_id=row_id, kind="malformed_item",
                                                  message="annotations is not a list"))
                continue
            for ann in anns:
                out.annotations += 1
                label = self._annotation(ann, tid, row_id, out.problems)
                if label is not None:
                    out.labels.setdefault(row_id, []).append(label)
        return out

    def _annotation(
        self, ann: Any, tid: Any, row_id: str, problems: list[ImportProblem]
    ) -> HumanLabel | None:
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
        primary = (values.get(EMOTION) or {}).get("choices") or []
        also = (values.get(ALSO) or {}).get("choices") or []
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
            elif isinstance(raw, int | float) and lo <= raw <= hi:
                nums[name] = float(raw)
            else:
                problem("bad_value", f"{name}={raw!r} outside [{lo}, {hi}]; imported without it")
                nums[name] = None
        text = (values.get(COMMENT) or {}).get("text") or []
        try:
            return HumanLabel(
                reviewer=_reviewer(ann.get("completed_by")),
                label=chosen[0],
                labels=list(dict.fromkeys(chosen)),
                intensity=nums[INTENSITY],
                valence=nums[VALENCE],
                comment=" ".join(map(str, text)) or None,
                reviewed_at=_when(ann),
                source=f"labelstudio:{self.source}#task={tid}/annotation={aid}",
            )
        except ValidationError as exc:
            problem("malformed_item", str(exc).splitlines()[0])
            return None
