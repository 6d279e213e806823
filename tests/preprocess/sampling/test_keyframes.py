"""Key frames: K distinct frames, minimum gap, diversity across a cut, AU peak inside the segment."""

from __future__ import annotations

import itertools

import cv2
import numpy as np
import pytest

from emoforge.configs.sampling import KeyframeConfig, SamplingConfig
from emoforge.preprocess.keyframes import KeyframeSelector, peak_time
from emoforge.preprocess.media import FrameStore, Media
from emoforge.preprocess.sampling.segmenter import Segmenter
from emoforge.storage.records import AUFrame, Segment
from tests.preprocess.sampling.conftest import MER_CUTS_S


def _segment(start: float, end: float, index: int = 0) -> Segment:
    return Segment(id=f"r-{index:05d}", recording_id="r", index=index, start_s=start, end_s=end, kind="visual")


@pytest.mark.parametrize("min_gap", [0.5, 1.2])
def test_k_distinct_frames_with_min_gap(mer_concat_media: Media, min_gap: float) -> None:
    frames = mer_concat_media.frames
    assert frames is not None
    config = KeyframeConfig(k=3, min_gap_s=min_gap)
    selector = KeyframeSelector(config)
    segments = Segmenter(SamplingConfig()).segment(mer_concat_media)
    assert segments
    for seg in segments:
        keys, peak = selector.select(seg, frames)
        assert peak is None
        times = [k.t_s for k in keys]
        assert times == sorted(times) and len(set(times)) == len(times)
        assert all(seg.start_s <= t < seg.end_s for t in times)
        assert all(b - a >= min_gap - 1e-9 for a, b in itertools.combinations(times, 2))
        # as many as the segment can hold: K unless the gap rule forbids it
        inside = frames.times[frames.indices_between(seg.start_s, seg.end_s)]
        possible = 1 + int((inside[-1] - inside[0]) // min_gap) if len(inside) else 0
        assert len(keys) == min(config.k, possible) or (len(keys) < config.k and len(keys) >= min(2, possible))
        for k in keys:
            assert k.reason == "diversity" and k.jpeg is not None
            img = cv2.imdecode(np.frombuffer(k.jpeg, np.uint8), cv2.IMREAD_COLOR)
            assert img is not None and max(img.shape[:2]) <= config.jpeg_max_side


def test_diversity_picks_both_sides_of_a_cut(mer_concat_media: Media) -> None:
    frames = mer_concat_media.frames
    assert frames is not None
    cut = MER_CUTS_S[0]
    keys, _ = KeyframeSelector(KeyframeConfig(k=2, min_gap_s=0.5)).select(_segment(cut - 3, cut + 3), frames)
    assert len(keys) == 2
    assert keys[0].t_s < cut <= keys[1].t_s


def test_uniform_method_spreads_frames(mer_concat_media: Media) -> None:
    frames = mer_concat_media.frames
    assert frames is not None
    keys, _ = KeyframeSelector(KeyframeConfig(k=3, method="uniform")).select(_segment(0, 8), frames)
    assert [k.t_s for k in keys] == pytest.approx([1.52, 4.0, 6.52], abs=0.05)  # centres of thirds
    assert {k.reason for k in keys} == {"uniform"}


def test_peak_frame_from_au_intensities(mer_concat_media: Media) -> None:
    frames = mer_concat_media.frames
    assert frames is not None
    seg = _segment(2.0, 8.0)
    times = frames.times[frames.indices_between(seg.start_s, seg.end_s)]
    au = []
    for i, t in enumerate(times):
        # AU12 is present in every frame and peaks at the 7th; AU4 is rare but larger once
        values = {"AU12": 0.4 + (0.5 if i == 6 else 0.0), "AU06": 0.35, "AU04": 0.9 if i == 2 else 0.0}
        au.append(AUFrame(t_s=float(t), values=values))
    au.append(AUFrame(t_s=9.0, values={"AU12": 5.0, "AU06": 5.0}))  # outside the segment: ignored
    keys, peak = KeyframeSelector(KeyframeConfig(k=3, peak_top_aus=2)).select(seg, frames, au)
    assert peak == pytest.approx(float(times[6]))
    assert seg.start_s <= peak < seg.end_s
    peak_keys = [k for k in keys if k.reason == "peak"]
    assert [k.t_s for k in peak_keys] == [pytest.approx(peak)]
    assert len(keys) == 3 and len({k.t_s for k in keys}) == 3
    # with the single most frequent AU the answer is the same; AU04 alone would pick frame 2
    assert peak_time(seg, au, 1, 0.3) == pytest.approx(float(times[6]))
    assert peak_time(seg, [AUFrame(t_s=float(times[2]), values={"AU04": 0.9})], 1, 0.3) == pytest.approx(times[2])
    assert peak_time(seg, [], 3, 0.3) is None


def test_no_frames_in_segment() -> None:
    empty = FrameStore()
    assert KeyframeSelector(KeyframeConfig()).select(_segment(0, 5), empty) == ([], None)
