"""Chinese transcripts render as text, not boxes: the report and the clip browser name a CJK font
that this machine has (scripts/setup.sh installs fonts-noto-cjk)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from typer.testing import CliRunner

from emoforge.cli import app
from emoforge.release.clip_card import FONT_FAMILY
from emoforge.storage.records import Transcript
from tests.release.factory import make_row, write_corpus

ZH = "我不知道你在说什么"


def _families(*pattern: str) -> set[str]:
    out = subprocess.run(["fc-list", *pattern, "family"], capture_output=True, text=True, check=True).stdout
    return {name.strip() for line in out.splitlines() for name in line.split(",")}


def test_pages_name_an_installed_font_that_covers_chinese(tmp_path: Path, media_dir: Path) -> None:
    named = re.findall(r"'([^']+)'", FONT_FAMILY)
    covering = _families(f":charset={ord(ZH[0]):x} {ord(ZH[1]):x}")
    assert set(named) & covering, f"none of {named} is installed with Chinese glyphs: run scripts/setup.sh"
    row = make_row("zh", 0, "sad", needs_review=True, uri=str(media_dir / "jfk.flac"))
    assert row.features is not None
    features = row.features.model_copy(update={"transcript": Transcript(text=ZH, language="zh")})
    root = write_corpus(str(tmp_path / "corpus"), [row.model_copy(update={"features": features})])
    res = CliRunner().invoke(app, ["report", root, "--max-clips", "1"])
    assert res.exit_code == 0, res.output
    for page in (tmp_path / "corpus" / "report.html", tmp_path / "corpus" / "report_clips" / "index.html"):
        assert f"font-family:{FONT_FAMILY}" in page.read_text(encoding="utf-8")
    assert ZH in (tmp_path / "corpus" / "report_clips" / "index.html").read_text(encoding="utf-8")
