"""The report's clip browser on the fixture media: cut audio and frames, per-clip notes where
media are missing, the doubt order and cap, escaped content, and in headless Chromium from
file://: the query-string filters and audio elements that load with the segment's duration."""

from __future__ import annotations

import io
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
from typer.testing import CliRunner

from emoforge.cli import app
from emoforge.storage.records import (
    ErrorKind,
    Failure,
    KeyFrame,
    LabelQuality,
    Segment,
    SegmentRow,
    Status,
    Transcript,
    Word,
)
from tests.conftest import media_duration
from tests.release.factory import human, make_row, write_corpus

EVIL = "</title><script>alert(1)</script>\"'><img src=x onerror=alert(2)>"
ESCAPED = "&lt;/title&gt;&lt;script&gt;alert(1)&lt;/script&gt;&quot;&#x27;&gt;&lt;img src=x onerror=alert(2)&gt;"
# (row, segment start, end) of the clips with a local media file
SPANS = {"mer694": (2.0, 5.0), "mer3358": (0.5, 3.0), "mer4735": (1.0, 4.0), "jfk": (0.0, 4.0)}
DOUBT_ORDER = ["evil", "mer694", "mer4735", "jfk", "remote", "mer3358", "gone", "bad"]


def _row(rec: str, start: float, end: float, quality: float | None = None, **kw: object) -> SegmentRow:
    row = make_row(rec, 0, **kw)  # type: ignore[arg-type]
    seg = Segment(id=row.row_id, recording_id=rec, index=0, start_s=start, end_s=end, kind="speech")
    update: dict[str, object] = {"segment": seg}
    if row.consensus is not None and quality is not None:
        lq = LabelQuality(score=quality, method="crowdlab-v1", scope="segment")
        update["consensus"] = row.consensus.model_copy(update={"label_quality": lq})
    return row.model_copy(update=update)


def _with_features(row: SegmentRow, **changes: object) -> SegmentRow:
    assert row.features is not None
    return row.model_copy(update={"features": row.features.model_copy(update=changes)})


