"""Face recognizer: the real FER2013 mini-Xception on real MER2023 frames, typed no-face failures."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from emoforge.agents.recognizers.face import CLASSES, FaceModelAnnotator, default_weights, load_params, predict
from emoforge.configs.agents import AgentConfig, TaxonomyConfig
from emoforge.storage.records import ErrorKind, Features, KeyFrame, RunContext, Status
from tests.agents.conftest import make_segment
from tests.conftest import run_ffmpeg

TAXONOMY = TaxonomyConfig()
TIMES = (0.5, 1.5, 2.5, 3.5)
# The net's output for a fixed 192-px face box (3x3 block means -> 64x64) of the frame at 1.48 s
# of sample_00003358.mp4, taken from the decoded luma plane: no detector, JPEG codec or OpenCV
# resize in the way, so only the weights and the maths can move it. A torch rebuild of the
# same hdf5 gives the same vector to 1e-6; TensorFlow's own quantized tflite of the model
# (fer/data/emotion_model_quantized.tflite) gives angry 0.358, fearful 0.209, sad 0.196.
FIXED_BOX = (94, 286, 265, 457)  # rows, columns in the 672x378 frame
REFERENCE = (0.3419, 0.0019, 0.2115, 0.0054, 0.2063, 0.0049, 0.2280)  # in CLASSES order


def keyframes_of(video: Path, times: tuple[float, ...]) -> list[KeyFrame]:
    """Real frames of ``video`` nearest ``times``, as the 384-px JPEG key frames the pipeline stores."""
    import av
    import cv2

    frames: list[tuple[float, np.ndarray]] = []
    with av.open(str(video)) as container:
        for frame in container.decode(video=0):
            if frame.time is not None:
                frames.append((float(frame.time), frame.to_ndarray(format="bgr24")))
    out = []
    for t in times:
        ft, img = min(frames, key=lambda f: abs(f[0] - t))
        h, w = img.shape[:2]
        scale = 384 / max(h, w)
        small = cv2.resize(img, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
        jpeg = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, 95])[1].tobytes()
        out.append(KeyFrame(t_s=ft, score=0.0, reason="uniform", jpeg=jpeg))
    return out


@pytest.fixture(scope="module")
def agent(ctx: RunContext) -> FaceModelAnnotator:
    return FaceModelAnnotator(AgentConfig(name="face_model", backend="face_model"), ctx, TAXONOMY)


@pytest.fixture(scope="module")
def sad_frames(media_dir: Path) -> list[KeyFrame]:
    return keyframes_of(media_dir / "sample_00003358.mp4", TIMES)


@pytest.fixture(scope="module")
def bars(tmp_path_factory: pytest.TempPathFactory) -> KeyFrame:
    out = tmp_path_factory.mktemp("bars") / "bars.jpg"
    run_ffmpeg("-f", "lavfi", "-i", "smptehdbars=size=384x216", "-frames:v", "1", str(out))
    return KeyFrame(t_s=1.0, score=0.0, reason="uniform", jpeg=out.read_bytes())


def features(frames: list[KeyFrame]) -> Features:
    return Features(segment_id=make_segment(start_s=0.0, end_s=4.0).id, keyframes=frames)


def test_real_frames_give_a_deterministic_distribution(agent: FaceModelAnnotator, sad_frames: list[KeyFrame]) -> None:
    seg = make_segment(start_s=0.0, end_s=4.0)
    first = agent.annotate(seg, features(sad_frames))
    assert first.status == Status.ok and first.backend == "face_model"
    assert first.provenance.model == "fer-mini-xception-fer2013"
    assert math.isclose(sum(first.label_scores.values()), 1.0, abs_tol=1e-3)
    reading = agent.read(seg, features(sad_frames))
    probs = {k: math.exp(v) for k, v in reading.scores.items()}
    assert set(probs) == set(CLASSES) and math.isclose(sum(probs.values()), 1.0, abs_tol=1e-5)
    assert reading.reliability == 1.0 and reading.modalities_seen == ["face"]
    assert [c.start_s for c in reading.evidence] == [kf.t_s for kf in sad_frames]
    assert all(c.modality == "face" and c.value is not None and 0 < c.value <= 1 for c in reading.evidence)
    # confidence = p(primary), the calibrated probability
    assert first.confidence == pytest.approx(first.label_scores[first.primary_label or ""], abs=2e-3)
    again = agent.annotate(seg, features(sad_frames))
    assert again.label_scores == first.label_scores and again.rationale == first.rationale


def test_the_real_weights_give_the_reference_probabilities(media_dir: Path) -> None:
    import av

    with av.open(str(media_dir / "sample_00003358.mp4")) as container:
        frame = next(f for f in container.decode(video=0) if f.time is not None and abs(f.time - 1.48) < 0.01)
    luma = frame.to_ndarray(format="yuv420p")[: frame.height].astype(np.float64)
    gray = np.clip((luma - 16) * 255 / 219, 0, 255)  # limited-range luma -> full-range grey
    r0, r1, c0, c1 = FIXED_BOX
    face = gray[r0:r1, c0:c1].reshape(64, 3, 64, 3).mean(axis=(1, 3))
    probs = predict(load_params(default_weights()), ((face / 255 - 0.5) * 2)[None])[0]
    assert probs.tolist() == pytest.approx(REFERENCE, abs=1e-3)


def test_frame_without_a_face_is_a_typed_failure(agent: FaceModelAnnotator, bars: KeyFrame) -> None:
    ann = agent.annotate(make_segment(), features([bars, bars]))
    assert ann.status == Status.failed and ann.failure is not None
    assert ann.failure.kind == ErrorKind.no_face and "2 key frames" in ann.failure.message
    assert not ann.labels and ann.primary_label is None
    empty = agent.annotate(make_segment(), features([]))
    assert empty.failure is not None and empty.failure.kind == ErrorKind.no_face


def test_frames_without_a_face_add_no_evidence(
    agent: FaceModelAnnotator, sad_frames: list[KeyFrame], bars: KeyFrame
) -> None:
    seg = make_segment(start_s=0.0, end_s=4.0)
    full = agent.annotate(seg, features(sad_frames[:2]))
    half = agent.annotate(seg, features([sad_frames[0], bars, sad_frames[1], bars]))
    assert half.label_scores == full.label_scores  # bars add no evidence, only lower coverage
    # Confidence stays the calibrated probability; coverage is reported, not folded in.
    assert full.confidence is not None and half.confidence == pytest.approx(full.confidence, abs=2e-3)


def test_npz_weights_match_the_hdf5_and_missing_weights_fail_typed(
    ctx: RunContext, tmp_path: Path, agent: FaceModelAnnotator, sad_frames: list[KeyFrame]
) -> None:
    npz = tmp_path / "face.npz"
    np.savez(npz, **load_params(default_weights()))
    other = FaceModelAnnotator(AgentConfig(name="face_model", backend="face_model", model=str(npz)), ctx, TAXONOMY)
    seg = make_segment(start_s=0.0, end_s=4.0)
    expected = agent.annotate(seg, features(sad_frames)).label_scores
    assert other.annotate(seg, features(sad_frames)).label_scores == expected
    broken = tmp_path / "broken.npz"
    np.savez(broken, **{k: v for k, v in load_params(default_weights()).items() if k != "head.w"})
    for model in (tmp_path / "nope.npz", broken):
        bad = FaceModelAnnotator(AgentConfig(name="face_model", backend="face_model", model=str(model)), ctx, TAXONOMY)
        failed = bad.annotate(seg, features(sad_frames))
        assert failed.failure is not None and failed.failure.kind == ErrorKind.model_unavailable
