"""Probe media files and decode each one once into audio + a sampled frame store.

``MediaProber.probe`` never raises for bad input: an unreadable file becomes a failed
Recording with a typed reason. ``MediaDecoder.decode`` returns a ``Media`` that every
later stage shares, so a file is demuxed once. Frames are kept JPEG-compressed so memory
stays bounded for long videos (a 10-minute video at 2 fps is ~1,200 small JPEGs).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from emoforge.configs.sampling import MediaConfig
from emoforge.preprocess.guards import Growable, duration_is_estimated, file_type, over_limit, stream_duration
from emoforge.preprocess.remote import TooLarge, is_remote, spooled
from emoforge.storage.records import (
    ErrorKind,
    Failure,
    FileHash,
    Recording,
    Status,
    StreamInfo,
    file_sha256,
    recording_id_for,
)

log = logging.getLogger(__name__)


class MediaError(Exception):
    """A media problem with a typed reason, turned into a failure row by the flow."""

    def __init__(self, kind: ErrorKind, message: str, stage: str = "decode") -> None:
        super().__init__(message)
        self.kind = kind
        self.stage = stage

    def failure(self) -> Failure:
        return Failure(stage=self.stage, kind=self.kind, message=str(self))


def _display_rotation(container: Any, stream: Any) -> int:
    """Degrees (0/90/180/270) a player turns the picture counter-clockwise, as ffprobe's
    display-matrix ``rotation`` (mod 360) reports it.

    PyAV exposes the display matrix on decoded frames, not on streams, so this decodes the
    first frame; a ``rotate`` metadata tag (some muxers) is the fallback.
    """
    import av

    tag = (getattr(stream, "metadata", None) or {}).get("rotate")
    try:
        for frame in container.decode(stream):
            ccw = round(frame.rotation) % 360
            if ccw:
                return ccw
            break
    except (av.error.FFmpegError, ValueError, OSError, AttributeError) as exc:
        log.debug("rotation probe failed: %s", exc)
    if tag is not None:
        try:
            return int(tag) % 360  # FFmpeg 5's mp4 muxer turns rotate=N into a display rotation of N
        except ValueError:
            return 0
    return 0


def _rotate_upright(img: np.ndarray, ccw: int) -> np.ndarray:
    """Turn a decoded picture as a player would (checked against FFmpeg's autorotation)."""
    import cv2

    codes = {90: cv2.ROTATE_90_COUNTERCLOCKWISE, 180: cv2.ROTATE_180, 270: cv2.ROTATE_90_CLOCKWISE}
    code = codes.get(ccw % 360)
    return img if code is None else cv2.rotate(img, code)


class MediaProber:
    """Reads container and stream facts; a file nothing can decode becomes a failed Recording.

    Works for anything FFmpeg demuxes (mp4, mkv, webm, avi, mov, wav, flac, mp3, ...). Cover
    art in audio files is not a video stream. Stream durations missing from the container
    (common in mkv/webm) fall back to the container duration.
    """

    def __init__(self, config: MediaConfig) -> None:
        self.config = config

    def probe(
        self,
        uri: str | Path,
        source: str | None = None,
        speaker_hint: str | None = None,
        known_hash: FileHash | None = None,
    ) -> Recording:
        """Metadata and content hash of one file; ``known_hash`` is reused while size and mtime match.

        A URL (``https://``, ``s3://``...) is streamed into a local spool, hashed on the way,
        probed there and the spool deleted (``preprocess/remote.py``); the Recording keeps the URL."""
        import av

        if is_remote(str(uri)):
            return self._probe_remote(str(uri), source, speaker_hint)
        path = Path(uri)

        def refused(kind: ErrorKind, message: str, size: int = 0) -> Recording:
            # No content hash was taken (the bytes were never read), so the id hashes the path.
            sha = hashlib.sha256(str(path).encode()).hexdigest()
            return Recording(
                id=recording_id_for(path, sha),
                uri=str(path),
                sha256=sha,
                size_bytes=size,
                source=source,
                speaker_hint=speaker_hint,
                status=Status.failed,
                failure=Failure(stage="probe", kind=kind, message=message),
            )

        try:
            st = os.stat(path)
        except OSError as exc:
            return refused(ErrorKind.invalid_input, f"unreadable: {exc}")
        # Checked before hashing: /dev/zero or a FIFO never ends, and a huge file takes minutes.
        if not stat.S_ISREG(st.st_mode):
            return refused(ErrorKind.invalid_input, f"not a regular file ({file_type(st.st_mode)})")
        cap = self.config.max_file_bytes
        if cap is not None and st.st_size > cap:
            return refused(
                ErrorKind.unsupported_media,
                f"{st.st_size} bytes exceeds sampling.media.max_file_bytes={cap}",
                st.st_size,
            )
        try:
            valid = known_hash is not None and known_hash.valid_for(path)
            sha = known_hash.sha256 if known_hash is not None and valid else file_sha256(path)
            size = path.stat().st_size
        except OSError as exc:
            return refused(ErrorKind.invalid_input, f"unreadable: {exc}")
        base = dict(
            id=recording_id_for(path, sha),
            uri=str(path),
            sha256=sha,
            size_bytes=size,
            source=source,
            speaker_hint=speaker_hint,
        )
        try:
            with av.open(str(path)) as container:
                container_s = float(container.duration / 1_000_000) if container.duration else None
                streams = [
                    info
                    for s in container.streams
                    if (info := _stream_info(container, s, self.config.max_pixels)) is not None
                ]
        except (av.error.FFmpegError, OSError, ValueError, UnicodeDecodeError) as exc:
            return Recording(
                **base,
                status=Status.failed,
                failure=Failure(stage="probe", kind=ErrorKind.corrupt_media, message=f"{type(exc).__name__}: {exc}"),
            )
        durations = [s.duration_s for s in streams if s.duration_s]
        duration = container_s if container_s else (max(durations) if durations else None)
        streams = [s if s.duration_s else s.model_copy(update={"duration_s": duration}) for s in streams]
        has_audio = any(s.kind == "audio" for s in streams)
        has_video = any(s.kind == "video" for s in streams)
        if not (has_audio or has_video):
            return Recording(
                **base,
                streams=streams,
                status=Status.failed,
                failure=Failure(stage="probe", kind=ErrorKind.unsupported_media, message="no audio or video stream"),
            )
        if not duration:
            return Recording(
                **base,
                streams=streams,
                has_audio=has_audio,
                has_video=has_video,
                status=Status.failed,
                failure=Failure(stage="probe", kind=ErrorKind.corrupt_media, message="no duration: empty media"),
            )
        limit = over_limit(self.config, duration, streams)
        if limit is not None:
            return Recording(
                **base,
                duration_s=duration,
                has_audio=has_audio,
                has_video=has_video,
                streams=streams,
                status=Status.failed,
                failure=Failure(stage="probe", kind=ErrorKind.unsupported_media, message=limit),
            )
        return Recording(**base, duration_s=duration, has_audio=has_audio, has_video=has_video, streams=streams)

    def _probe_remote(self, uri: str, source: str | None, speaker_hint: str | None) -> Recording:
        """Probe the object at ``uri`` from a spool deleted afterwards; a read failure is a row."""
        try:
            with spooled(uri, self.config.max_file_bytes) as spool:
                st = spool.path.stat()
                known = FileHash(sha256=spool.sha256, size_bytes=st.st_size, mtime_ns=st.st_mtime_ns)
                local = self.probe(spool.path, source, speaker_hint, known_hash=known)
        except OSError as exc:
            # Never read whole, so the id hashes the URL (as a local file that cannot be read).
            sha = hashlib.sha256(uri.encode()).hexdigest()
            kind = ErrorKind.unsupported_media if isinstance(exc, TooLarge) else ErrorKind.invalid_input
            return Recording(
                id=recording_id_for(PurePosixPath(uri.split("?", 1)[0]).name, sha),
                uri=uri,
                sha256=sha,
                size_bytes=0,
                source=source,
                speaker_hint=speaker_hint,
                status=Status.failed,
                failure=Failure(stage="probe", kind=kind, message=f"unreadable: {exc}"),
            )
        return local.model_copy(update={"uri": uri})


@contextlib.contextmanager
def local_media(recording: Recording, max_bytes: int | None = None) -> Iterator[Recording]:
    """``recording`` with a local ``uri`` for the block: itself when it is local; for a URL,
    a spool of its object (deleted when the block ends), checked against the probed hash.

    Raises:
        MediaError: the object cannot be read again, or its bytes changed since probing.
    """
    if not is_remote(recording.uri):
        yield recording
        return
    with contextlib.ExitStack() as stack:
        try:
            spool = stack.enter_context(spooled(recording.uri, max_bytes))
        except OSError as exc:  # only the spool's own errors: the block's are its own
            raise MediaError(ErrorKind.invalid_input, f"{recording.uri}: unreadable: {exc}") from exc
        if spool.sha256 != recording.sha256:
            raise MediaError(ErrorKind.invalid_input, f"{recording.uri}: its bytes changed since probing")
        yield recording.model_copy(update={"uri": str(spool.path)})


def _stream_info(container: Any, s: Any, max_pixels: int | None = None) -> StreamInfo | None:
    """StreamInfo for a decodable audio/video stream; None for data, subtitles, cover art.

    The rotation probe decodes a frame, so it is skipped for pictures over ``max_pixels``
    (the recording is refused anyway, and one 8192x8192 frame is hundreds of MB).
    """
    dur = float(s.duration * s.time_base) if s.duration and s.time_base else None
    cc = s.codec_context
    if s.type == "audio":
        if not cc.sample_rate:
            return None
        return StreamInfo(
            kind="audio", codec=_codec_name(cc), duration_s=dur, sample_rate=cc.sample_rate, channels=cc.channels
        )
    if s.type == "video" and not _is_cover_art(s):
        if not (cc.width and cc.height):
            return None
        fps = float(s.average_rate) if s.average_rate else None
        too_big = max_pixels is not None and cc.width * cc.height > max_pixels
        return StreamInfo(
            kind="video",
            codec=_codec_name(cc),
            duration_s=dur,
            fps=fps,
            width=cc.width,
            height=cc.height,
            rotation=0 if too_big else _display_rotation(container, s),
        )
    return None


def _codec_name(cc: object) -> str | None:
    """The format's codec name ("mp3"), not the decoder's ("mp3float")."""
    codec = getattr(cc, "codec", None)
    return getattr(codec, "canonical_name", None) or getattr(cc, "name", None)


def _is_cover_art(stream: object) -> bool:
    disposition = getattr(stream, "disposition", None)
    try:
        import av

        return bool(disposition is not None and disposition & av.stream.Disposition.attached_pic)
    except (ImportError, AttributeError, TypeError):
        return False


@dataclass
class FrameStore:
    """Frames sampled at a fixed rate, kept as JPEG bytes; decoded on access.

    ``scan_times``/``scan_scores`` cover every decoded frame, not only the sampled ones:
    PySceneDetect's content score (mean HSV difference to the previous frame, at its
    256-pixel working size), computed during the one decode pass so shot detection needs no
    second decode. 12 bytes a frame: two hours at 30 fps is 2.6 MB.
    """

    times: np.ndarray = field(default_factory=lambda: np.zeros(0))
    jpegs: list[bytes] = field(default_factory=list)
    width: int = 0
    height: int = 0
    scan_times: np.ndarray = field(default_factory=lambda: np.zeros(0))
    scan_scores: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))

    def __len__(self) -> int:
        return len(self.jpegs)

    def frame(self, i: int) -> np.ndarray:
        """BGR uint8 image of sampled frame ``i``."""
        import cv2

        img = cv2.imdecode(np.frombuffer(self.jpegs[i], np.uint8), cv2.IMREAD_COLOR)
        if img is None:  # pragma: no cover - we encoded these bytes ourselves
            raise ValueError(f"frame {i} failed to decode")
        return img

    def indices_between(self, start_s: float, end_s: float) -> np.ndarray:
        return np.nonzero((self.times >= start_s) & (self.times < end_s))[0]

    def iter_between(self, start_s: float, end_s: float) -> Iterator[tuple[float, np.ndarray]]:
        for i in self.indices_between(start_s, end_s):
            yield float(self.times[i]), self.frame(int(i))

    @property
    def nbytes(self) -> int:
        return sum(len(j) for j in self.jpegs)


