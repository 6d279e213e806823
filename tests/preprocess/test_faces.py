"""Faces, head pose, geometry and landmark AUs on real frames of the MER clips."""

from __future__ import annotations

import numpy as np
import pytest

from emoforge.configs.preprocess import AUConfig
from emoforge.preprocess.aus_landmarks import AU_NAMES, NEUTRAL, LandmarkAUEstimator
from emoforge.preprocess.faces import FaceFrame, FaceTracker
from emoforge.preprocess.geometry import DESCRIPTORS, FaceGeometry
from emoforge.preprocess.media import Media
from tests.preprocess.conftest import MER_EMOTION

HAPPY, SAD = "sample_00004735", "sample_00003358"


def _frame(m: Media, i: int) -> np.ndarray:
    assert m.frames is not None
    return m.frames.frame(i)


def test_faces_found_on_95_percent_of_mer_frames(mer_faces: dict[str, list[FaceFrame]]) -> None:
    frames = [f for sid in MER_EMOTION for f in mer_faces[sid]]
    found = sum(f.landmarks is not None for f in frames)
    assert len(frames) >= 40
    assert found / len(frames) >= 0.95
    assert all(f.landmarks is None or f.landmarks.shape == (478, 3) for f in frames)


def test_no_face_on_a_blank_frame(tracker: FaceTracker) -> None:
    [f] = tracker.track([(0.0, np.full((360, 640, 3), 128, np.uint8))])
    assert f.landmarks is None and f.faces == 0


def test_mirror_flips_yaw_and_roll_and_keeps_geometry(tracker: FaceTracker, mer: dict[str, Media]) -> None:
    img = _frame(mer[SAD], 2)
    [a], [b] = tracker.track([(0.0, img)]), tracker.track([(0.0, img[:, ::-1].copy())])
    assert a.landmarks is not None and b.landmarks is not None
    geo = FaceGeometry()
    da, pa = geo.describe(a.landmarks)
    db, pb = geo.describe(b.landmarks)
    assert abs(pa["yaw"]) > 10  # this clip's speaker looks to the side
    assert np.sign(pa["yaw"]) == -np.sign(pb["yaw"]) and abs(pa["yaw"] + pb["yaw"]) < 8
    assert np.sign(pa["roll"]) == -np.sign(pb["roll"]) and abs(pa["roll"] + pb["roll"]) < 4
    for k in ("mouth_width", "eye_aperture", "lip_corner_raise", "brow_inner_raise"):
        assert da[k] == pytest.approx(db[k], abs=0.03), k


def test_geometry_is_normalised_for_face_size(tracker: FaceTracker, mer: dict[str, Media]) -> None:
    import cv2

    img = _frame(mer[HAPPY], 3)
    small = cv2.resize(img, None, fx=0.8, fy=0.8, interpolation=cv2.INTER_AREA)
    [a], [b] = tracker.track([(0.0, img)]), tracker.track([(0.0, small)])
    assert a.landmarks is not None and b.landmarks is not None
    da, _ = FaceGeometry().describe(a.landmarks)
    db, _ = FaceGeometry().describe(b.landmarks)
    assert set(da) == set(DESCRIPTORS)
    diffs = [abs(da[k] - db[k]) for k in DESCRIPTORS]
    # mesh noise moves single points a little between resolutions; a missed normalisation would move all by 20 %
    assert float(np.median(diffs)) < 0.015 and max(diffs) < 0.05, dict(zip(DESCRIPTORS, diffs, strict=True))
    # the same face at 80 % size spans 80 % of the pixels
    assert np.ptp(b.landmarks[:, 0]) == pytest.approx(0.8 * np.ptp(a.landmarks[:, 0]), rel=0.05)


