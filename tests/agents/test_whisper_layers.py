"""Whisper's encoder re-run from CTranslate2's model.bin: its last state is CTranslate2's own."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from emoforge.agents.recognizers.voice import SPEC, encoder_input, hear
from emoforge.agents.recognizers.whisper_layers import WhisperFileError, WhisperLayers, read_encoder_weights
from emoforge.preprocess.models import resolve_model


@pytest.fixture(scope="module")
def model_dir() -> Path:
    return resolve_model(SPEC["encoder"])


def test_final_state_matches_ctranslate2_and_middle_states_are_computed(model_dir: Path, fixtures_dir: Path) -> None:
    from faster_whisper import WhisperModel

    audio, _ = sf.read(fixtures_dir / "ravdess" / "03-01-05-02-01-01-01.flac", dtype="float32")
    whisper = WhisperModel(str(model_dir), device="cpu", compute_type="float32", cpu_threads=1)
    mel = whisper.feature_extractor(encoder_input(hear(audio, SPEC).speech, SPEC))
    reference = np.asarray(whisper.encode(np.ascontiguousarray(mel, dtype=np.float32)))[0]
    states = WhisperLayers(model_dir).hidden_states(mel)
    assert len(states) == 8 and all(s.shape == reference.shape for s in states)
    # float32 both ways, different kernels: ~1e-3 on values up to ~20 (measured 1.1e-3 at most)
    assert np.abs(states[-1] - reference).max() < 5e-3
    assert np.abs(states[-1].mean(axis=0) - reference.mean(axis=0)).max() < 1e-4
    middle = WhisperLayers(model_dir, last=3).hidden_states(mel)  # blocks after the third not run
    assert len(middle) == 4 and np.array_equal(middle[3], states[3])
    assert np.abs(states[3] - states[-1]).max() > 1.0  # a middle layer is not the output


def test_files_that_are_not_a_float_whisper_model_fail_clearly(tmp_path: Path, model_dir: Path) -> None:
    bad = tmp_path / "model.bin"
    bad.write_bytes(b"\x06\x00\x00\x00\x0a\x00TransSpec\x00")
    with pytest.raises(WhisperFileError, match="'TransSpec' model, not Whisper"):
        read_encoder_weights(bad)
    bad.write_bytes((model_dir / "model.bin").read_bytes()[:4096])
    with pytest.raises(WhisperFileError, match="truncated"):
        read_encoder_weights(bad)
    with pytest.raises(ValueError, match="states 0-7"):
        WhisperLayers(model_dir, last=9)
