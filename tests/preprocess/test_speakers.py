"""Overlapped speech against two_speakers.rttm; speaker turns attached to segments and words."""

from __future__ import annotations

from pathlib import Path

import pytest

from emoforge.configs.preprocess import DiarizationConfig
from emoforge.preprocess.media import Media
from emoforge.preprocess.speakers import SpeakerAnalyzer, clip_spans, label_words, speaker_of
from emoforge.storage.records import ErrorKind, Span, Word
from tests.preprocess.conftest import decode


def _rttm(path: Path) -> list[Span]:
    turns = []
    for line in path.read_text().splitlines():
        f = line.split()
        turns.append(Span(start_s=float(f[3]), end_s=float(f[3]) + float(f[4]), label=f[7]))
    return turns


def _overlap_of(turns: list[Span]) -> list[Span]:
    out = []
    for i, a in enumerate(turns):
        for b in turns[i + 1 :]:
            if a.label != b.label and min(a.end_s, b.end_s) > max(a.start_s, b.start_s):
                out.append(Span(start_s=max(a.start_s, b.start_s), end_s=min(a.end_s, b.end_s)))
    return out


def _inter(a: list[Span], b: list[Span]) -> float:
    return sum(max(0.0, min(x.end_s, y.end_s) - max(x.start_s, y.start_s)) for x in a for y in b)


@pytest.fixture(scope="module")
def two(media_dir: Path) -> Media:
    return decode(media_dir / "two_speakers.wav")


def test_overlaps_match_the_reference(two: Media, fixtures_dir: Path) -> None:
    ref = _overlap_of(_rttm(fixtures_dir / "labels" / "two_speakers.rttm"))
    assert two.audio is not None
    got = SpeakerAnalyzer(DiarizationConfig()).analyze(two.audio, two.sample_rate)
    assert got.backend == "unavailable" and not got.turns  # no pipeline configured: no invented speakers
    assert got.overlap_model and not got.failures
    hit = _inter(ref, got.overlaps)
    recall = hit / sum(s.end_s - s.start_s for s in ref)
    precision = hit / sum(s.end_s - s.start_s for s in got.overlaps)
    assert recall >= 0.8 and precision >= 0.6, (recall, precision, got.overlaps)


def test_missing_pipeline_is_a_typed_failure_not_a_guess(two: Media) -> None:
    assert two.audio is not None
    got = SpeakerAnalyzer(DiarizationConfig(overlap=False, pipeline="/nonexistent/pipeline")).analyze(
        two.audio, two.sample_rate
    )
    assert got.backend == "unavailable" and got.turns == [] and got.overlaps == []
    assert [(f.stage, f.kind) for f in got.failures] == [("diarization", ErrorKind.model_unavailable)]


def test_turns_label_words_and_clip_to_segments(fixtures_dir: Path) -> None:
    turns = _rttm(fixtures_dir / "labels" / "two_speakers.rttm")
    words = [
        Word(text="a", start_s=8.5, end_s=9.0),
        Word(text="b", start_s=15.0, end_s=15.4),
        Word(text="c", start_s=1.0, end_s=1.2),
    ]
    labelled = label_words(words, turns)
    assert [w.speaker for w in labelled] == ["speaker90", "speaker91", None]
    assert speaker_of(10.6, 11.0, turns) in {"speaker90", "speaker91"}
    inside = clip_spans(turns, 14.0, 15.0)
    assert [(s.label, s.start_s, s.end_s) for s in inside] == [("speaker90", 14.0, 14.7), ("speaker91", 14.49, 15.0)]
