"""A Label Studio export nothing can read (not UTF-8, missing) is one clear line and a
non-zero exit, never a traceback; an export saved with a byte-order mark still imports."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from emoforge.review.parser import load_export
from tests.release.factory import make_row, write_corpus

EMOFORGE = str(Path(sys.executable).with_name("emoforge"))


def test_load_export_reports_instead_of_raising(tmp_path: Path) -> None:
    latin = tmp_path / "latin1.json"
    latin.write_bytes('[{"data": {"row_id": "caf\u00e9"}}]'.encode("latin-1"))
    data, problem = load_export(latin)
    assert data is None and problem is not None and problem.kind == "unreadable"
    assert "not UTF-8 text (byte 25)" in problem.message

    data, problem = load_export(tmp_path / "missing.json")
    assert data is None and problem is not None and problem.kind == "unreadable"

    bom = tmp_path / "bom.json"
    bom.write_bytes("\ufeff[]".encode())
    assert load_export(bom) == ([], None)


def test_review_import_of_unreadable_export_exits_non_zero(tmp_path: Path) -> None:
    corpus = write_corpus(str(tmp_path / "corpus"), [make_row("rec-a", 0)])
    latin = tmp_path / "latin1.json"
    latin.write_bytes('[{"data": {"row_id": "caf\u00e9"}}]'.encode("latin-1"))
    done = subprocess.run(
        [EMOFORGE, "review", "import", corpus, str(latin)], capture_output=True, timeout=180, env=dict(os.environ)
    )
    out = done.stdout + done.stderr
    assert done.returncode == 1, out
    assert b"not UTF-8 text" in out and b"Traceback" not in out

    empty = tmp_path / "empty.json"
    empty.write_text(json.dumps([]))
    ok = subprocess.run(
        [EMOFORGE, "review", "import", corpus, str(empty)], capture_output=True, timeout=180, env=dict(os.environ)
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr  # an empty export is readable: nothing to do


def test_review_import_of_the_task_file_says_so_in_one_line(tmp_path: Path) -> None:
    corpus = write_corpus(
        str(tmp_path / "corpus"),
        [make_row("vid", 0, needs_review=True), make_row("aud", 0, needs_review=True, uri="/media/aud.flac")],
    )
    export = subprocess.run(
        [EMOFORGE, "review", "export", corpus, str(tmp_path / "round1" / "tasks.json")],
        capture_output=True,
        text=True,
        timeout=180,
        env=dict(os.environ),
    )
    assert export.returncode == 0, export.stderr
    written = sorted(p.name for p in (tmp_path / "round1").glob("*.json"))
    assert written == ["tasks-audio.json", "tasks-video.json"]
    assert "tasks.json" not in export.stdout  # it named a file it never wrote
    assert f"video: 1 tasks -> {tmp_path / 'round1' / 'tasks-video.json'}" in export.stdout

    tasks = tmp_path / "round1" / "tasks-video.json"
    done = subprocess.run(
        [EMOFORGE, "review", "import", corpus, str(tasks)],
        capture_output=True,
        text=True,
        timeout=180,
        env=dict(os.environ),
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.strip() == (
        f"error: {tasks}: its 1 tasks carry no annotations: it is a task file (as `review export` writes), "
        "not Label Studio's export of the project (docs/release.md, step 7)"
    )
    assert "malformed_item" not in done.stdout
