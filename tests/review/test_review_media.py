"""`review export` media without a server: each task gets its own segment, in the right player,
at a URL Label Studio's local-files storage serves; verified rows stay home; local paths warn."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from urllib.parse import unquote

import pytest
from typer.testing import CliRunner

from emoforge.cli import app
from emoforge.configs.release import ReviewConfig
from emoforge.review.exporter import LabelStudioExporter
from tests.conftest import media_duration
from tests.release.factory import TAXONOMY, human, make_row, write_corpus

PREFIX = "/data/local-files/?d="


def _streams(path: Path) -> list[str]:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "stream=codec_type", "-of", "csv=p=0", str(path)],
        capture_output=True,
        text=True,
        check=True,
    )
    return sorted(out.stdout.split())


def test_export_cuts_each_segment_into_its_player(tmp_path: Path, media_dir: Path) -> None:
    rows = [
        make_row("my clip", 1, "happy", needs_review=True, uri=str(media_dir / "sample_00000694.mp4")),
        make_row("jfk", 2, "sad", needs_review=True, uri=str(media_dir / "jfk.flac")),
    ]
    config = ReviewConfig(media_url_prefix=PREFIX, media_root=str(tmp_path))
    export = LabelStudioExporter(config).export(rows, TAXONOMY, media_dir=tmp_path / "review" / "tasks-media")
    assert export.warnings == []
    assert [(p.kind, [t["data"]["row_id"] for t in p.tasks]) for p in export.projects] == [
        ("video", ["my clip-00001"]),
        ("audio", ["jfk-00002"]),
    ]
    video, audio = (p.tasks[0]["data"] for p in export.projects)
    for data, streams in ((video, ["audio", "video"]), (audio, ["audio"])):
        url = data["media"]
        assert url.startswith(PREFIX + "review/tasks-media/media/")  # relative to LOCAL_FILES_DOCUMENT_ROOT
        assert " " not in url  # quoted: the row id has a space
        clip = tmp_path / unquote(url.removeprefix(PREFIX))
        assert _streams(clip) == streams
        assert media_duration(clip) == pytest.approx(1.5, abs=0.06)  # the segment (2.0-3.5 s / 4.0-5.5 s), not the file
    # three key frames from the segment's span, as images beside the clip; audio has none
    assert len(video["keyframes"]) == 3 and "keyframes" not in audio
    assert all((tmp_path / unquote(u.removeprefix(PREFIX))).read_bytes()[:2] == b"\xff\xd8" for u in video["keyframes"])


def test_media_outside_the_document_root_is_refused(tmp_path: Path, media_dir: Path) -> None:
    rows = [make_row("jfk", 0, "sad", needs_review=True, uri=str(media_dir / "jfk.flac"))]
    config = ReviewConfig(media_url_prefix=PREFIX, media_root=str(tmp_path / "served"))
    with pytest.raises(ValueError, match=r"outside release\.review\.media_root"):
        LabelStudioExporter(config).export(rows, TAXONOMY, media_dir=tmp_path / "elsewhere")


def test_cli_warns_when_nothing_serves_local_paths(tmp_path: Path, media_dir: Path) -> None:
    corpus = write_corpus(
        str(tmp_path / "corpus"),
        [
            make_row("jfk", 0, "sad", needs_review=True, uri=str(media_dir / "jfk.flac")),
            make_row("gone", 0, "sad", needs_review=True, uri=str(tmp_path / "gone.mp4")),
        ],
    )
    out = tmp_path / "review" / "tasks.json"
    res = CliRunner().invoke(app, ["review", "export", corpus, str(out)])
    assert res.exit_code == 0, res.output
    assert "2 task(s) name media by local path" in res.output  # no prefix: plain file paths
    assert f"gone-00000: media file not found: {tmp_path / 'gone.mp4'}" in res.output
    # a missing recording keeps its task (the transcript and jury still help), in the video project
    assert json.loads((tmp_path / "review" / "tasks-video.json").read_text())[0]["data"]["media"].endswith(
        "gone.mp4#t=0.000,1.500"
    )
    assert (tmp_path / "review" / "tasks-audio.xml").read_text().count("<Audio") == 1


def test_verified_rows_are_not_sent_again() -> None:
    rows = [
        make_row("a", 0, "sad", needs_review=True, human=[human("sad")]),
        make_row("b", 0, "sad", needs_review=True),
        *[make_row(f"u{i}", 0, "happy", human=[human("happy")] if i < 5 else None) for i in range(10)],
    ]
    export = LabelStudioExporter(ReviewConfig(audit_fraction=1.0)).export(rows, TAXONOMY)
    sent = [t["data"]["row_id"] for t in export.tasks]
    assert export.verified == 6
    assert sent == ["b-00000", *[f"u{i}-00000" for i in range(5, 10)]]  # audit draws only unverified rows
