"""Speech recognition with faster-whisper (CTranslate2) or whisperx, guarded against hallucination.

A recording's speech is transcribed **once**: the speech segments are merged into clips
(``merge_gap_s``) and decoded in one call (faster-whisper ``clip_timestamps``), then the
words are sliced into segments by their midpoints. Per-segment guards then decide whether
the text can be handed to annotators.

Language picks the model. With ``language: null`` the multilingual model detects the
language on the speech first; English goes to ``english_model``, anything else to the
multilingual model. An English-only model is never run on undetected speech: without a
multilingual model and with no fixed language, ASR fails as ``model_unavailable``. When
the language is fixed to English and a multilingual model exists, detection still runs and
a confident other language flags the transcript (``language_mismatch:zh``).

Guards (a transcript with any reason is ``reliable=False``; Whisper's own decode fallbacks
use the same thresholds):

- ``no_speech``: max no-speech probability > ``max_no_speech_prob`` and mean log-prob below
  ``min_avg_logprob`` (Whisper's silence rule).
- ``low_logprob``: duration-weighted mean token log-probability < ``min_avg_logprob``.
- ``compression_ratio``: gzip ratio of the text > ``max_compression_ratio`` (loops).
- ``repetition``: one repeated word n-gram (n = 1..4, >= 3 repeats) covers more than
  ``max_repeat_fraction`` of the words.
- ``low_language_probability``: detection probability < ``detect_min_probability``.
- ``language_mismatch:XX``: the model's language differs from the detected one.

A decoder segment faster than ``max_chars_per_s`` (non-space characters per second,
counted over at least one second) is
not speech but Whisper looping on a sliver of audio before padding; it is dropped with a
warning before slicing.
"""

from __future__ import annotations

import bisect
import logging
import os
import zlib
from collections import Counter
from typing import Any

import numpy as np
from pydantic import Field

from emoforge.configs.preprocess import AsrConfig
from emoforge.preprocess.models import ModelUnavailable, resolve_model
from emoforge.storage.records import Record, Span, Transcript, Word

log = logging.getLogger(__name__)

_DETECT_WINDOW_S = 30.0
_DETECT_MIN_S = 10.0
_TRIM_MARGIN_FRAMES = 100  # 1 s of the padding kept after the speech: the decoder sees it end
_TAIL_S = 30.0


class AsrChunk(Record):
    """One decoder segment of a recording-level transcription."""

    start_s: float = Field(description="Start in recording seconds.")
    end_s: float = Field(description="End in recording seconds.")
    text: str = Field(description="Decoded text.")
    avg_logprob: float | None = Field(default=None, description="Mean token log-probability.")
    no_speech_prob: float | None = Field(default=None, description="No-speech probability.")
    words: list[Word] = Field(default_factory=list, description="Words in recording time.")


class RecordingTranscript(Record):
    """A recording's speech transcribed once; ``SpeechTranscriber.slice`` cuts segments from it."""

    model: str = Field(description="Model path used for decoding.")
    language: str | None = Field(default=None, description="Language decoded with.")
    detected_language: str | None = Field(default=None, description="Language detected, if detection ran.")
    language_probability: float | None = Field(default=None, description="Detection probability.")
    word_timing: str = Field(default="asr", description="aligned | asr | none.")
    chunks: list[AsrChunk] = Field(default_factory=list, description="Decoder segments.")
    reasons: list[str] = Field(default_factory=list, description="Recording-level guard reasons.")


def compression_ratio(text: str) -> float:
    raw = text.encode("utf-8")
    return len(raw) / len(zlib.compress(raw)) if raw else 0.0


def repeat_fraction(words: list[str]) -> float:
    """Largest share of words covered by one n-gram (n=1..4) repeated at least 3 times."""
    tokens = [w.strip(".,!?;:\"'").lower() for w in words if w.strip()]
    best = 0.0
    for n in range(1, 5):
        grams = Counter(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))
        if grams:
            _, count = grams.most_common(1)[0]
            if count >= 3:
                best = max(best, count * n / len(tokens))
    return best


def merge_spans(spans: list[Span], gap_s: float) -> list[Span]:
    out: list[Span] = []
    for s in sorted(spans, key=lambda x: x.start_s):
        if out and s.start_s - out[-1].end_s <= gap_s:
            out[-1] = Span(start_s=out[-1].start_s, end_s=max(out[-1].end_s, s.end_s))
        else:
            out.append(Span(start_s=s.start_s, end_s=s.end_s))
    return out