def _red_jpeg() -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 30, 30)).save(buf, format="JPEG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def corpus(media_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    media = {name: str(media_dir / f) for name, f in (("694", "sample_00000694.mp4"), ("3358", "sample_00003358.mp4"))}
    words = [Word(text=w, start_s=2.2 + 0.4 * i, end_s=2.5 + 0.4 * i) for i, w in enumerate(["我", "算是", "出来了"])]
    jfk_words = [Word(text=w, start_s=0.3 + 0.35 * i, end_s=0.6 + 0.35 * i) for i, w in enumerate(["And", "so", "my"])]
    rows = [
        _with_features(
            _row(
                "mer694",
                *SPANS["mer694"],
                quality=0.3,
                label="sad",
                votes=("sad", "happy", "sad"),
                confidence=0.45,
                needs_review=True,
                uri=media["694"],
            ),
            keyframes=[KeyFrame(t_s=3.0, score=1.0, reason="peak")],  # no JPEG stored: cut from the video
            transcript=Transcript(text="我算是出来了", language="zh", words=words, word_timing="asr"),
        ),
        _with_features(
            _row("mer3358", *SPANS["mer3358"], quality=0.9, label="happy", confidence=0.9, uri=media["3358"]),
            keyframes=[KeyFrame(t_s=1.0, score=1.0, reason="diversity", jpeg=_red_jpeg())],
        ),
        _row(
            "mer4735",
            *SPANS["mer4735"],
            quality=0.5,
            label="angry",
            votes=("angry", "angry", "sad"),
            confidence=0.55,
            needs_review=True,
            uri=str(media_dir / "sample_00004735.mp4"),
        ),
        _with_features(
            _row(
                "jfk",
                *SPANS["jfk"],
                label="neutral",
                confidence=0.7,
                needs_review=True,
                uri=str(media_dir / "jfk.flac"),
            ),
            transcript=Transcript(text="And so my", language="en", words=jfk_words, word_timing="asr"),
        ),
        _row(
            "gone",
            0.0,
            2.0,
            label="angry",
            needs_review=True,
            human=[human("angry", comment=EVIL)],
            uri="/nonexistent/gone.mp4",
        ),
        _row("remote", 0.0, 2.0, label="happy", confidence=0.8, uri="s3://bucket/remote.mp4"),
        make_row("bad", 0, failed=True),
    ]
    evil = make_row("evil", 0, "sad", confidence=0.2, needs_review=True, uri=f"/nonexistent/{EVIL}.mp4")
    anns = list(evil.annotations)
    anns[0] = anns[0].model_copy(update={"rationale": [f"Step 1: {EVIL}", "Step 2: so sad."]})
    anns[1] = anns[1].model_copy(
        update={
            "status": Status.failed,
            "labels": [],
            "primary_label": None,
            "failure": Failure(stage="annotate", kind=ErrorKind.malformed_output, message=EVIL),
        }
    )
    assert evil.features is not None and evil.consensus is not None
    evil = evil.model_copy(
        update={
            "features": evil.features.model_copy(
                update={
                    "transcript": Transcript(text=EVIL, words=[Word(text=EVIL, start_s=0.1, end_s=0.4)]),
                    "evidence": evil.features.evidence.model_copy(update={"text": EVIL}),
                }
            ),
            "consensus": evil.consensus.model_copy(update={"review_reasons": [EVIL]}),
            "annotations": anns,
        }
    )
    rows.append(evil)
    root = tmp_path_factory.mktemp("clips_corpus")
    write_corpus(str(root), rows)
    return root


@pytest.fixture(scope="module")
def browser(corpus: Path) -> Path:
    res = CliRunner().invoke(app, ["report", str(corpus), "--out", str(corpus / "report.html")])
    assert res.exit_code == 0, res.output
    assert f"clips  -> {corpus / 'report_clips' / 'index.html'}" in res.output
    return corpus / "report_clips"


def _articles(page: str) -> list[dict[str, str]]:
    return [dict(re.findall(r'([\w-]+)="([^"]*)"', m)) for m in re.findall(r"<article ([^>]*)>", page)]


def _ids(page: str) -> list[str]:
    return re.findall(r"<h2>([^<]+)-00000</h2>", page)


def test_clips_cut_media_and_say_why_not(browser: Path) -> None:
    from PIL import Image

    page = (browser / "index.html").read_text()
    assert _ids(page) == DOUBT_ORDER  # waiting first, then by expected label changes per minute; failed last
    by_id = dict(zip(_ids(page), _articles(page), strict=True))
    assert {k: v["data-status"] for k, v in by_id.items()} == {
        "evil": "waiting",
        "mer694": "waiting",
        "mer4735": "waiting",
        "jfk": "waiting",
        "remote": "not-flagged",
        "mer3358": "not-flagged",
        "gone": "verified",
        "bad": "failed",
    }
    audio = sorted((browser / "media").glob("*.ogg"))
    assert [p.name.split("-")[0] for p in audio] == ["jfk", "mer3358", "mer4735", "mer694"]
    for path in audio:
        start, end = SPANS[path.name.split("-")[0]]
        assert media_duration(path) == pytest.approx(end - start, abs=0.05)
    frames = {p.name: p for p in (browser / "media").glob("*.jpg")}
    assert sorted(n.split("-")[0] for n in frames) == ["mer3358"] + ["mer4735"] * 3 + ["mer694"]
    stored = next(p for n, p in frames.items() if n.startswith("mer3358"))
    assert stored.read_bytes() == _red_jpeg()  # the row's own key frame, as stored
    for name, path in frames.items():
        if not name.startswith("mer3358"):
            img = Image.open(path)
            assert img.width == 240 and max(img.convert("L").getextrema()) > 100  # a real, scaled video frame
    # where times come from: the row's peak frame, three spread over a segment without key frames
    assert "3.00 s (peak)" in page and all(f"{t:.2f} s (uniform)" in page for t in (1.5, 2.5, 3.5))
    assert "no video stream: audio only" in page
    assert "media file not found: /nonexistent/gone.mp4" in page
    assert "media not local (s3://): not extracted" in page
    # a word seeks the snippet, which starts at the segment start: 2.2 s into the recording is 0.2 s in
    assert "data-t='0.20' title='2.20–2.50 s'>我<sup>2.20</sup></span>" in page
    assert sum(p.stat().st_size for p in (browser / "media").iterdir()) < 200_000
    report = (browser.parent / "report.html").read_text()
    assert "<a href='report_clips/index.html'>Clip browser</a>: 8 of 8 segments" in report
    assert "4 without media (each says why)" in report  # gone, remote, evil, bad


def test_clip_shows_the_jury_scores_distribution_and_review(browser: Path) -> None:
    page = (browser / "index.html").read_text()
    card = page.split("<h2>mer694-00000</h2>", 1)[1].split("</article>", 1)[0]
    assert "<li>Step 1: the voice shows happy cues.</li><li>Step 2: so the label is happy.</li>" in card
    assert "<li>[face] face cue</li>" in card
    assert "<th>S_rec</th><th>S_reason</th><th>S_cot</th><th>S_final</th>" in card
    assert "<td>0.60</td><td>0.60</td><td>0.60</td><td>0.60</td>" in card  # the voice verdict
    assert "label quality 0.30 (crowdlab-v1, segment)" in card
    assert "review priority 1.17 changes/min" in card  # (1 - 0.30) / ((2 x 3.0 s + 30 s) / 60)
    assert "<tr><td>sad</td><td><span class='bar' style='width:45px'></span> 0.45</td></tr>" in card
    assert "<h3>Review: waiting</h3><p>reasons: low_confidence</p>" in card
    gone = page.split("<h2>gone-00000</h2>", 1)[1].split("</article>", 1)[0]
    assert "<h3>Review: verified</h3>" in gone and "ann@example.org: <b>angry</b>" in gone


def test_cap_keeps_the_most_doubtful(corpus: Path, tmp_path: Path) -> None:
    out = tmp_path / "small.html"
    res = CliRunner().invoke(app, ["report", str(corpus), "--out", str(out), "--max-clips", "2"])
    assert res.exit_code == 0, res.output
    page = (tmp_path / "small_clips" / "index.html").read_text()
    assert _ids(page) == DOUBT_ORDER[:2] and "2 of 8 rows" in page
    assert [p.name.split("-")[0] for p in (tmp_path / "small_clips" / "media").glob("*.ogg")] == ["mer694"]
    res = CliRunner().invoke(app, ["report", str(corpus), "--out", str(tmp_path / "none.html"), "--max-clips", "0"])
    assert res.exit_code == 0 and not (tmp_path / "none_clips").exists()
    assert "No clip browser" in (tmp_path / "none.html").read_text()


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def _assert_inert(page: str) -> None:
    parser = _Tags()
    parser.feed(page)
    handlers = [(t, k) for t, a in parser.tags for k in a if k.startswith("on") and (t, k) != ("form", "onsubmit")]
    assert handlers == []
    assert [t for t, _ in parser.tags].count("script") <= 1  # the page's own filter script only
    assert not any(t == "img" and a.get("src") == "x" for t, a in parser.tags)


def test_hostile_text_stays_text(browser: Path) -> None:
    for page in ((browser / "index.html").read_text(), (browser.parent / "report.html").read_text()):
        assert EVIL not in page and "<script>alert" not in page
        _assert_inert(page)
    clips = (browser / "index.html").read_text()
    # path (twice), word, evidence, rationale, failure, review reason, reviewer comment
    assert clips.count(ESCAPED) >= 8


def _chromium(*args: str) -> str:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        raise RuntimeError("chromium not installed: run scripts/setup.sh")
    cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", *args]
    return subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=120).stdout


