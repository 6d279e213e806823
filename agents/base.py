"""The annotator interface, and the small types a model backend speaks.

An ``Annotator`` turns (Segment, Features, optional SegmentClip) into one Annotation and
never raises for model or provider trouble: that becomes a failed Annotation with a typed
Failure. Cue agents implement it directly (and ignore the clip); LLM agents implement it
once (``agents/llm.py``) over a ``ChatBackend``, which only knows how to send a ``Prompt``
(text, key frames, and the segment's audio/video when the agent takes them) and return a
``ModelReply``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from typing import Any, Protocol, runtime_checkable

from emoforge.storage.records import Annotation, ErrorKind, Failure, Features, Segment, Usage


# Defined here, not in agents/clips.py (which cuts it and re-exports it): the Annotator
# signature needs it, and clips.py needs AudioPart/VideoPart, so one home breaks the cycle.
@dataclass(frozen=True)
class SegmentClip:
    """A segment's sound and/or picture, encoded, with content hashes for the response cache.

    ``no_audio`` / ``no_video`` say why a part is absent when it was asked for (the
    recording has no such stream, the span holds no samples, encoding failed).
    """

    segment_id: str
    start_s: float
    end_s: float
    audio_wav: bytes | None = None
    audio_s: float = 0.0
    video_mp4: bytes | None = None
    video_s: float = 0.0
    video_frames: int = 0
    video_has_audio: bool = False
    no_audio: str | None = None
    no_video: str | None = None
    audio_sha256: str | None = field(init=False, default=None)
    video_sha256: str | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        # Hashed once here: the cache key of every agent that gets this clip uses them.
        if self.audio_wav is not None:
            object.__setattr__(self, "audio_sha256", hashlib.sha256(self.audio_wav).hexdigest())
        if self.video_mp4 is not None:
            object.__setattr__(self, "video_sha256", hashlib.sha256(self.video_mp4).hexdigest())

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s


@runtime_checkable
class Annotator(Protocol):
    """One juror: a name (part of annotation ids), a backend name, and three methods."""

    name: str
    backend: str

    def annotate(self, segment: Segment, features: Features, clip: SegmentClip | None = None) -> Annotation:
        """One Annotation for the segment; failures are rows, not exceptions.

        ``clip`` carries the segment's audio/video for agents with those modalities;
        the others ignore it.
        """
        ...

    def estimate(self, segment: Segment, features: Features, clip: SegmentClip | None = None) -> Usage:
        """Expected calls/tokens/cost of ``annotate`` without calling anything."""
        ...

    def close(self) -> None:
        """Release clients, models and threads."""
        ...


class AnnotatorError(Exception):
    """A failure with a typed reason; annotators turn it into a failed Annotation."""

    def __init__(self, kind: ErrorKind, message: str, retry_after_s: float | None = None, sent: bool = True) -> None:
        super().__init__(message)
        self.kind = kind
        self.retry_after_s = retry_after_s
        # False where the request never left this machine (no API key): not a call, not counted.
        self.sent = sent

    def failure(self, stage: str = "annotate") -> Failure:
        return Failure(stage=stage, kind=self.kind, message=str(self)[:500])


@dataclass(frozen=True)
class ImagePart:
    """A JPEG key frame with the recording time it was taken at."""

    jpeg: bytes
    t_s: float


@dataclass(frozen=True)
class AudioPart:
    """The segment's sound: a 16-bit PCM mono WAV, its duration and content hash."""

    wav: bytes
    duration_s: float
    sha256: str


@dataclass(frozen=True)
class VideoPart:
    """The segment's clip: an MP4 (H.264, plus AAC when ``has_audio``), duration and hash."""

    mp4: bytes
    duration_s: float
    sha256: str
    frames: int = 0
    has_audio: bool = False


@dataclass(frozen=True)
class Prompt:
    """A provider-neutral request: system text, user text, images, audio, video, output schema.

    ``messages_after`` holds follow-up turns for re-asks: (assistant text, user text) pairs.
    """

    system: str
    user: str
    images: tuple[ImagePart, ...] = ()
    schema: dict[str, Any] = field(default_factory=dict)
    schema_name: str = "emotion_annotation"
    messages_after: tuple[tuple[str, str], ...] = ()
    audio: AudioPart | None = None
    video: VideoPart | None = None

    def with_reask(self, bad_reply: str, error: str) -> Prompt:
        """The same prompt plus the invalid reply and the validation error to fix."""
        follow_up = (
            f"Your previous reply was invalid: {error}. Reply again with one JSON object that "
            "matches the schema exactly."
        )
        return replace(self, messages_after=(*self.messages_after, (bad_reply[:2000], follow_up)))


@dataclass
class ModelReply:
    """What a backend returns: the text (JSON expected), or a provider-side refusal."""

    text: str
    input_tokens: int = 0
    output_tokens: int = 0
    refusal: str | None = None
    finish_reason: str | None = None
    model: str | None = None
    raw: dict[str, Any] = field(default_factory=dict)
    audio_input_tokens: int = 0  # part of input_tokens, where the provider reports it (priced apart)


class ChatBackend(Protocol):
    """Sends one prompt to one model; raises ``AnnotatorError`` with a typed kind."""

    name: str

    def complete(self, prompt: Prompt, max_output_tokens: int, temperature: float) -> ModelReply: ...

    def close(self) -> None: ...
