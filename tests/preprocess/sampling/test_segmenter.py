"""Segment policy: hypothesis on the time arithmetic, then real media end to end."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from emoforge.configs.sampling import SamplingConfig, SegmentPolicy, VadConfig
from emoforge.preprocess.media import Media
from emoforge.preprocess.sampling.segmenter import Segmenter, plan_segments
from emoforge.storage.records import Span, segment_id_for
from tests.conftest import run_ffmpeg
from tests.preprocess.sampling.conftest import MER_CUTS_S, load

EPS = 1e-9


@st.composite
def timelines(draw: st.DrawFn) -> tuple[float, list[Span], list[Span]]:
    duration = draw(st.floats(0.05, 300, allow_nan=False))
    cuts = sorted(draw(st.lists(st.floats(0, duration, allow_nan=False), max_size=8)))
    edges = [0.0, *[c for c in cuts if 0 < c < duration], duration]
    shots = [Span(start_s=a, end_s=b) for a, b in itertools.pairwise(edges) if b > a]
    turns = []
    for _ in range(draw(st.integers(0, 25))):
        a = draw(st.floats(-2, duration + 2, allow_nan=False))
        turns.append(Span(start_s=a, end_s=a + draw(st.floats(0.01, 40, allow_nan=False))))
    return duration, shots, turns


policies = st.builds(
    SegmentPolicy,
    merge_gap_s=st.floats(0, 3),
    max_len_s=st.floats(2, 30),
    min_len_s=st.floats(0, 0.5),
    pad_s=st.floats(0, 0.4),
    cross_shots=st.booleans(),
    visual_mode=st.sampled_from(["off", "gaps", "whole"]),
)


@settings(max_examples=400, deadline=None)
@given(timeline=timelines(), policy=policies, has_audio=st.booleans(), has_video=st.booleans())
@example(  # found by CI: rounding chunk edges to ms made a chunk 0.1 ms longer than max_len_s
    timeline=(66.4375, [Span(start_s=0.0, end_s=29.46875), Span(start_s=29.46875, end_s=66.4375)], []),
    policy=SegmentPolicy(
        merge_gap_s=0.0, max_len_s=2.174862781946443, min_len_s=0.0, pad_s=0.0, cross_shots=False, visual_mode="off"
    ),
    has_audio=False,
    has_video=True,
)
def test_policy_invariants(
    timeline: tuple[float, list[Span], list[Span]], policy: SegmentPolicy, has_audio: bool, has_video: bool
) -> None:
    duration, shots, turns = timeline
    speech = turns if has_audio else []
    plan = plan_segments(speech, shots, duration, policy, has_audio=has_audio, has_video=has_video)
    assert plan == plan_segments(speech, shots, duration, policy, has_audio=has_audio, has_video=has_video)
    for p in plan:
        assert 0.0 <= p.start_s < p.end_s <= round(duration, 3) + EPS  # inside the media
        if p.kind != "full":
            assert p.end_s - p.start_s <= policy.max_len_s + EPS
        if p.kind == "speech":
            assert p.end_s - p.start_s >= policy.min_len_s - 2e-3
            assert any(min(p.end_s, t.end_s) > max(p.start_s, t.start_s) for t in speech)
        if not policy.cross_shots and p.kind != "full":  # never across a cut
            shot = shots[p.shot_index]
            assert round(shot.start_s, 3) - EPS <= p.start_s and p.end_s <= round(shot.end_s, 3) + EPS
    for a, b in itertools.pairwise(plan):  # sorted, never overlapping
        assert a.end_s <= b.start_s + EPS
    if not speech and not has_video:
        assert plan == []


@settings(max_examples=300, deadline=None)
@given(timeline=timelines(), policy=policies)
def test_speech_is_covered(timeline: tuple[float, list[Span], list[Span]], policy: SegmentPolicy) -> None:
    """Every speech turn at least min_len long, inside one region, ends up inside segments."""
    duration, shots, turns = timeline
    plan = plan_segments(turns, shots, duration, policy)
    regions = [(0.0, duration)] if policy.cross_shots else [(s.start_s, s.end_s) for s in shots]
    covered = [(p.start_s, p.end_s) for p in plan if p.kind in ("speech", "full")]
    for t in turns:
        for lo, hi in regions:
            a, b = round(max(t.start_s, lo), 3), round(min(t.end_s, hi), 3)
            if b - a < max(policy.min_len_s, 0.01) or b - a > policy.max_len_s / 2:
                continue  # short pieces may be dropped; long ones may be hard-split below min_len
            inside = sum(max(0.0, min(b, y) - max(a, x)) for x, y in covered)
            assert inside >= (b - a) - 2e-3, (t, (lo, hi), covered)


def test_merge_split_pad_worked_example() -> None:
    policy = SegmentPolicy(merge_gap_s=0.5, max_len_s=10, min_len_s=1, pad_s=0.2)
    speech = [Span(start_s=s, end_s=e) for s, e in [(1, 3), (3.3, 6), (6.2, 9.5), (12, 12.5), (20, 21.5)]]
    plan = plan_segments(speech, [Span(start_s=0, end_s=30)], 30, policy)
    # 1-9.5 merges (gaps 0.3, 0.2) and fits 10 s - 2*0.2; 12-12.5 is too short; 20-21.5 stands alone
    assert [(p.start_s, p.end_s, p.kind) for p in plan] == [(0.8, 9.7, "speech"), (19.8, 21.7, "speech")]
    long_turns = [Span(start_s=0, end_s=7), Span(start_s=7.3, end_s=14), Span(start_s=14.2, end_s=25)]
    split = plan_segments(long_turns, [Span(start_s=0, end_s=30)], 30, policy.model_copy(update={"pad_s": 0.0}))
    # split at the pauses 7.0-7.3 and 14.0-14.2; the 10.8 s last turn is halved
    assert [(p.start_s, p.end_s) for p in split] == [(0, 7), (7.3, 14), (14.2, 19.6), (19.6, 25)]


def test_visual_modes_and_short_files() -> None:
    shots = [Span(start_s=0, end_s=4), Span(start_s=4, end_s=40)]
    speech = [Span(start_s=1, end_s=3)]
    gaps = plan_segments(speech, shots, 40, SegmentPolicy(visual_mode="gaps", max_len_s=15, pad_s=0))
    assert [(p.kind, p.shot_index, p.start_s, p.end_s) for p in gaps] == [
        ("speech", 0, 1, 3),
        ("visual", 1, 4, 16),
        ("visual", 1, 16, 28),
        ("visual", 1, 28, 40),
    ]
    off = plan_segments(speech, shots, 40, SegmentPolicy(visual_mode="off", pad_s=0))
    assert [p.kind for p in off] == ["speech"]
    whole = plan_segments([], shots, 40, SegmentPolicy(visual_mode="whole"))
    assert [(p.kind, p.start_s, p.end_s) for p in whole] == [("full", 0, 40)]
    # no audio track: visual segments per shot whatever visual_mode says (except 'whole')
    mute = plan_segments([], shots, 40, SegmentPolicy(visual_mode="off", max_len_s=40), has_audio=False)
    assert [(p.kind, p.start_s, p.end_s) for p in mute] == [("visual", 0, 4), ("visual", 4, 40)]
    # a 0.6 s clip with a 0.4 s word: below min_len, still one full segment
    tiny = plan_segments([Span(start_s=0.1, end_s=0.5)], [Span(start_s=0, end_s=0.6)], 0.6, SegmentPolicy())
    assert [(p.kind, p.start_s, p.end_s) for p in tiny] == [("full", 0, 0.6)]
    # audio only, no speech: nothing to annotate
    assert plan_segments([], [Span(start_s=0, end_s=20)], 20, SegmentPolicy(), has_video=False) == []


def test_min_shot_merges_flash_cuts() -> None:
    shots = [Span(start_s=0, end_s=5), Span(start_s=5, end_s=5.2), Span(start_s=5.2, end_s=10)]
    speech = [Span(start_s=4, end_s=6.5)]
    split = plan_segments(speech, shots, 10, SegmentPolicy(pad_s=0, min_len_s=0.1))
    assert [(p.start_s, p.end_s) for p in split] == [(4, 5), (5, 5.2), (5.2, 6.5)]
    # the 0.2 s shot joins the previous one: the cut at 5.0 s no longer splits the turn
    merged = plan_segments(speech, shots, 10, SegmentPolicy(pad_s=0, min_shot_s=0.5, min_len_s=0.1))
    assert [(p.start_s, p.end_s, p.shot_index) for p in merged] == [(4, 5.2, 0), (5.2, 6.5, 2)]


def test_segmenter_on_mer_concat_never_crosses_cuts(mer_concat_media: Media) -> None:
    segmenter = Segmenter(SamplingConfig())
    segments = segmenter.segment(mer_concat_media)
    assert segments == Segmenter(SamplingConfig()).segment(mer_concat_media)  # deterministic ids and spans
    rec = mer_concat_media.recording
    assert [s.id for s in segments] == [segment_id_for(rec.id, i) for i in range(len(segments))]
    assert {s.shot_index for s in segments} == {0, 1, 2}
    bounds = [0.0, *MER_CUTS_S, mer_concat_media.duration_s]
    for s in segments:
        lo, hi = bounds[s.shot_index or 0], bounds[(s.shot_index or 0) + 1]
        assert lo - 0.04 <= s.start_s < s.end_s <= hi + 0.04
        assert s.kind == "speech" and s.instruction is not None and s.instruction.version == "emo-cot-v1"
    assert sum(s.duration_s for s in segments) > 0.6 * mer_concat_media.duration_s  # dialogue clips


def test_segmenter_pyannote_fills_overlap(two_speakers_media: Media) -> None:
    config = SamplingConfig(vad=VadConfig(backend="pyannote"))
    segments = Segmenter(config).segment(two_speakers_media)
    assert [s.kind for s in segments] == ["speech"] * len(segments)
    assert segments[0].start_s == pytest.approx(6.6, abs=0.2)
    # the reference has ~1.8 s of overlapped speech in total
    assert sum(s.overlap_s for s in segments) == pytest.approx(1.8, abs=0.5)
    assert all(s.duration_s <= config.policy.max_len_s + 1e-6 for s in segments)


def test_segmenter_video_without_audio(silent_video: Path) -> None:
    segments = Segmenter(SamplingConfig()).segment(load(silent_video))
    assert [(s.kind, s.start_s, s.end_s, s.shot_index) for s in segments] == [("visual", 0.0, 3.0, 0)]


def test_segmenter_audio_without_speech(generated_dir: Path) -> None:
    hum = generated_dir / "hum.wav"
    run_ffmpeg("-f", "lavfi", "-i", "sine=frequency=120:duration=4", "-ar", "16000", str(hum))
    assert Segmenter(SamplingConfig()).segment(load(hum)) == []


def test_segmenter_very_short_clip(generated_dir: Path) -> None:
    clip = generated_dir / "flash.mp4"
    run_ffmpeg(
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=160x120:rate=25:duration=0.4",
        "-f",
        "lavfi",
        "-i",
        "anullsrc=r=16000:cl=mono",
        "-t",
        "0.4",
        "-c:v",
        "libx264",
        "-pix_fmt",
        "yuv420p",
        "-c:a",
        "aac",
        str(clip),
    )
    (segment,) = Segmenter(SamplingConfig()).segment(load(clip))
    assert segment.kind == "full" and segment.start_s == 0.0 and segment.end_s == pytest.approx(0.4, abs=0.05)
