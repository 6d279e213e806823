"""The report's table of the corpus by licence and consent, with what export would do."""

from __future__ import annotations

import re
from pathlib import Path

from typer.testing import CliRunner

from emoforge.cli import app
from emoforge.configs.release import ReleasePolicy
from emoforge.release.report_terms import terms_section
from emoforge.storage.records import Terms
from tests.release.factory import make_row, write_corpus

RESEARCH = Terms(licence="CC-BY-NC-SA-4.0", consent="research")


def _rows() -> list:
    rows = [make_row(f"pub{i}", j, "happy") for i in range(2) for j in range(3)]  # CC-BY-4.0, publish
    rows += [make_row(f"res{i}", 0, "sad", terms=RESEARCH) for i in range(4)]
    rows += [make_row("unk0", 0, "sad", terms=Terms()), make_row("unk0", 1, "sad", terms=Terms())]
    return rows


def _cells(html: str) -> list[list[str]]:
    return [re.findall(r"<td>(.*?)</td>", tr) for tr in re.findall(r"<tr>(.*?)</tr>", html) if "<td>" in tr]


def test_terms_section_counts_rows_and_recordings_per_licence_and_consent() -> None:
    assert _cells(terms_section(_rows(), ReleasePolicy())) == [
        ["CC-BY-4.0", "open", "publish", "2", "6", "link"],
        ["CC-BY-NC-SA-4.0", "noncommercial", "research", "4", "4", "features"],
        ["(unknown)", "unknown", "unknown", "1", "2", "withhold (terms unknown)"],
    ]


def test_the_report_page_has_the_table(tmp_path: Path) -> None:
    corpus = write_corpus(str(tmp_path / "corpus"), _rows())
    res = CliRunner().invoke(app, ["report", corpus, "--max-clips", "0"])
    assert res.exit_code == 0, res.output
    page = (Path(corpus) / "report.html").read_text()
    section = page.split("<h2>Licence and consent</h2>", 1)[1].split("<h2>", 1)[0]
    assert _cells(section)[1] == ["CC-BY-NC-SA-4.0", "noncommercial", "research", "4", "4", "features"]