@dataclass
class Media:
    """A recording decoded once: mono audio at ``sample_rate`` and sampled frames.

    ``failures`` lists streams that would not decode while the other one did (a broken audio
    track in a watchable video): the media is still usable, and the flow records why.
    """

    recording: Recording
    sample_rate: int
    audio: np.ndarray | None = None
    frames: FrameStore | None = None
    failures: list[Failure] = field(default_factory=list)

    @property
    def duration_s(self) -> float:
        candidates = [self.recording.duration_s or 0.0]
        if self.audio is not None:
            candidates.append(len(self.audio) / self.sample_rate)
        if self.frames is not None and len(self.frames):
            candidates.append(float(self.frames.times[-1]))
        return max(candidates)

    def audio_between(self, start_s: float, end_s: float) -> np.ndarray:
        if self.audio is None:
            return np.zeros(0, np.float32)
        a = max(0, round(start_s * self.sample_rate))
        b = min(len(self.audio), round(end_s * self.sample_rate))
        return self.audio[a:b]


class MediaDecoder:
    """Decodes audio to mono float32 and samples frames at ``frame_fps`` in one pass each.

    Frames are taken on a fixed time grid (the first frame at or after each ``k / frame_fps``),
    scaled by FFmpeg's swscale while converting (cheaper than a full-size copy), turned
    upright using the display matrix, and stored as JPEG so a long video stays small.
    """

    def __init__(self, config: MediaConfig) -> None:
        self.config = config

    def decode(self, recording: Recording) -> Media:
        if recording.status != Status.ok:
            raise MediaError(ErrorKind.invalid_input, f"{recording.uri}: probe failed, nothing to decode")
        media = Media(recording=recording, sample_rate=self.config.audio_sample_rate)
        errors: list[MediaError] = []
        if recording.has_audio:
            try:
                media.audio = self._decode_audio(recording.uri, stream_duration(recording, "audio"))
                self._check_complete(recording, "audio", len(media.audio) / media.sample_rate)
            except MediaError as exc:
                media.audio = None
                errors.append(exc)
        if recording.has_video:
            try:
                media.frames = self._sample_frames(recording.uri)
                self._check_complete(recording, "video", _frames_end(media.frames, self.config.frame_fps))
            except MediaError as exc:
                media.frames = None
                errors.append(exc)
        if media.audio is None and media.frames is None:
            if errors:
                raise errors[0]
            raise MediaError(ErrorKind.corrupt_media, f"{recording.uri}: nothing decodable")
        media.failures = [e.failure() for e in errors]
        for e in errors:
            log.warning("%s: %s (continuing with the other stream)", recording.uri, e)
        return media

    def _check_complete(self, recording: Recording, kind: str, decoded_s: float) -> None:
        """A stream that decodes well short of the duration its container claims is truncated
        (a failed download, a cut-off copy): refuse it rather than pass shorter media as whole.

        Only where the container states its duration: an mp3 without a Xing header (or ADTS,
        MPEG-TS) has one estimated from the first frames' bitrate, which a quiet start
        inflates (a whole 20 s VBR mp3 claimed 38.7 s), and a cut-off copy claims its new length.
        """
        claimed = stream_duration(recording, kind)
        need = self.config.min_decoded_fraction
        if claimed and need and decoded_s < need * claimed and not duration_is_estimated(recording.uri):
            raise MediaError(
                ErrorKind.partial_media,
                f"{kind} decoded to {decoded_s:.2f}s of the {claimed:.2f}s the container claims "
                f"(below sampling.media.min_decoded_fraction={need:g})",
            )

    def _decode_audio(self, uri: str, expected_s: float | None = None) -> np.ndarray:
        """Mono float32 at ``audio_sample_rate``, written frame by frame into one buffer.

        The buffer is sized from the container's duration, so peak memory is the output array
        plus one decoded frame: collecting frames in a list and concatenating them held the
        audio twice (an hour of silence took 532 MB to decode into 230 MB).
        """
        import av

        buf = Growable(round((expected_s or 0.0) * self.config.audio_sample_rate) + self.config.audio_sample_rate)
        try:
            with av.open(uri) as container:
                stream = container.streams.audio[0]
                resampler = av.AudioResampler(format="flt", layout="mono", rate=self.config.audio_sample_rate)
                for frame in container.decode(stream):
                    for out in resampler.resample(frame):
                        buf.append(out.to_ndarray().reshape(-1))
                for out in resampler.resample(None):
                    buf.append(out.to_ndarray().reshape(-1))
        except (av.error.FFmpegError, IndexError) as exc:
            if not buf.size:
                raise MediaError(ErrorKind.corrupt_media, f"audio decode failed: {exc}") from exc
            log.warning("%s: audio decode stopped early: %s", uri, exc)
        if not buf.size:
            raise MediaError(ErrorKind.no_audio, "audio stream decoded to no samples")
        return buf.array()

    def _sample_frames(self, uri: str) -> FrameStore:
        import av
        import cv2

        step = 1.0 / self.config.frame_fps
        next_t = 0.0
        times: list[float] = []
        jpegs: list[bytes] = []
        width = height = 0
        size: tuple[int, int] | None = None
        scan = _ContentScan(self.config.scan_side) if self.config.scan_side else None
        quality = [cv2.IMWRITE_JPEG_QUALITY, self.config.frame_jpeg_quality]
        try:
            with av.open(uri) as container:
                stream = container.streams.video[0]
                stream.thread_type = "AUTO"
                for frame in container.decode(stream):
                    t = frame.time
                    if t is None:
                        continue
                    if scan is not None:
                        scan.add(frame)
                    if t + 1e-6 < next_t:
                        continue
                    if size is None:
                        size = _scaled_size(frame.width, frame.height, self.config.frame_max_side)
                    img = frame.to_ndarray(width=size[0], height=size[1], format="bgr24", interpolation="AREA")
                    if self.config.apply_rotation and frame.rotation:
                        img = _rotate_upright(img, round(frame.rotation))
                    ok, buf = cv2.imencode(".jpg", img, quality)
                    if not ok:  # pragma: no cover - encoding a valid array does not fail
                        continue
                    height, width = img.shape[:2]
                    times.append(max(0.0, float(t)))
                    jpegs.append(buf.tobytes())
                    # the next grid point after t: steady spacing, no drift from odd timestamps
                    next_t = (int(t / step + 1e-6) + 1) * step
        except (av.error.FFmpegError, IndexError) as exc:
            if not jpegs:
                raise MediaError(ErrorKind.corrupt_media, f"video decode failed: {exc}") from exc
            log.warning("%s: video decode stopped early at %.2fs: %s", uri, next_t, exc)
        if not jpegs:
            raise MediaError(ErrorKind.no_video, "video stream decoded to no frames")
        store = FrameStore(times=np.asarray(times, dtype=np.float64), jpegs=jpegs, width=width, height=height)
        if scan is not None:
            store.scan_times, store.scan_scores = scan.arrays()
        return store


