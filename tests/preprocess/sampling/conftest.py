"""Media shared by the sampling tests: generated once per session, models loaded once."""

from __future__ import annotations

from pathlib import Path

import pytest

from emoforge.configs.sampling import MediaConfig, VadConfig
from emoforge.preprocess.media import Media, MediaDecoder, MediaProber
from emoforge.preprocess.sampling.vad_pyannote import PyannoteSegmentation
from emoforge.preprocess.sampling.vad_silero import SileroVad
from tests.conftest import MER_CLIPS, run_ffmpeg

FPS = 25
# frame counts of the three MER clips at 25 fps (339, 98, 149 frames): the cuts of the concat
MER_FRAMES = (339, 98, 149)
MER_CUTS_S = (MER_FRAMES[0] / FPS, (MER_FRAMES[0] + MER_FRAMES[1]) / FPS)


def concat_mer(media_dir: Path, out: Path, size: str = "320:180") -> Path:
    """The three MER clips re-encoded to one size/fps and joined (video + 16 kHz audio)."""
    inputs: list[str] = []
    chains: list[str] = []
    for i, clip in enumerate(MER_CLIPS):
        inputs += ["-i", str(media_dir / clip)]
        chains.append(
            f"[{i}:v]scale={size},fps={FPS},setsar=1[v{i}];[{i}:a]aresample=16000,aformat=channel_layouts=mono[a{i}]"
        )
    joined = "".join(f"[v{i}][a{i}]" for i in range(len(MER_CLIPS)))
    graph = ";".join(chains) + f";{joined}concat=n={len(MER_CLIPS)}:v=1:a=1[v][a]"
    run_ffmpeg(
        *inputs,
        "-filter_complex",
        graph,
        "-map",
        "[v]",
        "-map",
        "[a]",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-pix_fmt",
        "yuv420p",
        "-c:a",
        "aac",
        str(out),
    )
    return out


@pytest.fixture(scope="session")
def mer_concat(media_dir: Path, generated_dir: Path) -> Path:
    return concat_mer(media_dir, generated_dir / "mer_concat.mp4")


@pytest.fixture(scope="session")
def media_config() -> MediaConfig:
    return MediaConfig()


def load(path: Path, config: MediaConfig | None = None) -> Media:
    config = config or MediaConfig()
    return MediaDecoder(config).decode(MediaProber(config).probe(path))


@pytest.fixture(scope="session")
def mer_concat_media(mer_concat: Path) -> Media:
    return load(mer_concat)


@pytest.fixture(scope="session")
def two_speakers_media(media_dir: Path) -> Media:
    return load(media_dir / "two_speakers.wav")


@pytest.fixture(scope="session")
def silero() -> SileroVad:
    return SileroVad(VadConfig(backend="silero"))


@pytest.fixture(scope="session")
def pyannote_seg() -> PyannoteSegmentation:
    return PyannoteSegmentation(VadConfig(backend="pyannote"))
