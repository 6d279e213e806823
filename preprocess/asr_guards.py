"""Hallucination guards of the ASR stage: why a transcript must not reach the annotators.

Each guard is a pure function of the decoded text and the decoder's own scores, so it can
be tested without a model; ``SpeechTranscriber.slice`` applies ``guard_reasons`` per
segment (see ``preprocess/asr.py`` for the list of reasons and their thresholds).
"""

from __future__ import annotations

import zlib
from collections import Counter

from emoforge.configs.preprocess import AsrConfig


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


def guard_reasons(
    text: str, words: list[str], avg_logprob: float | None, no_speech_prob: float | None, config: AsrConfig
) -> list[str]:
    """The guard reasons of one segment's transcript, in a fixed order; empty = reliable.

    Args:
        text: the segment's text; words: its words (the text's tokens when there are none).
        avg_logprob: duration-weighted mean token log-probability; no_speech_prob: the max.
    """
    reasons: list[str] = []
    ratio = compression_ratio(text) if text else None
    if (
        no_speech_prob is not None
        and no_speech_prob > config.max_no_speech_prob
        and (avg_logprob is None or avg_logprob < config.min_avg_logprob)
    ):
        reasons.append("no_speech")
    if avg_logprob is not None and avg_logprob < config.min_avg_logprob:
        reasons.append("low_logprob")
    if ratio is not None and ratio > config.max_compression_ratio:
        reasons.append("compression_ratio")
    if repeat_fraction(words or text.split()) > config.max_repeat_fraction:
        reasons.append("repetition")
    return reasons


def decoder_loop(text: str, duration_s: float, max_chars_per_s: float) -> bool:
    """True for a decoder segment faster than anyone speaks: Whisper looping on a sliver.

    Whisper's known failure at the end of a window is a sliver of audio followed by padding,
    decoded as a long loop ("see you in the next video, see you ..."). Non-space characters
    per second are counted over at least a second: Whisper stamps a lone "Hello." 0.06 s long.
    """
    chars = len("".join(text.split()))
    return chars / max(duration_s, 1.0) > max_chars_per_s