def _dump(index: Path, query: str) -> str:
    # virtual time lets the media elements load their metadata before the DOM is dumped
    return _chromium("--virtual-time-budget=10000", "--dump-dom", f"{index.as_uri()}?{query}")


@pytest.mark.parametrize(
    ("query", "shown"),
    [
        ("status=waiting&agents=disagree", ["mer694", "mer4735"]),
        ("label=happy&minconf=0.85", ["mer3358"]),
        ("maxq=0.4", ["mer694"]),
    ],
)
def test_filters_in_headless_chromium(browser: Path, query: str, shown: list[str]) -> None:
    dom = _dump(browser / "index.html", query)
    visible = [i for i, a in zip(_ids(dom), _articles(dom), strict=True) if "hidden" not in a]
    assert visible == shown
    assert f'data-shown="{len(shown)}"' in dom and f'<span id="shown">{len(shown)}</span> of 8' in dom
    _assert_inert(dom)  # what the browser built, after the script ran


def test_audio_loads_with_the_segment_duration_in_headless_chromium(browser: Path) -> None:
    from PIL import Image

    dom = _dump(browser / "index.html", "sort=quality")
    audios = re.findall(r"<audio ([^>]*)>", dom)
    assert len(audios) == 4
    for attrs in audios:
        a = dict(re.findall(r'([\w-]+)="([^"]*)"', attrs))
        start, end = SPANS[a["src"].split("/")[1].split("-")[0]]
        assert int(a["data-ready-state"]) >= 1 and "data-error" not in a
        assert float(a["data-duration"]) == pytest.approx(end - start, abs=0.05)
    # sorted by label quality: the rows with a score first, lowest first
    assert _ids(dom)[:3] == ["mer694", "mer4735", "mer3358"]
    # by review priority, whatever the status: P(wrong) / minutes, with minutes = (2 plays x
    # duration + 30 s) / 60: the verified "gone" (P(wrong) 0.2, 2 s: 0.35/min, tied with "remote")
    # now ranks above the unflagged mer3358 (0.1, 2.5 s: 0.17/min)
    dom = _dump(browser / "index.html", "sort=priority")
    assert _ids(dom) == ["evil", "mer694", "mer4735", "jfk", "remote", "gone", "mer3358", "bad"]
    png = browser / "clips.png"
    _chromium(f"--screenshot={png}", "--window-size=1200,1600", (browser / "index.html").as_uri())
    img = Image.open(png).convert("L")
    assert img.size == (1200, 1600) and img.getextrema()[0] < 50
    keep = Path(__file__).resolve().parents[2] / "out" / "clips.png"  # out/ is git-ignored
    keep.parent.mkdir(exist_ok=True)
    shutil.copy(png, keep)


