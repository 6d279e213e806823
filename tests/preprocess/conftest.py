"""Shared, session-scoped stage-2 objects: decode each fixture once, load each model once."""

from __future__ import annotations

from pathlib import Path

import pytest

from emoforge.configs.preprocess import AsrConfig, FaceConfig, PreprocessConfig
from emoforge.configs.sampling import KeyframeConfig, MediaConfig
from emoforge.preprocess.asr import RecordingTranscript, SpeechTranscriber
from emoforge.preprocess.extractor import FeatureExtractor
from emoforge.preprocess.faces import FaceFrame, FaceTracker
from emoforge.preprocess.media import Media, MediaDecoder, MediaProber
from emoforge.storage.records import RunContext, Span
from tests.conftest import MER_CLIPS

MER_EMOTION = {"sample_00000694": "angry", "sample_00003358": "sad", "sample_00004735": "happy"}


def decode(path: Path) -> Media:
    rec = MediaProber(MediaConfig()).probe(path)
    return MediaDecoder(MediaConfig()).decode(rec)


def whole(media: Media) -> list[Span]:
    return [Span(start_s=0.0, end_s=len(media.audio) / media.sample_rate)] if media.audio is not None else []


@pytest.fixture(scope="session")
def ctx() -> RunContext:
    return RunContext(run_id="test-run", config_hash="0123456789abcdef", emoforge_version="0.1.0")


@pytest.fixture(scope="session")
def jfk(media_dir: Path) -> Media:
    return decode(media_dir / "jfk.flac")


@pytest.fixture(scope="session")
def mer(media_dir: Path) -> dict[str, Media]:
    """The three MER clips decoded once, keyed by sample id."""
    return {Path(c).stem: decode(media_dir / c) for c in MER_CLIPS}


@pytest.fixture(scope="session")
def transcriber() -> SpeechTranscriber:
    """Default ASR config: language detected by the multilingual model."""
    return SpeechTranscriber(AsrConfig())


@pytest.fixture(scope="session")
def forced_en() -> SpeechTranscriber:
    return SpeechTranscriber(AsrConfig(language="en"))


@pytest.fixture(scope="session")
def mer_auto(transcriber: SpeechTranscriber, mer: dict[str, Media]) -> dict[str, RecordingTranscript]:
    return {sid: transcriber.transcribe(m.audio, m.sample_rate, whole(m)) for sid, m in mer.items()}


@pytest.fixture(scope="session")
def tracker() -> FaceTracker:
    return FaceTracker(FaceConfig())


@pytest.fixture(scope="session")
def mer_faces(tracker: FaceTracker, mer: dict[str, Media]) -> dict[str, list[FaceFrame]]:
    out = {}
    for sid, m in mer.items():
        assert m.frames is not None
        out[sid] = tracker.track(m.frames.iter_between(0.0, 1e9))
    return out


@pytest.fixture(scope="session")
def extractor(ctx: RunContext) -> FeatureExtractor:
    return FeatureExtractor(PreprocessConfig(), KeyframeConfig(), ctx)
