"""Label Studio export: review-queue tasks and the labelling config they fit.

One task per queued segment (media reference, time span, transcript, jury summary) with every
annotator's answer as a separate prediction (``model_version`` = agent/model, ``score`` = its
confidence). The way back in is ``emoforge/review/parser.py``.
"""

from __future__ import annotations

import random
from typing import Any, Literal
from xml.sax.saxutils import quoteattr

from pydantic import Field

from emoforge.configs.release import ReviewConfig
from emoforge.storage.records import Record, SegmentRow, Status

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
            jury.append(
                f"{ann.agent}: {ann.primary_label} ({ann.confidence if ann.confidence is not None else '-'})"
                + (f" - {ann.rationale[-1]}" if ann.rationale else "")
            )
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
            predictions.append(
                {
                    "model_version": f"{ann.agent}/{ann.provenance.model or ann.backend}",
                    "score": ann.confidence if ann.confidence is not None else 0.0,
                    "result": result,
                }
            )
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
