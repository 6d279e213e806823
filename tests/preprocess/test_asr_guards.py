"""The ASR hallucination guards as pure functions (preprocess/asr_guards.py), no model needed."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from emoforge.configs.preprocess import AsrConfig
from emoforge.preprocess.asr_guards import decoder_loop, guard_reasons

CFG = AsrConfig()
TEXT = "ask not what your country can do for you"


def test_a_clean_transcript_has_no_reasons() -> None:
    assert guard_reasons(TEXT, TEXT.split(), avg_logprob=-0.2, no_speech_prob=0.01, config=CFG) == []


def test_each_guard_fires_at_its_threshold_and_not_below() -> None:
    low = CFG.min_avg_logprob
    assert guard_reasons(TEXT, TEXT.split(), low - 0.01, None, CFG) == ["low_logprob"]
    assert guard_reasons(TEXT, TEXT.split(), low, None, CFG) == []
    # Whisper's silence rule needs both: a high no-speech probability and a low log-prob.
    silent = CFG.max_no_speech_prob + 0.01
    assert guard_reasons(TEXT, TEXT.split(), -0.2, silent, CFG) == []
    assert guard_reasons(TEXT, TEXT.split(), low - 0.01, silent, CFG) == ["no_speech", "low_logprob"]
    assert guard_reasons(TEXT, TEXT.split(), None, silent, CFG) == ["no_speech"]
    loop = "thank you " * 40
    assert guard_reasons(loop, loop.split(), -0.2, None, CFG) == ["compression_ratio", "repetition"]


def test_words_default_to_the_text_tokens() -> None:
    text = "no no no no"
    assert guard_reasons(text, [], None, None, CFG) == guard_reasons(text, text.split(), None, None, CFG)
    assert "repetition" in guard_reasons(text, [], None, None, CFG)


def test_a_decoder_loop_is_faster_than_speech_counted_over_at_least_a_second() -> None:
    assert not decoder_loop("Hello.", 0.06, CFG.max_chars_per_s)  # Whisper stamps a lone word that short
    assert decoder_loop("see you in the next video " * 10, 0.5, CFG.max_chars_per_s)


@given(st.text(max_size=200), st.floats(0.0, 100.0), st.floats(1.0, 100.0))
def test_decoder_loop_is_monotone_in_duration(text: str, duration: float, rate: float) -> None:
    # A longer span for the same text is never more of a loop.
    assert decoder_loop(text, duration + 1.0, rate) <= decoder_loop(text, duration, rate)
