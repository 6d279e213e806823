"""HTML corpus report: every plot present and decodable, and the page renders in Chromium."""

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
from emoforge.storage.records import ErrorKind, Failure, Status
from tests.release.factory import human, make_row, write_corpus

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
    failed_verdict = ref.verdicts[0].model_copy(
        update={
            "id": "ref0-00000-face-llm",
            "judge": "llm",
            "status": Status.failed,
            "s_rec": 0.0,
            "s_reason": 0.0,
            "s_cot": 0.0,
            "s_final": 0.0,
            "failure": Failure(stage="judge", kind=ErrorKind.timeout, message="slow"),
        }
    )
    rows.append(ref.model_copy(update={"verdicts": [*ref.verdicts, failed_verdict]}))
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
        "<th>human-verified</th><td>1</td>",
    ):
        assert cell in page, cell
    assert "Judge score distributions (n=38 ok verdicts)" in page  # 12 rows x 3 + ref0 x 2 (one refusal)
    assert "Failures by reason" in page
    assert "judge llm: timeout" not in page  # labels are inside the PNG; the count is checked below
    from emoforge.release.report import CorpusReporter
    from emoforge.storage.shards import read_rows

    failures = CorpusReporter._failures(list(read_rows(str(report.parent))))
    assert failures == {"row asr: no_speech": 2, "agent voice: refusal": 1, "judge llm: timeout": 1}


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
