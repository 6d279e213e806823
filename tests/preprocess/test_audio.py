"""Denoising, loudness and prosody against known signals and the jfk recording."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from emoforge.configs.preprocess import DenoiseConfig, ProsodyConfig
from emoforge.preprocess.denoise import AudioCleaner, gated_loudness_db
from emoforge.preprocess.media import Media
from emoforge.preprocess.prosody import ProsodyAnalyzer
from tests.conftest import espeak

SR = 16000


def _tone(hz: float, seconds: float, amp: float = 0.3) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return (amp * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def test_gated_loudness_of_a_sine_matches_its_rms() -> None:
    # A full-scale-relative sine of amplitude A has mean square A^2/2; the gate keeps every block.
    assert gated_loudness_db(_tone(440, 2.0, 0.5), SR) == pytest.approx(-0.691 + 10 * np.log10(0.125), abs=0.05)
    assert gated_loudness_db(np.zeros(SR, np.float32), SR) is None


def test_loudness_normalisation_hits_the_target() -> None:
    quiet = _tone(300, 2.0, 0.01)
    out = AudioCleaner(DenoiseConfig(enabled=False, loudness_target_lufs=-23.0)).clean(quiet, SR)
    assert gated_loudness_db(out, SR) == pytest.approx(-23.0, abs=0.1)


def test_denoise_removes_noise_and_keeps_speech(speech_wav: Path) -> None:
    speech, sr = sf.read(speech_wav, dtype="float32")
    rng = np.random.default_rng(0)
    pad = np.zeros(sr, np.float32)
    clean = np.concatenate([pad, speech, pad])
    noise = (0.02 * rng.standard_normal(clean.size)).astype(np.float32)
    out = AudioCleaner(DenoiseConfig(loudness_target_lufs=None)).clean(clean + noise, sr)

    def db(x: np.ndarray) -> float:
        return 10 * np.log10(float(np.mean(x.astype(np.float64) ** 2)) + 1e-12)

    silence = slice(0, sr // 2)
    assert db(out[silence]) < db(noise[silence]) - 10  # >= 10 dB less noise where nobody speaks
    # What prosody needs: voice quality measured on the cleaned signal is closer to the clean truth.
    body = slice(sr, sr + speech.size)
    analyzer = ProsodyAnalyzer(ProsodyConfig())
    hnr = {
        name: analyzer.analyze(x[body], sr, 0.0).hnr_db
        for name, x in (("clean", clean), ("noisy", clean + noise), ("denoised", out))
    }
    assert hnr["clean"] is not None and hnr["noisy"] is not None and hnr["denoised"] is not None
    assert abs(hnr["denoised"] - hnr["clean"]) < abs(hnr["noisy"] - hnr["clean"]) - 1.0


def test_prosody_of_a_pure_tone() -> None:
    p = ProsodyAnalyzer(ProsodyConfig()).analyze(_tone(220, 1.5), SR, offset_s=10.0)
    assert p.f0_mean_hz == pytest.approx(220, abs=1)
    assert p.f0_sd_hz is not None and p.f0_sd_hz < 1
    assert p.voiced_fraction is not None and p.voiced_fraction > 0.9
    assert p.jitter_local is not None and p.jitter_local < 0.005
    assert p.hnr_db is not None and p.hnr_db > 30
    assert p.frames[0].t_s >= 10.0 and p.frames[-1].t_s <= 11.5  # recording time, not segment time
    assert p.pause_count == 0


def test_prosody_on_jfk(jfk: Media) -> None:
    assert jfk.audio is not None
    p = ProsodyAnalyzer(ProsodyConfig()).analyze(jfk.audio, SR, offset_s=0.0)
    voiced = [f.f0_hz for f in p.frames if f.f0_hz]
    assert 200 <= float(np.median(voiced)) <= 260
    assert p.f0_min_hz is not None and p.f0_max_hz is not None and p.f0_mean_hz is not None
    assert p.f0_min_hz < p.f0_mean_hz < p.f0_max_hz
    assert p.pause_count is not None and p.pause_count >= 3  # jfk pauses between phrases
    assert p.hnr_db is not None and 5 < p.hnr_db < 25
    assert p.shimmer_local is not None and 0 < p.shimmer_local < 0.3


def test_higher_voice_has_higher_f0(generated_dir: Path) -> None:
    low = espeak("This is a test of pitch.", generated_dir / "low.wav", pitch=50)
    high = espeak("This is a test of pitch.", generated_dir / "high.wav", pitch=90)
    analyzer = ProsodyAnalyzer(ProsodyConfig())
    f_low = analyzer.analyze(sf.read(low, dtype="float32")[0], SR, 0.0).f0_mean_hz
    f_high = analyzer.analyze(sf.read(high, dtype="float32")[0], SR, 0.0).f0_mean_hz
    assert f_low is not None and f_high is not None and f_high > f_low * 1.3  # espeak: ~97 vs ~150 Hz


def test_word_rate_counts_words_per_speaking_second(jfk: Media) -> None:
    from emoforge.storage.records import Word

    assert jfk.audio is not None
    words = [Word(text=f"w{i}", start_s=i * 0.5, end_s=i * 0.5 + 0.4) for i in range(22)]
    p = ProsodyAnalyzer(ProsodyConfig()).analyze(jfk.audio, SR, 0.0, words)
    speaking = len(jfk.audio) / SR - (p.pause_total_s or 0)
    assert p.speech_rate_wps == pytest.approx(22 / speaking, rel=1e-3)


def test_blockwise_denoise_matches_one_pass(speech_wav: Path) -> None:
    speech, sr = sf.read(speech_wav, dtype="float32")
    rng = np.random.default_rng(1)
    x = np.concatenate([np.zeros(sr, np.float32), speech, speech, np.zeros(sr, np.float32)])
    x = x + (0.02 * rng.standard_normal(x.size)).astype(np.float32)
    one = AudioCleaner(DenoiseConfig(loudness_target_lufs=None, block_s=60.0)).clean(x, sr)
    blocks = AudioCleaner(DenoiseConfig(loudness_target_lufs=None, block_s=2.5)).clean(x, sr)
    assert blocks.shape == x.shape and blocks.dtype == np.float32
    assert float(np.corrcoef(one, blocks)[0, 1]) > 0.97


def test_digital_silence_does_not_swamp_intensity_statistics() -> None:
    """espeak-style output: speech padded with exact zeros (Praat reads them as ~-300 dB)."""
    tone = _tone(220, 1.0)
    padded = np.concatenate([np.zeros(SR, np.float32), tone, np.zeros(SR, np.float32)])
    p = ProsodyAnalyzer(ProsodyConfig()).analyze(padded, SR, offset_s=0.0)
    alone = ProsodyAnalyzer(ProsodyConfig()).analyze(tone, SR, offset_s=0.0)
    assert p.intensity_sd_db is not None and p.intensity_sd_db < 10
    assert p.intensity_mean_db is not None and alone.intensity_mean_db is not None
    assert abs(p.intensity_mean_db - alone.intensity_mean_db) < 3
