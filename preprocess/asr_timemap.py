"""Stream time -> recording time: speech clips joined into decode windows, and the map back.

``merge_spans`` merges speech spans into clips, ``split_long`` and ``decode_windows`` bound a
decode's length, ``SpeechStream`` joins a window's clips end to end and maps what the
decoder returns (``AsrChunk``, in stream seconds) back onto the recording's clock.
"""

from __future__ import annotations

import bisect

import numpy as np
from pydantic import Field

from emoforge.storage.records import Record, Span, Word


class AsrChunk(Record):
    """One decoder segment of a recording-level transcription."""

    start_s: float = Field(description="Start in recording seconds.")
    end_s: float = Field(description="End in recording seconds.")
    text: str = Field(description="Decoded text.")
    avg_logprob: float | None = Field(default=None, description="Mean token log-probability.")
    no_speech_prob: float | None = Field(default=None, description="No-speech probability.")
    words: list[Word] = Field(default_factory=list, description="Words in recording time.")


def merge_spans(spans: list[Span], gap_s: float) -> list[Span]:
    out: list[Span] = []
    for s in sorted(spans, key=lambda x: x.start_s):
        if out and s.start_s - out[-1].end_s <= gap_s:
            out[-1] = Span(start_s=out[-1].start_s, end_s=max(out[-1].end_s, s.end_s))
        else:
            out.append(Span(start_s=s.start_s, end_s=s.end_s))
    return out


class SpeechStream:
    """A window's speech clips joined end to end, with the map back to recording time.

    Whisper encodes a padded 30 s window per decode step, and faster-whisper starts a new
    window at every clip of ``clip_timestamps``: ten short turns cost ten encoder passes.
    Joined, they cost one per 30 s of speech. Each clip keeps up to ``bridge_s / 2`` of its
    real surroundings on either side (never past the middle of the gap), so joins sound like
    short pauses instead of digital cuts, and every stream instant maps to one recording
    instant. Up to ``tail_s`` of the real audio after the last clip is appended but not
    decoded: a final window that ends in zero padding makes Whisper loop on short clips.
    """

    def __init__(self, audio: np.ndarray, pieces: list[tuple[float, float, float]], speech_s: float) -> None:
        self.audio = audio
        self.pieces = pieces  # (stream start, recording start, length) in seconds, in order
        self._starts = [p[0] for p in pieces]
        self.speech_s = speech_s

    @classmethod
    def build(
        cls, audio: np.ndarray, clips: list[Span], bridge_s: float, tail_s: float, sr: int = 16000
    ) -> SpeechStream:
        total = len(audio) / sr
        ordered = sorted(clips, key=lambda c: c.start_s)
        parts: list[np.ndarray] = []
        pieces: list[tuple[float, float, float]] = []
        cursor = last_end = 0
        for i, clip in enumerate(ordered):
            before = ordered[i - 1].end_s if i else 0.0
            after = ordered[i + 1].start_s if i + 1 < len(ordered) else total
            lo = max(clip.start_s - bridge_s / 2, (before + clip.start_s) / 2 if i else 0.0, 0.0)
            hi = min(clip.end_s + bridge_s / 2, (clip.end_s + after) / 2 if i + 1 < len(ordered) else total)
            a = round(lo * sr)
            b = max(a, round(hi * sr))
            last_end = b
            parts.append(audio[a:b])
            pieces.append((cursor / sr, a / sr, (b - a) / sr))
            cursor += b - a
        speech_s = cursor / sr
        if pieces:
            parts.append(audio[last_end : last_end + int(tail_s * sr)])
        joined = np.concatenate(parts) if parts else np.zeros(0, np.float32)
        return cls(joined, pieces, speech_s)

    def recording_time(self, t: float, end: bool = False) -> float:
        """Recording seconds of stream second ``t`` (the tail continues the last piece).

        At a join, a start belongs to the piece that begins there and an ``end`` to the one
        that stops there, so a word never stretches over the gap that was cut out.
        """
        if not self.pieces:
            return t
        stream0, rec0, _ = self.pieces[self._piece(t, end)]
        return rec0 + (t - stream0)

    def _piece(self, t: float, end: bool = False) -> int:
        starts = self._starts
        return max(0, (bisect.bisect_left(starts, t) if end else bisect.bisect_right(starts, t)) - 1)

    def _word(self, word: Word) -> Word:
        """A word on the recording clock; one that straddles a cut stays in the piece of its middle."""
        if not self.pieces:
            return word
        k = self._piece((word.start_s + word.end_s) / 2)
        stream0, rec0, length = self.pieces[k]
        hi = stream0 + length if k + 1 < len(self.pieces) else float("inf")  # the tail continues the last

        def clamp(t: float) -> float:
            return rec0 + (min(max(t, stream0), hi) - stream0)

        return word.model_copy(update={"start_s": clamp(word.start_s), "end_s": clamp(word.end_s)})

    def to_recording(self, chunk: AsrChunk) -> AsrChunk:
        words = [self._word(w) for w in chunk.words]
        return chunk.model_copy(
            update={
                "start_s": self.recording_time(chunk.start_s),
                "end_s": self.recording_time(chunk.end_s, end=True),
                "words": words,
            }
        )


def split_long(clips: list[Span], audio: np.ndarray, max_s: float, sr: int = 16000) -> list[Span]:
    """Split clips longer than ``max_s`` at the quietest 100 ms in the 10 s before each limit."""
    out: list[Span] = []
    hop = int(0.1 * sr)
    for clip in clips:
        start, end = clip.start_s, clip.end_s
        while end - start > max_s:
            a, b = int((start + max_s - 10.0) * sr), int((start + max_s) * sr)
            frames = audio[a:b][: (b - a) // hop * hop].reshape(-1, hop)
            cut = start + max_s
            if frames.size:
                cut = (a + hop * int(np.argmin((frames.astype(np.float64) ** 2).mean(axis=1))) + hop // 2) / sr
            out.append(Span(start_s=start, end_s=cut))
            start = cut
        out.append(Span(start_s=start, end_s=end))
    return out


def decode_windows(clips: list[Span], max_s: float) -> list[list[Span]]:
    """Consecutive clips grouped so each group spans at most ``max_s`` (a longer clip stays alone)."""
    groups: list[list[Span]] = []
    for c in clips:
        if groups and c.end_s - groups[-1][0].start_s <= max_s:
            groups[-1].append(c)
        else:
            groups.append([c])
    return groups