def test_main_face_is_the_larger_one(tracker: FaceTracker, mer: dict[str, Media]) -> None:
    import cv2

    img = _frame(mer[SAD], 2)
    h, w = img.shape[:2]
    canvas = np.full((h, 2 * w, 3), 90, np.uint8)
    canvas[:, w:] = img
    small = cv2.resize(img, None, fx=0.7, fy=0.7, interpolation=cv2.INTER_AREA)
    canvas[: small.shape[0], : small.shape[1]] = small
    [f] = tracker.track([(0.0, canvas)])
    assert f.faces == 2
    assert f.landmarks is not None and f.landmarks[:, 0].mean() > w  # the full-size face on the right


def _aus(frames: list[FaceFrame]) -> list[dict[str, float]]:
    geo = FaceGeometry()
    desc = [geo.describe(f.landmarks)[0] for f in frames if f.landmarks is not None]
    return LandmarkAUEstimator(AUConfig()).estimate(desc)


def test_landmark_aus_smile_more_on_the_happy_clip(mer_faces: dict[str, list[FaceFrame]]) -> None:
    happy, sad = _aus(mer_faces[HAPPY]), _aus(mer_faces[SAD])
    assert set(happy[0]) == set(AU_NAMES)
    for au in ("AU12", "AU6"):
        h = float(np.mean([f[au] for f in happy]))
        s = float(np.mean([f[au] for f in sad]))
        assert h > s + 0.15, (au, h, s)
    # and the sad clip's lip corners are the depressed ones
    assert np.mean([f["AU15"] for f in sad]) > np.mean([f["AU15"] for f in happy]) + 0.1


_NEUTRAL_FRAME = {**NEUTRAL, "mouth_open": 0.0}
_CASES = [  # (AU, descriptor, change toward the AU)
    ("AU1", "brow_inner_raise", +0.04), ("AU2", "brow_outer_raise", +0.04), ("AU4", "brow_gap", -0.03),
    ("AU5", "upper_lid_height", +0.03), ("AU6", "cheek_height", -0.03), ("AU7", "lower_lid_height", +0.015),
    ("AU9", "nose_wing_height", -0.04), ("AU10", "upper_lip_gap", -0.04), ("AU12", "lip_corner_raise", +0.04),
    ("AU15", "lip_corner_raise", -0.03), ("AU17", "chin_lip_gap", -0.04), ("AU20", "mouth_width", +0.06),
    ("AU23", "lip_thickness", -0.03), ("AU25", "mouth_open", +0.08), ("AU26", "jaw_open", +0.08),
    ("AU45", "eye_aperture", -0.07),
]  # fmt: skip


@pytest.mark.parametrize(("au", "name", "delta"), _CASES)
def test_each_au_formula_moves_with_its_descriptor(au: str, name: str, delta: float) -> None:
    frames = [dict(_NEUTRAL_FRAME) for _ in range(9)]
    frames.append({**_NEUTRAL_FRAME, name: _NEUTRAL_FRAME[name] + delta})
    out = LandmarkAUEstimator(AUConfig()).estimate(frames)
    assert out[0][au] == pytest.approx(0.0, abs=1e-6)  # the segment's neutral frames read as zero
    assert out[-1][au] >= 0.2, out[-1]  # two-term AUs get half from one descriptor


def test_baseline_is_the_segments_own_but_never_above_neutral() -> None:
    est = LandmarkAUEstimator(AUConfig())
    # A person whose resting lip corners sit low: their own rest reads as zero, a smile does not.
    low = [{**_NEUTRAL_FRAME, "lip_corner_raise": -0.02} for _ in range(9)]
    low.append({**_NEUTRAL_FRAME, "lip_corner_raise": 0.02})
    out = est.estimate(low)
    assert out[0]["AU12"] == 0.0 and out[-1]["AU12"] > 0.5
    # A smile held for the whole segment is bounded by the neutral value, so it still reads as a smile.
    held = [{**_NEUTRAL_FRAME, "lip_corner_raise": NEUTRAL["lip_corner_raise"] + 0.05} for _ in range(10)]
    assert min(f["AU12"] for f in est.estimate(held)) > 0.6