def test_cutter_skips_cover_art_and_names_unreadable_media(
    generated_dir: Path, corrupt_media: Path, tmp_path: Path
) -> None:
    from emoforge.release.clip_media import ClipMediaCutter
    from tests.conftest import run_ffmpeg

    cover = generated_dir / "tone_with_cover.flac"
    run_ffmpeg(
        *("-f", "lavfi", "-i", "sine=frequency=440:duration=3", "-f", "lavfi", "-i", "color=c=red:s=64x64:d=1"),
        *("-map", "0:a", "-map", "1:v", "-frames:v", "1", "-c:a", "flac", "-c:v", "mjpeg"),
        *("-disposition:v:0", "attached_pic", str(cover)),
    )
    rows = [_row("tone", 0.5, 2.5, uri=str(cover)), _row("broken", 0.0, 1.0, uri=str(corrupt_media))]
    cut = ClipMediaCutter(tmp_path).cut_all(rows)
    tone, broken = cut["tone-00000"], cut["broken-00000"]
    assert tone.audio is not None and media_duration(tmp_path / tone.audio) == pytest.approx(2.0, abs=0.05)
    assert tone.frames == [] and tone.notes == ["no video stream: audio only"]  # the cover is no frame of the clip
    assert broken.audio is None and broken.frames == []
    assert len(broken.notes) == 1 and broken.notes[0].startswith("media unreadable: ")
