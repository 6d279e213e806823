"""Voice activity and overlapped speech with pyannote's PyanNet segmentation model.

The weights are the ``pyannote/segmentation`` checkpoint that ships inside the whisperx
wheel (``whisperx/assets/pytorch_model.bin``), so nothing is downloaded. The model is
multi-label (up to three simultaneous speakers per 5 s window, in an arbitrary order per
window), so speaker channels are reduced per window before windows are averaged: the
maximum is "someone speaks", the second largest is "two people speak at once". One pass
yields both curves; ``detect`` and ``overlaps`` on the same audio share it.

Loading: the checkpoint is a pickled Lightning checkpoint, which torch's safe
(``weights_only``) loader refuses. Only the file that ships in the whisperx wheel, recognised
by its sha256 wherever it lies, is unpickled unrestricted, and only in that one
``torch.load`` call; any other path (``sampling.vad.pyannote_model``) is loaded
weights-only, so a planted checkpoint cannot run code. Nothing process-wide is switched
(no ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD``, no ``add_safe_globals``): other threads that
load user files at the same time stay safe.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import logging
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from emoforge.configs.sampling import VadConfig
from emoforge.preprocess.printed import captured_stdout
from emoforge.preprocess.sampling.vad_silero import to_rate
from emoforge.storage.records import Span, file_sha256

log = logging.getLogger(__name__)

_MODEL_RATE = 16000

# sha256 of whisperx/assets/pytorch_model.bin (pyannote/segmentation, whisperx 3.x wheels).
BUNDLED_SHA256 = "0b5b3216d60a2d32fc086b47ea8c67589aaeb26b7e07fcbe620d6d0b83e209ea"


class UntrustedCheckpoint(ValueError):
    """A checkpoint that is not the bundled one and cannot be loaded weights-only."""


def resolve_checkpoint(spec: str) -> Path:
    """Path of the PyanNet checkpoint: ``package:whisperx`` or a filesystem path."""
    if spec == "package:whisperx":
        found = importlib.util.find_spec("whisperx")
        if found is None or not found.submodule_search_locations:
            raise FileNotFoundError("whisperx is not installed; set sampling.vad.pyannote_model to a path")
        path = Path(next(iter(found.submodule_search_locations))) / "assets" / "pytorch_model.bin"
    else:
        path = Path(spec).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"pyannote segmentation checkpoint not found: {path}")
    return path


def is_bundled(path: str | Path) -> bool:
    """True when the file's bytes are the checkpoint shipped in the whisperx wheel."""
    return file_sha256(path) == BUNDLED_SHA256


def load_segmentation_model(path: str | Path) -> Any:
    """A fresh pyannote segmentation Model on the CPU (callers may move it to a device).

    Raises:
        UntrustedCheckpoint: not the bundled file, and the weights-only loader refused it.
        TypeError: the checkpoint names a class that is not a pyannote Model.
    """
    import pickle

    import torch
    from pyannote.audio.core.model import Model

    path = str(path)
    # The hash, not the path, decides: a configurable path is exactly what an attacker would set.
    trusted = is_bundled(path)
    try:
        meta = torch.load(path, map_location="cpu", weights_only=not trusted)
    except pickle.UnpicklingError as exc:
        raise UntrustedCheckpoint(
            f"{path}: not the bundled pyannote checkpoint (sha256 {BUNDLED_SHA256[:12]}...), and the "
            f"safe weights-only loader refused it: {str(exc).splitlines()[0]}"
        ) from exc
    arch = meta["pyannote.audio"]["architecture"]
    klass = getattr(importlib.import_module(arch["module"]), arch["class"])
    if not issubclass(klass, Model):
        raise TypeError(f"{path}: {arch} is not a pyannote Model")
    # pyannote print()s "Model was trained with pyannote.audio 0.0.1 / torch 1.10 ... Bad things might
    # happen": known for this checkpoint, and the DER test guards it; keep it out of stdout.
    with warnings.catch_warnings(), captured_stdout() as printed:
        warnings.simplefilter("ignore", UserWarning)
        model = klass.load_from_checkpoint(
            path, map_location=torch.device("cpu"), strict=False, weights_only=not trusted
        )
    if printed.getvalue().strip():
        log.debug("pyannote on load: %s", printed.getvalue().strip())
    model.eval()
    return model


