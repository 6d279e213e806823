"""Shot detection against the known cuts of a concat of the three MER clips."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emoforge.configs.sampling import MediaConfig, ShotConfig
from emoforge.preprocess.media import Media
from emoforge.preprocess.sampling.shots import ShotDetector, spans_from_cuts
from tests.conftest import MER_CLIPS
from tests.preprocess.sampling.conftest import FPS, MER_CUTS_S, MER_FRAMES, load

FRAME = 1.0 / FPS


def _cuts(spans) -> list[float]:
    return [s.start_s for s in spans[1:]]


@pytest.mark.parametrize(
    "config",
    [
        ShotConfig(detector="content"),
        ShotConfig(detector="adaptive"),
        ShotConfig(detector="content", source="file"),
        ShotConfig(detector="adaptive", source="file"),
        ShotConfig(source="file", backend="opencv", downscale=2),
    ],
    ids=["scan-content", "scan-adaptive", "file-content", "file-adaptive", "file-opencv-downscale2"],
)
def test_cuts_within_one_frame_of_the_joins(mer_concat_media: Media, config: ShotConfig) -> None:
    shots = ShotDetector(config).detect(mer_concat_media)
    cuts = _cuts(shots)
    assert len(cuts) == len(MER_CUTS_S), f"false or missed cuts: {cuts}"
    for got, want in zip(cuts, MER_CUTS_S, strict=True):
        assert abs(got - want) <= FRAME + 1e-6
    assert shots[0].start_s == 0.0 and shots[-1].end_s == pytest.approx(mer_concat_media.duration_s)
    assert all(a.end_s == b.start_s for a, b in itertools.pairwise(shots))


def test_decode_pass_scores_every_frame(mer_concat_media: Media) -> None:
    """The decoder scored all 586 frames; the two joins are the two largest scores, by far."""
    frames = mer_concat_media.frames
    assert frames is not None
    assert len(frames.scan_times) == sum(MER_FRAMES) == len(frames.scan_scores)
    assert frames.scan_scores.nbytes + frames.scan_times.nbytes == 12 * sum(MER_FRAMES)
    top2 = sorted(np.argsort(frames.scan_scores)[-2:].tolist())
    assert [frames.scan_times[i] for i in top2] == pytest.approx(list(MER_CUTS_S), abs=1e-6)
    assert np.sort(frames.scan_scores)[-3] < ShotConfig().threshold < np.sort(frames.scan_scores)[-2]


def test_scan_falls_back_to_the_file_without_scores(mer_concat: Path) -> None:
    media = load(mer_concat, MediaConfig(scan_side=0))
    assert media.frames is not None and len(media.frames.scan_times) == 0
    cuts = _cuts(ShotDetector(ShotConfig()).detect(media))
    assert cuts == pytest.approx(list(MER_CUTS_S), abs=FRAME + 1e-6)


def test_cuts_from_the_shared_frame_store(mer_concat_media: Media) -> None:
    """No second decode: cuts are exact to one sampled frame (1/frame_fps)."""
    step = 1.0 / MediaConfig().frame_fps
    cuts = _cuts(ShotDetector(ShotConfig(source="frames")).detect(mer_concat_media))
    assert len(cuts) == len(MER_CUTS_S)
    for got, want in zip(cuts, MER_CUTS_S, strict=True):
        assert want - 1e-6 <= got <= want + step + 1e-6


@pytest.mark.parametrize("clip", MER_CLIPS)
def test_no_false_cuts_inside_a_single_clip(media_dir: Path, clip: str) -> None:
    shots = ShotDetector(ShotConfig()).detect(load(media_dir / clip))
    assert len(shots) == 1


def test_audio_only_and_disabled_give_one_shot(two_speakers_media: Media, mer_concat_media: Media) -> None:
    (shot,) = ShotDetector(ShotConfig()).detect(two_speakers_media)
    assert (shot.start_s, shot.end_s) == (0.0, 30.0)
    (whole,) = ShotDetector(ShotConfig(enabled=False)).detect(mer_concat_media)
    assert whole.end_s == pytest.approx(mer_concat_media.duration_s)


@settings(max_examples=200, deadline=None)
@given(
    duration=st.floats(0.01, 10_000, allow_nan=False),
    cuts=st.lists(st.floats(-10, 11_000, allow_nan=False), max_size=30),
)
def test_spans_from_cuts_tile_the_media(duration: float, cuts: list[float]) -> None:
    spans = spans_from_cuts(cuts, duration)
    assert spans[0].start_s == 0.0 and spans[-1].end_s == duration
    assert all(s.end_s > s.start_s for s in spans)
    assert all(a.end_s == b.start_s for a, b in itertools.pairwise(spans))
    assert len(spans) == 1 + len({c for c in cuts if 0 < c < duration})
