"""Voice activity with silero-vad, whose model ships inside the PyPI package (no download)."""

from __future__ import annotations

import functools
import logging
import threading
from typing import Any

import numpy as np

from emoforge.configs.sampling import VadConfig
from emoforge.storage.records import Span

log = logging.getLogger(__name__)

_MODEL_RATE = 16000
_STREAMING_LOCK = threading.Lock()


def to_rate(audio: np.ndarray, sample_rate: int, target: int) -> np.ndarray:
    """Mono float32 at ``target`` Hz (polyphase resampling; a no-op when rates match)."""
    audio = np.ascontiguousarray(audio, dtype=np.float32).reshape(-1)
    if sample_rate == target:
        return audio
    from math import gcd

    from scipy.signal import resample_poly

    g = gcd(sample_rate, target)
    return resample_poly(audio, target // g, sample_rate // g).astype(np.float32)


@functools.lru_cache(maxsize=3)
def _load_model(mode: str) -> Any:
    """The packaged model, loaded once per process and variant."""
    import torch

    # silero_vad's package import calls torch.set_num_threads(1) for the whole process;
    # put back what the caller had so other torch stages keep their threads.
    threads = torch.get_num_threads()
    from silero_vad import load_silero_vad

    torch.set_num_threads(threads)
    return load_silero_vad(onnx=mode == "onnx", sequence=mode == "sequence")


class SileroVad:
    """Speech spans in seconds. The model is loaded on first use and kept."""

    def __init__(self, config: VadConfig) -> None:
        self.config = config
        self._model: Any = None

    @property
    def model_id(self) -> str:
        return f"silero-vad-6/{self.config.silero_model}"

    def _load(self) -> Any:
        if self._model is None:
            self._model = _load_model(self.config.silero_model)
        return self._model

    def detect(self, audio: np.ndarray, sample_rate: int) -> list[Span]:
        """Speech spans (recording seconds) of mono ``audio`` at ``sample_rate``."""
        if audio.size == 0:
            return []
        model = self._load()
        wav = to_rate(audio, sample_rate, _MODEL_RATE)
        c = self.config
        kwargs = dict(
            threshold=c.threshold,
            sampling_rate=_MODEL_RATE,
            min_speech_duration_ms=round(c.min_speech_s * 1000),
            min_silence_duration_ms=round(c.min_silence_s * 1000),
            speech_pad_ms=round(c.speech_pad_s * 1000),
            return_seconds=False,
        )
        if c.silero_model == "sequence":
            from silero_vad import get_speech_timestamps_sequence

            stamps = get_speech_timestamps_sequence(wav, model, **kwargs)
        else:
            import torch
            from silero_vad import get_speech_timestamps

            # the streaming models carry LSTM state between calls: one caller at a time
            with _STREAMING_LOCK:
                stamps = get_speech_timestamps(torch.from_numpy(wav), model, **kwargs)
        # sample indices, not silero's rounded seconds: keeps millisecond precision
        return [Span(start_s=s["start"] / _MODEL_RATE, end_s=s["end"] / _MODEL_RATE) for s in stamps]
