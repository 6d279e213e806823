"""HTML corpus report: every plot present and decodable, failures by kind without the judge's
echo, agreement as tables with n, verified rows out of the queue, and the page renders in Chromium."""

from __future__ import annotations

import base64
import io
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from emoforge.cli import app
from emoforge.storage.records import ErrorKind, Failure
from tests.release.factory import failed_judgement, human, make_row, write_corpus

TITLES = (
    "Label distribution",
    "Consensus confidence",
    "Consensus entropy",
    "Judge score distributions",
    "Agreement per annotator",
    "Review queue",
    "Failures by reason",
)


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("corpus")
    labels = ["happy"] * 6 + ["sad"] * 4 + ["angry"] * 2
    rows = [
        make_row(
            f"rec{i}",
            0,
            lab,
            votes=(lab, lab, "neutral" if i % 2 else lab),
            confidence=0.4 + 0.05 * i,
            needs_review=i < 3,
            human=[human(lab)] if i == 0 else None,
        )
        for i, lab in enumerate(labels)
    ]
    rows += [make_row("bad0", 0, failed=True), make_row("bad1", 0, failed=True)]
    ref = make_row("ref0", 0, "happy", votes=("happy", None, "happy"))
    failed_verdict = failed_judgement(ref.verdicts[0], ref.verdicts[0].annotation_id)
    # The judge's echo of the voice annotation that had already failed (agents/judge/verdicts.py).
    echo = failed_verdict.model_copy(
        update={
            "id": "ref0-00000-voice-rules",
            "annotation_id": "ref0-00000-voice",
            "judge": "rules",
            "failure": Failure(
                stage="judge", kind=ErrorKind.invalid_input, message="annotation ref0-00000-voice failed"
            ),
        }
    )
    rows.append(ref.model_copy(update={"verdicts": [*ref.verdicts, failed_verdict, echo]}))
    write_corpus(str(root), rows)
    out = root / "report.html"
    res = CliRunner().invoke(app, ["report", str(root), "--out", str(out)])
    assert res.exit_code == 0, res.output
    return out


def test_report_has_every_plot_as_png(report: Path) -> None:
    from PIL import Image

    page = report.read_text()
    for title in TITLES:
        assert f"<figcaption>{title}" in page, title
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert len(images) == len(TITLES)
    for data in images:
        img = np.asarray(Image.open(io.BytesIO(base64.b64decode(data))).convert("L"))
        assert img.shape[0] > 100 and img.std() > 10  # a real plot, not a blank canvas
    # overview counts: 15 rows, 2 failed, 3 flagged, 1 verified
    for cell in (
        "<th>rows</th><td>15</td>",
        "<th>failed</th><td>2</td>",
        "<th>flagged for review</th><td>3</td>",
        "<th>waiting for review</th><td>2</td>",  # the verified one has left the queue
        "<th>human-verified</th><td>1</td>",
    ):
        assert cell in page, cell
    assert "Judge score distributions (n=38 ok verdicts)" in page  # 12 rows x 3 + ref0 x 2 (one refusal)
    assert "Failures by reason" in page
    # failure kinds as a table (the chart's labels are inside its PNG), the judge's echo of the
    # failed voice annotation counted nowhere
    assert "<tr><td>row asr</td><td>no_speech</td><td>2</td><td>silence</td></tr>" in page
    assert "<tr><td>judge llm</td><td>timeout</td><td>1</td><td>slow</td></tr>" in page
    assert "<tr><td>agent voice</td><td>refusal</td><td>1</td><td>refused</td></tr>" in page
    assert "invalid_input" not in page
    from emoforge.release.report import CorpusReporter
    from emoforge.storage.shards import read_rows

    failures = CorpusReporter._failures(list(read_rows(str(report.parent))))
    assert failures == {"row asr: no_speech": 2, "agent voice: refusal": 1, "judge llm: timeout": 1}


def test_report_agreement_is_a_table_with_n_and_verified_rows_leave_the_queue(report: Path) -> None:
    from emoforge.release.report import CorpusReporter
    from emoforge.storage.shards import read_rows

    page = report.read_text()
    stats = page.split("<h2>Agreement statistics</h2>", 1)[1].split("<h2>", 1)[0]
    assert "<pre>" not in stats and "{" not in stats  # no JSON dump
    assert "<th>statistic</th><th>value</th><th>n</th>" in stats
    # 13 segments have a valid vote (12 + ref0); the text agent says neutral on the 6 odd rows
    # and the voice agent refused on ref0, so face and voice agree on the 12 they share
    assert "<tr><td>Cohen&#x27;s kappa, face vs voice</td><td>1.000</td><td>12</td>" in stats
    assert "<tr><td>text</td><td>13</td><td>0</td><td>0.538</td><td>0.405</td></tr>" in stats  # 7/13 agree
    assert "<tr><td>voice</td><td>12</td><td>1</td><td>1.000</td><td>1.000</td></tr>" in stats
    # rec0 is the one human-verified row: its label agrees with the consensus, n = 1, and a
    # kappa over one pair is undefined, said as such rather than a bare FAIL
    assert "<tr><td>consensus: exact agreement</td><td>1.000</td><td>1</td><td>rows verified</td></tr>" in stats
    assert "n/a (too few pairs): near-expert above 0.8" in stats
    ranked = page.split("<h2>Did review change the labels it was expected to?</h2>", 1)[1]
    assert "0 of 1 human-reviewed rows changed their consensus label; 13 rows ranked" in ranked
    assert len(re.findall(r"<tr><td>\d+</td>", ranked.split("</table>", 1)[0])) == 10  # ten deciles
    queue = CorpusReporter._queue(list(read_rows(str(report.parent))))
    assert queue == {"flagged, verified": 1, "flagged, waiting": 2, "not flagged": 10}


def test_report_renders_in_headless_chromium(report: Path, tmp_path: Path) -> None:
    from PIL import Image

    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        raise RuntimeError("chromium not installed: run scripts/setup.sh")
    png = tmp_path / "report.png"
    subprocess.run(
        [
            exe,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            f"--screenshot={png}",
            "--window-size=1200,2200",
            report.as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    img = np.asarray(Image.open(png).convert("L"))
    assert img.shape == (2200, 1200)
    # plots fill the page: a good share of non-white pixels, spread down the page
    dark = img < 200
    assert dark.mean() > 0.03
    rows_with_ink = np.flatnonzero(dark.any(axis=1))
    assert rows_with_ink.max() - rows_with_ink.min() > 1200
    keep = Path(__file__).resolve().parents[2] / "out" / "report.png"  # out/ is git-ignored
    keep.parent.mkdir(exist_ok=True)
    shutil.copy(png, keep)
