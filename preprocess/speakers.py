"""Who speaks when: overlapped speech (pyannote segmentation) and, when configured, diarization.

Overlap detection uses the PyanNet segmentation model that ships inside whisperx, through
``PyannoteSegmentation.overlaps`` (one pass per recording). Full diarization needs a
pyannote pipeline the user provides as local weights (``diarization.pipeline``: a
``config.yaml`` or its folder), optionally with a Hugging Face token read from the env var
named in ``hf_token_env``. Without one the analysis says ``diarization: unavailable``
and no speakers are invented.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import Field

from emoforge.configs.preprocess import DiarizationConfig
from emoforge.configs.sampling import VadConfig
from emoforge.preprocess.tool import ToolSpec
from emoforge.storage.records import ErrorKind, Failure, Record, Span, Word
from emoforge.storage.secrets import register_secret_env

log = logging.getLogger(__name__)


class SpeakerAnalysis(Record):
    """Recording-level speaker evidence; ``turns`` is empty unless diarization ran."""

    backend: str = Field(description="Diarization backend, or 'unavailable'.")
    overlap_model: str | None = Field(default=None, description="Overlap detector model id.")
    turns: list[Span] = Field(default_factory=list, description="Speaker turns (label = speaker).")
    overlaps: list[Span] = Field(default_factory=list, description="Overlapped-speech spans.")
    failures: list[Failure] = Field(default_factory=list, description="Sub-steps that failed.")


def clip_spans(spans: list[Span], start_s: float, end_s: float) -> list[Span]:
    """The parts of ``spans`` inside [start_s, end_s)."""
    return [
        Span(start_s=max(s.start_s, start_s), end_s=min(s.end_s, end_s), label=s.label)
        for s in spans
        if s.end_s > start_s and s.start_s < end_s
    ]


def speaker_of(start_s: float, end_s: float, turns: list[Span]) -> str | None:
    """The turn label overlapping [start_s, end_s] the most (None without overlap)."""
    best, best_len = None, 0.0
    for t in turns:
        inter = min(end_s, t.end_s) - max(start_s, t.start_s)
        if inter > best_len:
            best, best_len = t.label, inter
    return best


def label_words(words: list[Word], turns: list[Span]) -> list[Word]:
    if not turns:
        return words
    return [w.model_copy(update={"speaker": speaker_of(w.start_s, w.end_s, turns)}) for w in words]


class SpeakerAnalyzer:
    """Overlaps and (optional) diarization of one recording's audio; models loaded once."""

    def __init__(self, config: DiarizationConfig, vad: VadConfig | None = None) -> None:
        self.config = config
        self.vad = vad or VadConfig(backend="pyannote")
        self._segmentation: Any = None
        self._pipeline: Any = None

    def analyze(self, audio: np.ndarray, sr: int) -> SpeakerAnalysis:
        failures: list[Failure] = []
        overlaps: list[Span] = []
        overlap_model = None
        if self.config.overlap and audio.size:
            try:
                if self._segmentation is None:
                    from emoforge.preprocess.sampling.vad_pyannote import PyannoteSegmentation

                    self._segmentation = PyannoteSegmentation(self.vad)
                overlap_model = self._segmentation.model_id
                overlaps = self._segmentation.overlaps(audio, sr)
            except (ImportError, OSError, RuntimeError, ValueError) as exc:
                failures.append(Failure(stage="overlap", kind=ErrorKind.model_unavailable, message=str(exc)[:500]))
        turns: list[Span] = []
        backend = "unavailable"
        if self.config.pipeline and audio.size:
            try:
                turns = self._diarize(audio, sr)
                backend = f"pyannote-pipeline:{Path(self.config.pipeline).name}"
            except (ImportError, OSError, RuntimeError, ValueError, TypeError) as exc:
                failures.append(Failure(stage="diarization", kind=ErrorKind.model_unavailable, message=str(exc)[:500]))
        return SpeakerAnalysis(
            backend=backend, overlap_model=overlap_model, turns=turns, overlaps=overlaps, failures=failures
        )

    def _diarize(self, audio: np.ndarray, sr: int) -> list[Span]:
        import torch
        from pyannote.audio import Pipeline

        if self._pipeline is None:
            path = Path(str(self.config.pipeline)).expanduser()
            if path.is_dir():
                path = path / "config.yaml"
            if not path.is_file():
                raise OSError(f"pyannote pipeline config {path} not found")
            register_secret_env(self.config.hf_token_env)  # a hub error may quote the token
            token = os.environ.get(self.config.hf_token_env) if self.config.hf_token_env else None
            kwargs = {"use_auth_token": token} if token else {}
            self._pipeline = Pipeline.from_pretrained(str(path), **kwargs)
        waveform = torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32))[None]
        annotation = self._pipeline({"waveform": waveform, "sample_rate": sr})
        return [
            Span(start_s=round(turn.start, 3), end_s=round(turn.end, 3), label=str(label))
            for turn, _, label in annotation.itertracks(yield_label=True)
        ]


TOOL = ToolSpec(
    name="speakers",
    phase="preprocess",
    section="preprocess.diarization",
    fills=("speaker_turns", "overlaps", "diarization"),
)
