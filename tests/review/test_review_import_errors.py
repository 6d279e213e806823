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
