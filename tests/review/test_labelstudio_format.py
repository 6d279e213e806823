"""Label Studio task export and export parsing without a server: shapes and item-by-item problems."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from emoforge.configs.release import ReviewConfig
from emoforge.review.exporter import LabelStudioExporter, labeling_config
from emoforge.review.importer import ReviewImporter
from emoforge.review.parser import LabelStudioParser
from emoforge.storage.shards import read_rows
from tests.release.factory import TAXONOMY, make_row, write_corpus


def test_tasks_carry_span_transcript_and_one_prediction_per_agent() -> None:
    rows = [
        make_row("r1", 0, "sad", needs_review=True, votes=("sad", "angry", None)),
        *[make_row(f"u{i}", 0, "happy") for i in range(10)],
    ]
    export = LabelStudioExporter(ReviewConfig(audit_fraction=0.3, media_url_prefix="/data/local-files/?d=")).export(
        rows, TAXONOMY
    )
    assert (export.queued, export.audit) == (1, 3)
    task = export.tasks[0]
    assert task["data"]["row_id"] == "r1-00000"
    # no media folder: the whole recording, with the span as a media fragment
    assert task["data"]["media"] == "/data/local-files/?d=/media/r1.mp4#t=0.000,1.500"
    assert (task["data"]["start_s"], task["data"]["end_s"]) == (0.0, 1.5)
    assert task["data"]["transcript"] == "words of r1-00000"
    assert "voice: angry" in task["data"]["jury"] and "text: failed (refusal)" in task["data"]["jury"]
    assert [p["model_version"] for p in task["predictions"]] == ["face/face-rules", "voice/voice-rules"]
    assert task["predictions"][1]["score"] == 0.7
    assert task["predictions"][1]["result"][0]["value"] == {"choices": ["angry"]}
    reasoning = task["predictions"][1]["result"][-1]
    assert (reasoning["from_name"], reasoning["type"]) == ("rationale", "textarea")
    assert reasoning["value"]["text"] == [
        "Step 1: the voice shows angry cues.",
        "Step 2: so the label is angry.",
        "Evidence: voice: voice cue",
    ]
    assert "voice: angry (0.7, judge 0.60)" in task["data"]["jury"]
    # same seed, same audit sample
    again = LabelStudioExporter(ReviewConfig(audit_fraction=0.3, media_url_prefix="/data/local-files/?d=")).export(
        rows, TAXONOMY
    )
    assert again.tasks == export.tasks


def test_labeling_config_is_xml_naming_every_label() -> None:
    root = ET.fromstring(labeling_config(TAXONOMY, media="audio"))
    audio, choices = root.find("Audio"), root.find("Choices[@name='emotion']")
    assert audio is not None and choices is not None
    assert audio.get("value") == "$media"
    assert [c.get("value") for c in choices] == TAXONOMY
    assert {e.get("name") for e in root.iter() if e.get("toName")} == {
        "emotion",
        "also",
        "intensity",
        "valence",
        "rationale",
        "comment",
    }
    # audio tasks have no key frames, and an empty <Image valueList> stops Label Studio's editor
    assert root.find("Image") is None and root.find("Video") is None
    video = ET.fromstring(labeling_config(TAXONOMY, media="video"))
    frames = video.find("Image")
    assert video.find("Video") is not None and frames is not None and frames.get("valueList") == "$keyframes"


def _ann(aid: int, result: list, **kw: object) -> dict:
    return {
        "id": aid,
        "completed_by": {"id": 3, "email": "rev@example.org"},
        "result": result,
        "updated_at": "2026-01-02T03:04:05Z",
        **kw,
    }


def _emotion(*labels: str) -> dict:
    return {"from_name": "emotion", "to_name": "transcript", "type": "choices", "value": {"choices": list(labels)}}


def test_parser_reports_each_bad_item_and_keeps_the_good() -> None:
    export = [
        {
            "id": 1,
            "data": {"row_id": "a"},
            "annotations": [
                _ann(
                    10,
                    [
                        _emotion("sad"),
                        {"from_name": "valence", "to_name": "transcript", "type": "number", "value": {"number": -0.5}},
                    ],
                ),
                _ann(
                    11,
                    [
                        _emotion("sad"),
                        {"from_name": "intensity", "to_name": "transcript", "type": "number", "value": {"number": 7}},
                    ],
                ),
            ],
        },
        {"id": 2, "data": {"row_id": "a"}, "annotations": [_ann(12, [_emotion("bored")])]},
        {"id": 3, "data": {"row_id": "zzz"}, "annotations": []},
        {"id": 4, "data": {}, "annotations": []},
        "not a task",
        {"id": 5, "data": {"row_id": "a"}, "annotations": [_ann(13, [], was_cancelled=True), {"id": 14}]},
        {"id": 6, "data": {"row_id": "a"}, "annotations": "oops"},
    ]
    parsed = LabelStudioParser(TAXONOMY, {"a"}, "x.json").parse(export)
    kinds = [(p.task_id, p.annotation_id, p.kind) for p in parsed.problems]
    assert kinds == [
        (1, 11, "bad_value"),
        (2, 12, "unknown_label"),
        (3, None, "unknown_row"),
        (4, None, "missing_row_id"),
        (None, None, "malformed_item"),
        (5, 13, "cancelled"),
        (5, 14, "malformed_item"),
        (6, None, "malformed_item"),
    ]
    labels = parsed.labels["a"]
    assert [(h.label, h.valence, h.intensity, h.reviewer) for h in labels] == [
        ("sad", -0.5, None, "rev@example.org"),
        ("sad", None, None, "rev@example.org"),
    ]
    assert labels[0].source == "labelstudio:x.json#task=1/annotation=10"
    assert labels[0].reviewed_at.isoformat() == "2026-01-02T03:04:05+00:00"


def test_import_of_broken_file_loses_nothing(tmp_path: Path) -> None:
    root = write_corpus(str(tmp_path / "c"), [make_row("r", 0, "sad", needs_review=True)])
    before = [r.model_dump() for r in read_rows(root)]
    bad = tmp_path / "export.json"
    bad.write_text('[{"id": 1, "data": ')
    report = ReviewImporter(ReviewConfig()).run(root, bad)
    assert report.imported == 0 and report.problems[0].kind == "malformed_item"
    assert [r.model_dump() for r in read_rows(root)] == before
    bad.write_text(json.dumps({"not": "a list"}))
    assert ReviewImporter(ReviewConfig()).run(root, bad).problems[0].message == "export is not a JSON list of tasks"


@settings(max_examples=50, deadline=None)
@given(
    primary=st.sampled_from(TAXONOMY),
    also=st.lists(st.sampled_from(TAXONOMY), max_size=3, unique=True),
    intensity=st.none() | st.floats(0, 1),
    valence=st.none() | st.floats(-1, 1),
    comment=st.none() | st.text(min_size=1, max_size=30).filter(str.strip),
)
def test_annotation_round_trip(
    primary: str, also: list[str], intensity: float | None, valence: float | None, comment: str | None
) -> None:
    result = [_emotion(primary)]
    if also:
        result.append({"from_name": "also", "to_name": "transcript", "type": "choices", "value": {"choices": also}})
    for name, value in (("intensity", intensity), ("valence", valence)):
        if value is not None:
            result.append({"from_name": name, "to_name": "transcript", "type": "number", "value": {"number": value}})
    if comment is not None:
        result.append(
            {"from_name": "comment", "to_name": "transcript", "type": "textarea", "value": {"text": [comment]}}
        )
    export = json.loads(json.dumps([{"id": 1, "data": {"row_id": "a"}, "annotations": [_ann(9, result)]}]))
    parsed = LabelStudioParser(TAXONOMY, {"a"}, "f.json").parse(export)
    assert parsed.problems == []
    (h,) = parsed.labels["a"]
    assert (h.label, h.labels) == (primary, list(dict.fromkeys([primary, *also])))
    assert (h.intensity, h.valence, h.comment) == (intensity, valence, comment)
