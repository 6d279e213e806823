"""Cut a segment's clip out of the decoded media for agents that listen or watch.

Agents with the ``audio`` modality get the segment's sound as a WAV (16-bit PCM, mono, at
the decode rate, 16 kHz by default); agents with ``video`` get an MP4 (H.264 + AAC) of the
segment. Clips live in memory for one segment's annotation and are never written to shards.

The MP4 is encoded from the frames the decoder already sampled (``sampling.media.frame_fps``,
2 fps by default, at most ``frame_max_side`` pixels, already turned upright) plus the
decoded audio, rather than cut from the source file: the source is not decoded a second
time, every container the decoder read works (including ones that cannot be stream-copied
into MP4), the picture matches what the face and key-frame stages saw, and the file stays
small enough to go inline. Nothing is lost for Gemini, which samples video at 1 fps. Each
grid slot ``start + k / frame_fps`` shows the latest sampled frame at or before it, so the
picture track lasts ``ceil(duration * frame_fps)`` slots: at most one frame longer than the
segment, while the soundtrack is cut to the sample.

``ClipCutter.cut`` never raises for media trouble: a segment without sound or picture, or
an encoder error, comes back as a clip whose ``no_audio`` / ``no_video`` says why.
``clip_parts`` then decides what one agent is sent: the WAV for ``audio``, the MP4 for
``video``; an agent taking both (Gemini) gets the MP4 alone when it carries the soundtrack
(the WAV would repeat it, unsynchronised). Parts it asked for but cannot get are listed
with their failure kind (``no_audio`` / ``no_video``) for the annotator's policy.
"""

from __future__ import annotations

import io
import logging
import math
import wave
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from emoforge.agents.base import AudioPart, SegmentClip, VideoPart
from emoforge.agents.providers import provider
from emoforge.configs.agents import AgentsConfig, ClipConfig
from emoforge.configs.sampling import MediaConfig
from emoforge.storage.records import ErrorKind, Segment

if TYPE_CHECKING:  # types only: the cutter reads the decoded Media, it does not decode
    from emoforge.preprocess.media import FrameStore, Media

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ClipNeeds:
    """Which clip parts some enabled agent of the jury asks for."""

    audio: bool = False
    video: bool = False

    @property
    def any(self) -> bool:
        return self.audio or self.video


def clip_needs(config: AgentsConfig) -> ClipNeeds:
    """What to cut per segment; nothing when no enabled agent that can take a clip asks for one."""
    wanted = {m for a in config.jury if a.enabled for m in a.modalities if m in provider(a.backend).clip_modalities}
    return ClipNeeds(audio="audio" in wanted, video="video" in wanted)


@dataclass(frozen=True)
class ClipParts:
    """What of a segment's clip goes to one agent, and what it asked for but cannot get."""

    audio: AudioPart | None = None
    video: VideoPart | None = None
    missing: tuple[tuple[ErrorKind, str], ...] = ()  # (no_audio | no_video, why)

    @property
    def seen(self) -> list[str]:
        heard = self.audio is not None or (self.video is not None and self.video.has_audio)
        return (["audio"] if heard else []) + (["video"] if self.video is not None else [])

    @property
    def missing_modalities(self) -> set[str]:
        return {"audio" if kind == ErrorKind.no_audio else "video" for kind, _ in self.missing}


def clip_parts(modalities: list[str], backend: str, clip: SegmentClip | None) -> ClipParts:
    """The audio/video parts an agent with ``modalities`` gets from ``clip`` (see module doc)."""
    want_audio, want_video = "audio" in modalities, "video" in modalities
    if not (want_audio or want_video):
        return ClipParts()
    video = None
    if want_video and clip is not None and clip.video_mp4 is not None and clip.video_sha256 is not None:
        video = VideoPart(clip.video_mp4, clip.video_s, clip.video_sha256, clip.video_frames, clip.video_has_audio)
    audio = None
    # A backend that watches video hears its soundtrack too: the WAV would repeat it, unsynchronised.
    soundtrack = video is not None and video.has_audio and "video" in provider(backend).clip_modalities
    if want_audio and not soundtrack and clip is not None and clip.audio_wav and clip.audio_sha256 is not None:
        audio = AudioPart(clip.audio_wav, clip.audio_s, clip.audio_sha256)
    missing: list[tuple[ErrorKind, str]] = []
    if want_audio and audio is None and not soundtrack:
        why = "no clip was cut for the segment" if clip is None else clip.no_audio or "no audio clip was cut"
        missing.append((ErrorKind.no_audio, f"no audio: {why}"))
    if want_video and video is None:
        why = "no clip was cut for the segment" if clip is None else clip.no_video or "no video clip was cut"
        missing.append((ErrorKind.no_video, f"no video: {why}"))
    return ClipParts(audio=audio, video=video, missing=tuple(missing))


