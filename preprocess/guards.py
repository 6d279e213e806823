"""Guards that keep one input from hanging or exhausting a worker: what kind of file it is,
the resource limits of ``sampling.media``, and the buffer decoded audio is written into."""

from __future__ import annotations

import stat

import numpy as np

from emoforge.configs.sampling import MediaConfig
from emoforge.storage.records import Recording, StreamInfo


def file_type(mode: int) -> str:
    """What a non-regular file is, in words, for the failure message."""
    for test, name in (
        (stat.S_ISDIR, "directory"),
        (stat.S_ISCHR, "character device"),
        (stat.S_ISBLK, "block device"),
        (stat.S_ISFIFO, "FIFO"),
        (stat.S_ISSOCK, "socket"),
    ):
        if test(mode):
            return name
    return "special file"


def over_limit(config: MediaConfig, duration: float, streams: list[StreamInfo]) -> str | None:
    """Why a probed recording is past a resource limit (decoding it would take too much
    memory), or None. Checked from container facts, before anything is decoded."""
    cap = config.max_duration_s
    if cap is not None and duration > cap:
        return f"duration {duration:.0f}s exceeds sampling.media.max_duration_s={cap:g}"
    pixels = config.max_pixels
    for s in streams:
        if pixels is not None and s.kind == "video" and (s.width or 0) * (s.height or 0) > pixels:
            return f"video {s.width}x{s.height} exceeds sampling.media.max_pixels={pixels}"
    return None


def stream_duration(recording: Recording, kind: str) -> float | None:
    """The duration the container claims for the first stream of ``kind`` (decoders read the first)."""
    stream = next((s for s in recording.streams if s.kind == kind), None)
    return stream.duration_s if stream is not None and stream.duration_s else recording.duration_s


# FFmpeg demuxers without an index or a duration field: their duration is a bitrate estimate.
ESTIMATED_DURATION_FORMATS = frozenset(
    {"mp3", "aac", "ac3", "eac3", "dts", "mpegts", "mpeg", "mpegvideo", "h264", "hevc", "m4v"}
)


def duration_is_estimated(uri: str) -> bool:
    """Whether the container's duration is a guess (so decoding less than it proves nothing)."""
    import av

    try:
        with av.open(uri) as container:
            names = set(container.format.name.split(","))
    except (av.error.FFmpegError, OSError):
        return False
    return bool(names & ESTIMATED_DURATION_FORMATS)


class Growable:
    """A float32 array filled in place; grows by half when the duration estimate was short."""

    def __init__(self, capacity: int) -> None:
        self.data = np.empty(max(1, capacity), np.float32)
        self.size = 0

    def append(self, samples: np.ndarray) -> None:
        end = self.size + len(samples)
        if end > len(self.data):
            grown = np.empty(max(end, len(self.data) * 3 // 2), np.float32)
            grown[: self.size] = self.data[: self.size]
            self.data = grown
        self.data[self.size : end] = samples
        self.size = end

    def array(self) -> np.ndarray:
        # A view when nearly full (no copy); a copy when the estimate was far too long, so the
        # unused tail is not kept alive with the recording.
        if self.size * 10 >= len(self.data) * 9:
            return self.data[: self.size]
        return self.data[: self.size].copy()
