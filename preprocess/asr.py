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

This module is the stage; its concerns live beside it: ``asr_loading`` (models and their
environment), ``asr_guards`` (the guards above), ``asr_encoder`` (the encoder patch that
skips tail slivers and trims padding) and ``asr_timemap`` (stream time -> recording time).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
from pydantic import Field

from emoforge.configs.preprocess import AsrConfig
from emoforge.preprocess.asr_encoder import EncoderHook, real_frames
from emoforge.preprocess.asr_guards import compression_ratio, decoder_loop, guard_reasons, repeat_fraction
from emoforge.preprocess.asr_loading import load_align_model, load_asr_model
from emoforge.preprocess.asr_timemap import AsrChunk, SpeechStream, decode_windows, merge_spans, split_long
from emoforge.preprocess.models import ModelUnavailable, resolve_model
from emoforge.preprocess.tool import ToolSpec
from emoforge.storage.records import Record, Span, Transcript, Word

# Names importers of this module use, re-exported from where they now live.
__all__ = [
    "AsrChunk",
    "RecordingTranscript",
    "SpeechStream",
    "SpeechTranscriber",
    "compression_ratio",
    "merge_spans",
    "repeat_fraction",
]
_real_frames = real_frames

log = logging.getLogger(__name__)

_DETECT_WINDOW_S = 30.0
_DETECT_MIN_S = 10.0
_TAIL_S = 30.0


class RecordingTranscript(Record):
    """A recording's speech transcribed once; ``SpeechTranscriber.slice`` cuts segments from it."""

    model: str = Field(description="Model path used for decoding.")
    language: str | None = Field(default=None, description="Language decoded with.")
    detected_language: str | None = Field(default=None, description="Language detected, if detection ran.")
    language_probability: float | None = Field(default=None, description="Detection probability.")
    word_timing: str = Field(default="asr", description="aligned | asr | none.")
    chunks: list[AsrChunk] = Field(default_factory=list, description="Decoder segments.")
    reasons: list[str] = Field(default_factory=list, description="Recording-level guard reasons.")


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
            self._models[path] = load_asr_model(path, self.config)
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
        spans = split_long(clips or [Span(start_s=0.0, end_s=len(audio) / 16000)], audio, self.config.max_window_s)
        for window in decode_windows(spans, self.config.max_window_s):
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
        with EncoderHook(model, self.config.min_tail_window_s, self.config.min_encoder_window_s) as tail:
            for seg in tail.segments(segments):
                chunk = self._chunk(seg)
                if chunk is not None:
                    out.append(chunk)
        return out

    def _chunk(self, seg: Any) -> AsrChunk | None:
        if decoder_loop(seg.text, float(seg.end - seg.start), self.config.max_chars_per_s):
            chars = len("".join(seg.text.split()))
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
            self._aligners[language] = load_align_model(language, self.config)
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
        reasons = [*rt.reasons, *guard_reasons(text, [w.text for w in words], avg, no_speech, self.config)]
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


_NO_SPACE_LANGS = {"zh", "ja", "th", "lo", "km", "my", "yue"}


def _join(language: str | None, words: list[str]) -> str:
    return ("" if language in _NO_SPACE_LANGS else " ").join(words)


TOOL = ToolSpec(name="asr", phase="preprocess", section="preprocess.asr", fills=("transcript",))