def _frames_end(frames: FrameStore, fps: float) -> float:
    """Where the decoded video ends: its last decoded frame (any, when the scan kept them all)."""
    if len(frames.scan_times):
        last = float(frames.scan_times[-1])
        step = float(np.median(np.diff(frames.scan_times))) if len(frames.scan_times) > 1 else 1.0 / fps
        return last + step
    return float(frames.times[-1]) + 1.0 / fps if len(frames) else 0.0


class _ContentScan:
    """PySceneDetect's ContentDetector score for every decoded frame, during the decode pass.

    Same formula as ``ContentDetector._calculate_frame_score`` with its default weights
    (hue, saturation, luma equally weighted, no edges): the mean absolute HSV difference to
    the previous frame, at the 256-pixel long side its auto-downscale would use.
    """

    def __init__(self, side: int) -> None:
        self.side = side
        self.size: tuple[int, int] | None = None
        self.prev: np.ndarray | None = None
        self.times: list[float] = []
        self.scores: list[float] = []

    def add(self, frame: Any) -> None:
        import cv2

        if self.size is None:
            self.size = _scaled_size(frame.width, frame.height, self.side)
        small = frame.to_ndarray(width=self.size[0], height=self.size[1], format="bgr24", interpolation="AREA")
        hsv = cv2.cvtColor(small, cv2.COLOR_BGR2HSV)
        self.scores.append(0.0 if self.prev is None else float(np.mean(cv2.absdiff(hsv, self.prev))))
        self.times.append(max(0.0, float(frame.time)))
        self.prev = hsv

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        return np.asarray(self.times, np.float64), np.asarray(self.scores, np.float32)


def _scaled_size(w: int, h: int, max_side: int) -> tuple[int, int]:
    """Size with the long side at most ``max_side``, even dimensions (swscale prefers them)."""
    scale = min(1.0, max_side / max(w, h))
    if scale >= 1.0:
        return w, h
    return max(2, round(w * scale / 2) * 2), max(2, round(h * scale / 2) * 2)
