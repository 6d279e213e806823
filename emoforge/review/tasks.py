"""Label Studio task JSON and the labelling config it fits, one per media kind.

A task shows the segment's player (``<Video>`` or ``<Audio>``: see ``emoforge/review/media.py``),
its key frames (video only), the span and why it is queued, the transcript, the jury, and the
reviewer's fields. Every annotator's answer is a prediction (``model_version`` = agent/model,
``score`` = its confidence) carrying its labels, intensity, valence and its reasoning steps
in the ``rationale`` text area, so the reviewer accepts one or changes it. The import
(``emoforge/review/parser.py``) reads only the reviewer's fields; ``rationale`` stays in Label
Studio.
"""

from __future__ import annotations

from typing import Any
from xml.sax.saxutils import quoteattr

from emoforge.review.media import MediaKind, TaskMedia
from emoforge.storage.records import Annotation, SegmentRow, Status

EMOTION, ALSO, INTENSITY, VALENCE, COMMENT = "emotion", "also", "intensity", "valence", "comment"
RATIONALE = "rationale"
TEXT_TAG = "transcript"
# The reviewer's number fields: name -> (min, max). Label Studio's editor is an HTML number
# input with this step, and the browser refuses to submit a value off the step grid ("Number
# -0.29 is not valid"), so predictions are prefilled on the grid (``on_step``).
NUMBER_FIELDS = {INTENSITY: (0.0, 1.0), VALENCE: (-1.0, 1.0)}
NUMBER_STEP_DECIMALS = 1
NUMBER_STEP = 10.0**-NUMBER_STEP_DECIMALS


def labeling_config(labels: list[str], media: MediaKind = "video") -> str:
    """Label Studio labelling config XML for ``labels`` (the tasks' ``data`` keys fit it).

    Video tasks also show ``$keyframes`` (a list of image URLs). Audio tasks have none, and an
    ``<Image valueList>`` over an empty list stops Label Studio 1.23's editor from loading
    (``preloadImages`` throws), so the audio config leaves the tag out.
    """
    choices = "".join(f"<Choice value={quoteattr(lab)}/>" for lab in labels)
    player = (
        '<Video name="media" value="$media"/><Image name="keyframes" valueList="$keyframes"/>'
        if media == "video"
        else '<Audio name="media" value="$media"/>'
    )
    return (
        "<View>"
        '<Header value="$span"/>'
        f"{player}"
        '<Header value="Transcript"/>'
        f'<Text name="{TEXT_TAG}" value="$transcript"/>'
        '<Header value="Jury"/><Text name="jury" value="$jury"/>'
        '<Header value="Primary emotion"/>'
        f'<Choices name="{EMOTION}" toName="{TEXT_TAG}" choice="single" required="true">{choices}</Choices>'
        '<Header value="Other emotions present"/>'
        f'<Choices name="{ALSO}" toName="{TEXT_TAG}" choice="multiple">{choices}</Choices>'
        f'<Header value="Intensity (0..1)"/>{_number_tag(INTENSITY)}'
        f'<Header value="Valence (-1..1)"/>{_number_tag(VALENCE)}'
        '<Header value="Reasoning of the annotator whose prediction is shown"/>'
        f'<TextArea name="{RATIONALE}" toName="{TEXT_TAG}" editable="true" rows="4"/>'
        f'<TextArea name="{COMMENT}" toName="{TEXT_TAG}" placeholder="Note (optional)"/>'
        "</View>"
    )


def _number_tag(name: str) -> str:
    low, high = NUMBER_FIELDS[name]
    return f'<Number name="{name}" toName="{TEXT_TAG}" min="{low:g}" max="{high:g}" step="{NUMBER_STEP:g}"/>'


def on_step(name: str, value: float) -> float:
    """``value`` clipped to the field's bounds and rounded to its step, the values its editor accepts."""
    low, high = NUMBER_FIELDS[name]
    return round(min(max(value, low), high), NUMBER_STEP_DECIMALS) + 0.0  # + 0.0: no -0.0 in the JSON


def _choice(name: str, labels: list[str]) -> dict[str, Any]:
    return {"from_name": name, "to_name": TEXT_TAG, "type": "choices", "value": {"choices": labels}}


def _number(name: str, value: float) -> dict[str, Any]:
    return {"from_name": name, "to_name": TEXT_TAG, "type": "number", "value": {"number": on_step(name, value)}}


def _reasoning(ann: Annotation) -> list[str]:
    steps = list(ann.rationale) or ([ann.raw_rationale] if ann.raw_rationale else [])
    if ann.evidence:
        steps.append("Evidence: " + "; ".join(f"{c.modality}: {c.cue}" for c in ann.evidence))
    return steps


def prediction(ann: Annotation, taxonomy: list[str]) -> dict[str, Any]:
    """One annotator's answer as a Label Studio prediction the reviewer can accept or change."""
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
    steps = _reasoning(ann)
    if steps:
        result.append({"from_name": RATIONALE, "to_name": TEXT_TAG, "type": "textarea", "value": {"text": steps}})
    return {
        "model_version": f"{ann.agent}/{ann.provenance.model or ann.backend}",
        "score": ann.confidence if ann.confidence is not None else 0.0,
        "result": result,
    }


def task_json(row: SegmentRow, taxonomy: list[str], why: str, media: TaskMedia) -> dict[str, Any]:
    """The Label Studio task of one queued row (``why``: review or audit)."""
    seg, cons = row.segment, row.consensus
    if seg is None:
        raise ValueError(f"row {row.row_id} has no segment")
    transcript = row.features.transcript.text if row.features and row.features.transcript else ""
    judged = {v.annotation_id: v.s_final for v in row.verdicts if v.status == Status.ok}
    jury, predictions = [], []
    for ann in row.annotations:
        if ann.status != Status.ok:
            jury.append(f"{ann.agent}: failed ({ann.failure.kind if ann.failure else '?'})")
            continue
        judge = f", judge {judged[ann.id]:.2f}" if ann.id in judged else ""
        jury.append(
            f"{ann.agent}: {ann.primary_label} ({ann.confidence if ann.confidence is not None else '-'}{judge})"
            + (f" - {ann.rationale[-1]}" if ann.rationale else "")
        )
        predictions.append(prediction(ann, taxonomy))
    reasons = ", ".join(cons.review_reasons) if cons else ""
    data: dict[str, Any] = {
        "row_id": row.row_id,
        "media": media.url,
        "start_s": seg.start_s,
        "end_s": seg.end_s,
        "span": f"{seg.start_s:.2f}-{seg.end_s:.2f} s of {row.recording.id} ({why}{': ' + reasons if reasons else ''})",
        "transcript": transcript or "(no transcript)",
        "jury": "\n".join(jury) or "(no annotations)",
        "consensus": cons.primary_label if cons else None,
        "queue": why,
    }
    if media.kind == "video":
        data["keyframes"] = media.keyframes
    return {"data": data, "predictions": predictions}