class SpeechTranscriber:
    """Detects the language, transcribes speech clips once, slices and guards per segment."""

    def __init__(self, config: AsrConfig) -> None:
        self.config = config
        self._models: dict[str, Any] = {}
        self._aligners: dict[str, Any] = {}

    # ----------------------------------------------------------------- models
    def _model(self, spec: str) -> tuple[Any, str]:
        path = str(resolve_model(spec))
        if path not in self._models:
            if self.config.backend == "whisperx":
                # whisperx's VAD is the pickled pyannote checkpoint in its wheel: torch >= 2.6 refuses it
                # under weights_only, and the file is trusted (it ships with the installed package).
                # Only for this load: later torch.load calls (user checkpoints) stay weights-only.
                import whisperx

                previous = os.environ.get("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD")
                os.environ["TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"] = "1"
                try:
                    self._models[path] = whisperx.load_model(
                        path, self.config.device, compute_type=self.config.compute_type, vad_method="pyannote"
                    )
                finally:
                    if previous is None:
                        os.environ.pop("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", None)
                    else:
                        os.environ["TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"] = previous
            else:
                from faster_whisper import WhisperModel

                self._models[path] = WhisperModel(
                    path,
                    device=self.config.device,
                    compute_type=self.config.compute_type,
                    cpu_threads=self.config.cpu_threads,
                )
        return self._models[path], path

    def _detect(self, audio: np.ndarray) -> tuple[str, float] | None:
        if not self.config.multilingual_model:
            return None
        model, _ = self._model(self.config.multilingual_model)
        fw = getattr(model, "model", None) if self.config.backend == "whisperx" else model
        if fw is None or not hasattr(fw, "detect_language"):
            fw = model
        # Encode only the speech there is (at least _DETECT_MIN_S) instead of a window padded to
        # 30 s: the encoder's cost is linear in frames, so detection on a 5 s clip drops from
        # ~0.8 s to ~0.1 s on two cores, with the same language and probability on the
        # fixtures (CTranslate2 accepts fewer than 3000 frames; the decoder reads what is there).
        features = fw.feature_extractor(audio[: int(_DETECT_WINDOW_S * 16000)])
        frames = min(3000, max(int(_DETECT_MIN_S * 100), features.shape[-1] - 1))
        features = np.pad(features, ((0, 0), (0, max(0, frames - features.shape[-1]))))[:, :frames]
        ranked = fw.model.detect_language(fw.encode(np.ascontiguousarray(features, dtype=np.float32)))[0]
        token, prob = ranked[0]
        return token[2:-2], float(prob)  # "<|zh|>" -> "zh"

    # ------------------------------------------------------------- transcribe
    def transcribe(self, audio: np.ndarray, sr: int, spans: list[Span]) -> RecordingTranscript:
        """Transcribe the speech in ``spans`` (recording seconds) of a 16 kHz mono recording.

        Raises:
            ModelUnavailable: no model can handle this speech without guessing the language.
        """
        if sr != 16000:
            raise ValueError(f"ASR expects 16 kHz audio, got {sr}")
        clips = merge_spans(spans, self.config.merge_gap_s)
        speech = np.concatenate([audio[int(c.start_s * sr) : int(c.end_s * sr)] for c in clips]) if clips else audio
        fixed = self.config.language
        detected = self._detect(speech) if speech.size else None
        reasons: list[str] = []
        if fixed is None and detected is None:
            raise ModelUnavailable(
                "no multilingual model to detect the language; set asr.language to use the English model"
            )
        language = fixed or (detected[0] if detected else "en")
        if detected is not None:
            if detected[1] < self.config.detect_min_probability:
                reasons.append("low_language_probability")
            if detected[0] != language and detected[1] >= self.config.detect_min_probability:
                reasons.append(f"language_mismatch:{detected[0]}")
        spec = self.config.english_model if language == "en" else self.config.multilingual_model
        if spec is None:
            raise ModelUnavailable(f"no multilingual model configured for language {language!r}")
        model, path = self._model(spec)
        chunks = self._decode(model, audio, clips, language)
        timing = "asr"
        if self.config.align_model and chunks:
            chunks = self._align(audio, chunks, language)
            timing = "aligned"
        return RecordingTranscript(
            model=path,
            language=language,
            detected_language=detected[0] if detected else None,
            language_probability=detected[1] if detected else None,
            word_timing=timing,
            chunks=chunks,
            reasons=reasons,
        )

    def _decode(self, model: Any, audio: np.ndarray, clips: list[Span], language: str) -> list[AsrChunk]:
        if self.config.backend == "whisperx":
            return self._decode_whisperx(model, audio, clips, language)
        out: list[AsrChunk] = []
        # Decode in windows of at most max_window_s: faster-whisper builds the log-mel of the whole
        # input at once (~0.5 MB per second), so one call on hours of audio would not stay bounded.
        spans = _split_long(clips or [Span(start_s=0.0, end_s=len(audio) / 16000)], audio, self.config.max_window_s)
        for window in _windows(spans, self.config.max_window_s):
            stream = SpeechStream.build(audio, window, self.config.bridge_s, _TAIL_S)
            for chunk in self._decode_window(model, stream.audio, [Span(start_s=0.0, end_s=stream.speech_s)], language):
                out.append(stream.to_recording(chunk))
        return out

    def _decode_window(self, model: Any, audio: np.ndarray, clips: list[Span], language: str) -> list[AsrChunk]:
        clip_ts = [t for c in clips for t in (round(c.start_s, 3), round(c.end_s, 3))]
        segments, _info = model.transcribe(
            audio,
            language=language if model.model.is_multilingual else None,
            beam_size=self.config.beam_size,
            initial_prompt=self.config.initial_prompts.get(language),
            temperature=[0.0, 0.2, 0.4, 0.6, 0.8, 1.0] if self.config.temperature_fallback else [0.0],
            word_timestamps=True,
            clip_timestamps=clip_ts,
            condition_on_previous_text=False,  # stops one bad window from seeding a hallucination loop
            vad_filter=False,
        )
        out = []
        with _EncoderHook(model, self.config.min_tail_window_s, self.config.min_encoder_window_s) as tail:
            for seg in tail.segments(segments):
                chunk = self._chunk(seg)
                if chunk is not None:
                    out.append(chunk)
        return out

    def _chunk(self, seg: Any) -> AsrChunk | None:
        chars = len("".join(seg.text.split()))
        # Over at least a second: Whisper stamps a lone "Hello." as 0.06 s long.
        if chars / max(float(seg.end - seg.start), 1.0) > self.config.max_chars_per_s:
            # Whisper's known failure at the end of a window: a sliver of audio followed by
            # padding, decoded as a long loop ("see you in the next video, see you ...").
            # No one speaks that fast; it is a decoder artefact, not a transcript.
            log.warning("ASR: dropped %d chars decoded from %.2f s (%.40r...)", chars, seg.end - seg.start, seg.text)
            return None
        words = [
            Word(text=w.word.strip(), start_s=float(w.start), end_s=float(w.end), probability=float(w.probability))
            for w in (seg.words or [])
            if w.word.strip()
        ]
        return AsrChunk(
            start_s=float(seg.start),
            end_s=float(seg.end),
            text=seg.text.strip(),
            avg_logprob=float(seg.avg_logprob),
            no_speech_prob=float(seg.no_speech_prob),
            words=words,
        )

    def _decode_whisperx(self, model: Any, audio: np.ndarray, clips: list[Span], language: str) -> list[AsrChunk]:
        out: list[AsrChunk] = []
        for clip in clips or [Span(start_s=0.0, end_s=len(audio) / 16000)]:
            piece = audio[int(clip.start_s * 16000) : int(clip.end_s * 16000)]
            result = model.transcribe(piece, batch_size=4, language=language)
            for seg in result.get("segments", []):
                out.append(
                    AsrChunk(
                        start_s=clip.start_s + float(seg["start"]),
                        end_s=clip.start_s + float(seg["end"]),
                        text=str(seg["text"]).strip(),
                        avg_logprob=seg.get("avg_logprob"),
                        no_speech_prob=seg.get("no_speech_prob"),
                    )
                )
        return out

    def _align(self, audio: np.ndarray, chunks: list[AsrChunk], language: str) -> list[AsrChunk]:
        import whisperx

        if language not in self._aligners:
            self._aligners[language] = whisperx.load_align_model(
                language_code=language, device=self.config.device, model_name=self.config.align_model
            )
        model, meta = self._aligners[language]
        segs = [{"start": c.start_s, "end": c.end_s, "text": c.text} for c in chunks]
        aligned = whisperx.align(segs, model, meta, audio, self.config.device, return_char_alignments=False)
        out = []
        for chunk, seg in zip(chunks, aligned["segments"], strict=False):
            words = [
                Word(text=w["word"], start_s=float(w["start"]), end_s=float(w["end"]), probability=w.get("score"))
                for w in seg.get("words", [])
                if "start" in w and "end" in w
            ]
            out.append(chunk.model_copy(update={"words": words}))
        return out

    # ------------------------------------------------------------------ slice
    def slice(self, rt: RecordingTranscript, start_s: float, end_s: float) -> Transcript:
        """The part of ``rt`` inside [start_s, end_s), with this segment's guards applied."""
        words = [w for c in rt.chunks for w in c.words if start_s <= (w.start_s + w.end_s) / 2 < end_s]
        chunks = [c for c in rt.chunks if c.start_s < end_s and c.end_s > start_s]
        if words or not any(c.words for c in chunks):
            text = _join(rt.language, [w.text for w in words]) if words else " ".join(c.text for c in chunks)
        else:
            text = ""
        weights = [max(1e-3, min(c.end_s, end_s) - max(c.start_s, start_s)) for c in chunks]
        logprobs = [(c.avg_logprob, w) for c, w in zip(chunks, weights, strict=True) if c.avg_logprob is not None]
        avg = sum(lp * w for lp, w in logprobs) / sum(w for _, w in logprobs) if logprobs else None
        nsp = [c.no_speech_prob for c in chunks if c.no_speech_prob is not None]
        no_speech = max(nsp) if nsp else None
        ratio = compression_ratio(text) if text else None
        reasons = list(rt.reasons)
        cfg = self.config
        if no_speech is not None and no_speech > cfg.max_no_speech_prob and (avg is None or avg < cfg.min_avg_logprob):
            reasons.append("no_speech")
        if avg is not None and avg < cfg.min_avg_logprob:
            reasons.append("low_logprob")
        if ratio is not None and ratio > cfg.max_compression_ratio:
            reasons.append("compression_ratio")
        if repeat_fraction([w.text for w in words] or text.split()) > cfg.max_repeat_fraction:
            reasons.append("repetition")
        return Transcript(
            text=text,
            language=rt.language,
            language_probability=rt.language_probability,
            words=words,
            word_timing="none" if not words else ("aligned" if rt.word_timing == "aligned" else "asr"),
            model=rt.model,
            reliable=not reasons,
            unreliable_reasons=reasons,
            no_speech_prob=no_speech,
            avg_logprob=avg,
            compression_ratio=ratio,
        )