@functools.lru_cache(maxsize=2)
def _load_inference(path: str, step_s: float | None, batch_size: int) -> Any:
    """One Inference per checkpoint and settings for the whole process (every Segmenter shares it)."""
    import torch
    from pyannote.audio import Inference

    model = load_segmentation_model(path)
    duration = float(model.specifications.duration)
    return Inference(
        model,
        duration=duration,
        step=step_s or 0.1 * duration,
        batch_size=batch_size,
        pre_aggregation_hook=_speech_and_overlap,
        device=torch.device("cpu"),
    )


def _speech_and_overlap(scores: np.ndarray) -> np.ndarray:
    """(chunks, frames, speakers) -> (chunks, frames, 2): max and second-largest activation."""
    top2 = np.sort(scores, axis=-1)[..., -2:]
    return np.stack([top2[..., 1], top2[..., 0]], axis=-1)


class PyannoteSegmentation:
    """Speech and overlapped-speech spans (seconds) from one PyanNet pass; model loaded once."""

    def __init__(self, config: VadConfig) -> None:
        self.config = config
        self._inference: Any = None
        self._cache_key: tuple[Any, ...] | None = None
        self._cache_scores: Any = None

    @property
    def model_id(self) -> str:
        return f"pyannote/segmentation@{self.config.pyannote_model}"

    def _load(self) -> Any:
        if self._inference is None:
            c = self.config
            self._inference = _load_inference(
                str(resolve_checkpoint(c.pyannote_model)), c.pyannote_step_s, c.pyannote_batch_size
            )
        return self._inference

    def _scores(self, audio: np.ndarray, sample_rate: int) -> Any:
        """Aggregated (frames, 2) activations; reused for the same audio array."""
        key = (audio.__array_interface__["data"][0], audio.shape, sample_rate, float(audio[::997].sum()))
        if key != self._cache_key:
            import torch

            inference = self._load()
            wav = torch.from_numpy(to_rate(audio, sample_rate, _MODEL_RATE)).unsqueeze(0)
            with torch.inference_mode():
                self._cache_scores = inference({"waveform": wav, "sample_rate": _MODEL_RATE})
            self._cache_key = key
        return self._cache_scores

    @staticmethod
    def _binarize(scores: Any, channel: int, onset: float, offset: float, min_on: float, min_off: float) -> list[Span]:
        from pyannote.audio.utils.signal import Binarize
        from pyannote.core import SlidingWindowFeature

        one = SlidingWindowFeature(scores.data[:, channel : channel + 1], scores.sliding_window)
        binarize = Binarize(onset=onset, offset=offset, min_duration_on=min_on, min_duration_off=min_off)
        timeline = binarize(one).get_timeline().support()
        return [Span(start_s=round(s.start, 3), end_s=round(s.end, 3)) for s in timeline]

    def detect(self, audio: np.ndarray, sample_rate: int) -> list[Span]:
        """Speech spans (recording seconds) of mono ``audio``."""
        if audio.size == 0:
            return []
        c = self.config
        offset = c.offset if c.offset is not None else c.threshold
        scores = self._scores(audio, sample_rate)
        return self._binarize(scores, 0, c.threshold, offset, c.min_speech_s, c.min_silence_s)

    def overlaps(self, audio: np.ndarray, sample_rate: int) -> list[Span]:
        """Overlapped-speech spans: where a second speaker's activation passes the threshold."""
        if audio.size == 0:
            return []
        c = self.config
        return self._binarize(
            self._scores(audio, sample_rate), 1, c.overlap_threshold, c.overlap_threshold, c.min_overlap_s, 0.0
        )