def wav_bytes(samples: NDArray[Any], sample_rate: int) -> bytes:
    """16-bit PCM mono WAV of float samples in [-1, 1] (clipped, not wrapped, outside it)."""
    pcm = (np.clip(samples, -1.0, 1.0) * 32767.0).round().astype("<i2")
    buf = io.BytesIO()
    with wave.open(buf, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(sample_rate)
        out.writeframes(pcm.tobytes())
    return buf.getvalue()


class ClipCutter:
    """Cuts ``SegmentClip``s from a decoded ``Media``; see the module docstring for how."""

    def __init__(self, config: ClipConfig, media_config: MediaConfig) -> None:
        self.config = config
        self.fps = media_config.frame_fps

    def cut(self, media: Media, segment: Segment, needs: ClipNeeds) -> SegmentClip:
        """The parts of ``needs`` for ``segment``; absent parts carry the reason."""
        audio = media.audio_between(segment.start_s, segment.end_s)
        audio_reason = None
        if media.audio is None:
            audio_reason = "the recording has no decodable audio stream"
        elif len(audio) == 0:
            audio_reason = "no audio samples in the segment's span"
        wav, audio_s = None, 0.0
        if needs.audio and audio_reason is None:
            wav, audio_s = wav_bytes(audio, media.sample_rate), len(audio) / media.sample_rate
        no_video: tuple[bytes | None, list[int], str | None] = (None, [], None)
        sound = audio if audio_reason is None else None
        mp4, slots, video_reason = self._video(media, segment, sound) if needs.video else no_video
        return SegmentClip(
            segment_id=segment.id,
            start_s=segment.start_s,
            end_s=segment.end_s,
            audio_wav=wav,
            audio_s=audio_s,
            video_mp4=mp4,
            video_s=len(slots) / self.fps if mp4 is not None else 0.0,
            video_frames=len(slots) if mp4 is not None else 0,
            video_has_audio=mp4 is not None and audio_reason is None,
            no_audio=audio_reason,
            no_video=video_reason,
        )

    def _video(
        self, media: Media, segment: Segment, audio: NDArray[Any] | None
    ) -> tuple[bytes | None, list[int], str | None]:
        """(MP4, frame slots, None) or (None, [], why there is no video)."""
        import av

        frames = media.frames
        if frames is None or len(frames) == 0:
            return None, [], "the recording has no decodable video stream"
        slots = self._frame_slots(frames, segment)
        if not slots:
            return None, [], "no video frames in the segment's span"
        try:
            return self._encode_mp4(frames, slots, audio, media.sample_rate), slots, None
        except (av.error.FFmpegError, ValueError, OSError) as exc:
            log.warning("segment %s: video clip encoding failed: %s", segment.id, exc)
            return None, [], f"video clip encoding failed: {type(exc).__name__}: {exc}"[:300]

    def _frame_slots(self, frames: FrameStore, segment: Segment) -> list[int]:
        """Index of the stored frame shown in each 1/fps slot; empty when none shows the span."""
        step = 1.0 / self.fps
        # A stored frame up to one step before the start still shows the start of the span;
        # one older than that (the video ended before the sound) would be a stale picture.
        if not np.any((frames.times >= segment.start_s - step) & (frames.times < segment.end_s)):
            return []
        n_slots = max(1, math.ceil(segment.duration_s * self.fps - 1e-6))
        grid = segment.start_s + np.arange(n_slots) * step
        idx = np.searchsorted(frames.times, grid + 1e-6, side="right") - 1
        return [int(i) for i in np.clip(idx, 0, len(frames) - 1)]

    def _encode_mp4(self, frames: FrameStore, slots: list[int], audio: NDArray[Any] | None, sample_rate: int) -> bytes:
        import av

        buf = io.BytesIO()
        with av.open(buf, mode="w", format="mp4") as out:
            video = out.add_stream("libx264", rate=Fraction(self.fps).limit_denominator(1000))
            first = frames.frame(slots[0])
            # yuv420p needs even sides; the store keeps odd ones when it did not downscale
            height, width = first.shape[0] // 2 * 2, first.shape[1] // 2 * 2
            video.width, video.height, video.pix_fmt = width, height, "yuv420p"
            video.options = {"crf": str(self.config.video_crf), "preset": "veryfast"}
            sound = None
            if audio is not None:
                sound = out.add_stream("aac", rate=sample_rate, layout="mono")
                sound.bit_rate = self.config.audio_bitrate_kbps * 1000
            shown, img = slots[0], first
            for k, i in enumerate(slots):
                if i != shown:  # slots only move forward: decode each stored frame once
                    shown, img = i, frames.frame(i)
                frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(img[:height, :width]), format="bgr24")
                frame.pts = k
                out.mux(video.encode(frame))
            out.mux(video.encode(None))
            if sound is not None and audio is not None:
                self._encode_audio(out, sound, audio, sample_rate)
        return buf.getvalue()

    @staticmethod
    def _encode_audio(out: Any, sound: Any, audio: NDArray[Any], sample_rate: int) -> None:
        import av

        chunk = 1024  # the AAC encoder's frame size
        for lo in range(0, len(audio), chunk):
            samples = np.ascontiguousarray(audio[lo : lo + chunk], dtype=np.float32).reshape(1, -1)
            frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
            frame.sample_rate = sample_rate
            frame.pts = lo
            out.mux(sound.encode(frame))
        out.mux(sound.encode(None))