class _TailSliver(Exception):
    """Raised from the encoder hook to end a decode before a tail sliver window."""


class _EncoderHook:
    """Wraps one faster-whisper decode's encoder calls: skips tail slivers, trims padding.

    Tail slivers: after a window whose last sentence Whisper leaves open, it re-seeks to the
    last word's end and encodes a whole padded 30 s window for what is left: at the end of
    the speech that is a fraction of a second the previous window already heard, costing a
    full encoder pass and decoding into padding, where Whisper loops. The hook sees each
    window's features (the real frames, then zero padding), so it can tell such a tail
    window from a real one before it is encoded, and ends the decode instead (the first
    window always runs). ``min_tail_s = 0`` never skips.

    Padding: a window shorter than 30 s is zero-padded to 30 s, and the encoder's cost is
    linear in frames, so a 4 s clip pays for 30 s. With ``min_window_s < 30`` the encoder
    gets only the real frames plus 1 s (at least ``min_window_s``); the decoder reads what
    is there, as whisper.cpp's ``audio_ctx`` does. 30 keeps Whisper's own padding.
    """

    def __init__(self, model: Any, min_tail_s: float, min_window_s: float = 30.0) -> None:
        self.model = model
        self.min_frames = int(min_tail_s * 100)  # Whisper features: 100 frames per second
        self.window_frames = int(min_window_s * 100)
        self.windows = 0

    def __enter__(self) -> _EncoderHook:
        encode = self.model.encode

        def hooked(features: np.ndarray) -> Any:
            self.windows += 1
            real = _real_frames(features)
            if self.windows > 1 and self.min_frames and real < self.min_frames:
                raise _TailSliver
            keep = min(features.shape[-1], max(real + _TRIM_MARGIN_FRAMES, self.window_frames))
            if keep < features.shape[-1]:
                features = np.ascontiguousarray(features[..., :keep])
            return encode(features)

        self.model.encode = hooked  # on this instance only, for this decode only
        return self

    def __exit__(self, *exc: object) -> None:
        del self.model.encode

    def segments(self, segments: Any) -> Any:
        try:
            yield from segments
        except _TailSliver:
            return


def _real_frames(features: np.ndarray) -> int:
    """Frames before the zero padding ``pad_or_trim`` appends (log-mel frames are never all zero)."""
    filled = np.flatnonzero(np.any(np.asarray(features).reshape(-1, features.shape[-1]) != 0, axis=0))
    return int(filled[-1]) + 1 if filled.size else 0


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


def _split_long(clips: list[Span], audio: np.ndarray, max_s: float, sr: int = 16000) -> list[Span]:
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


def _windows(clips: list[Span], max_s: float) -> list[list[Span]]:
    """Consecutive clips grouped so each group spans at most ``max_s`` (a longer clip stays alone)."""
    groups: list[list[Span]] = []
    for c in clips:
        if groups and c.end_s - groups[-1][0].start_s <= max_s:
            groups[-1].append(c)
        else:
            groups.append([c])
    return groups


_NO_SPACE_LANGS = {"zh", "ja", "th", "lo", "km", "my", "yue"}


def _join(language: str | None, words: list[str]) -> str:
    return ("" if language in _NO_SPACE_LANGS else " ").join(words)
