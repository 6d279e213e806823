"""Generate small sample media so the demo runs on a fresh machine with no data.

Speech comes from espeak-ng (three sentences spoken with different pitch and rate),
video from ffmpeg's test sources; both are Debian packages installed by setup.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

SENTENCES = (
    ("happy", "What a wonderful surprise, I am so happy to see you all here today!", 70, 185),
    ("sad", "I miss them so much. Nothing feels the same since they left.", 30, 120),
    ("angry", "This is completely unacceptable. I told you twice already, stop it now!", 55, 200),
)


def _run(*args: str) -> None:
    subprocess.run(args, check=True, capture_output=True)


def _need(binary: str) -> str:
    exe = shutil.which(binary)
    if exe is None:
        raise RuntimeError(f"{binary} is not installed; run scripts/setup.sh first")
    return exe


def make_sample_media(folder: Path) -> list[Path]:
    """Write three speech WAVs and one talking-video MP4 (colour bars + speech) into ``folder``."""
    ffmpeg, espeak = _need("ffmpeg"), _need("espeak-ng")
    folder.mkdir(parents=True, exist_ok=True)
    wavs = []
    for name, text, pitch, rate in SENTENCES:
        raw = folder / f"{name}.raw.wav"
        out = folder / f"speech_{name}.wav"
        if not out.exists():
            _run(espeak, "-v", "en-us", "-p", str(pitch), "-s", str(rate), "-w", str(raw), text)
            _run(
                ffmpeg, "-hide_banner", "-loglevel", "error", "-y", "-i", str(raw), "-ar", "16000", "-ac", "1", str(out)
            )
            raw.unlink(missing_ok=True)
        wavs.append(out)
    video = folder / "talk_bars.mp4"
    if not video.exists():
        _run(
            ffmpeg,
            "-hide_banner",
            "-loglevel",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x240:rate=25:duration=4",
            "-f",
            "lavfi",
            "-i",
            "smptebars=size=320x240:rate=25:duration=4",
            "-i",
            str(wavs[0]),
            "-filter_complex",
            "[0:v][1:v]concat=n=2:v=1:a=0[v]",
            "-map",
            "[v]",
            "-map",
            "2:a",
            "-c:v",
            "libx264",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
            "-shortest",
            str(video),
        )
    return [*wavs, video]
