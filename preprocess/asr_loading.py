"""Loading the ASR models: faster-whisper, or whisperx with a VAD built without unsafe unpickling.

Heavy libraries are imported inside the functions. A faster-whisper model's weights are
loaded once per process (``shared_whisper``) and shared by every tool that runs the same
files with the same settings: each ASR instance and the voice recognizer's encoder.
"""

from __future__ import annotations

import copy
import os
import threading
from typing import Any

from emoforge.configs.preprocess import AsrConfig
from emoforge.preprocess.printed import captured_stdout


def _whisperx_vad(device: str) -> Any:
    """whisperx's pyannote VAD with the defaults of ``whisperx.load_model``, its model loaded
    through ``vad_pyannote.load_segmentation_model`` (bundled file by hash, else weights-only)."""
    import torch
    from whisperx.vads.pyannote import Pyannote, VoiceActivitySegmentation
    from whisperx.vads.vad import Vad

    from emoforge.preprocess.sampling.vad_pyannote import load_segmentation_model, resolve_checkpoint

    model = load_segmentation_model(resolve_checkpoint("package:whisperx"))
    pipeline = VoiceActivitySegmentation(segmentation=model, device=torch.device(device))
    pipeline.instantiate({"onset": 0.5, "offset": 0.363, "min_duration_on": 0.1, "min_duration_off": 0.1})
    # Pyannote.__init__ would load the checkpoint again through torch.load's process default.
    vad = Pyannote.__new__(Pyannote)
    Vad.__init__(vad, 0.5)
    vad.vad_pipeline = pipeline
    return vad


_WHISPER: dict[tuple[str, str, str, int], Any] = {}
_WHISPER_LOCK = threading.Lock()


def shared_whisper(path: str, device: str = "cpu", compute_type: str = "default", cpu_threads: int = 0) -> Any:
    """A faster-whisper ``WhisperModel`` of ``path`` whose CTranslate2 weights this process loads once.

    Each caller gets its own wrapper (a shallow copy): the ASR patches ``encode`` on its
    wrapper for one decode (``asr_encoder.EncoderHook``), which must not reach another
    tool's calls. The wrappers share one ``ctranslate2.models.Whisper`` (Whisper base int8:
    ~105 MB, which the ASR instances and the voice recognizer each used to load) and its
    read-only tokenizer and feature extractor. That model runs one call per CPU core at
    once (``inter_threads``: replicas on one device share the weights; one costs ~2 MB more
    idle), so concurrent tasks still decode in parallel, as with a model each.
    """
    key = (path, device, compute_type, cpu_threads)
    with _WHISPER_LOCK:  # two tasks on their first recording load it once
        if key not in _WHISPER:
            from faster_whisper import WhisperModel

            cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
            _WHISPER[key] = WhisperModel(
                path, device=device, compute_type=compute_type, cpu_threads=cpu_threads, num_workers=cores
            )
        return copy.copy(_WHISPER[key])


def load_asr_model(path: str, config: AsrConfig) -> Any:
    """The decoder of ``config.backend`` for the model at ``path`` (resolved already)."""
    if config.backend == "whisperx":
        import whisperx

        # whisperx's VAD is the pickled pyannote checkpoint in its wheel, which torch >= 2.6
        # refuses weights-only. We build that VAD ourselves (the bundled file, checked by
        # hash, is the only one unpickled unrestricted) instead of switching safe loading
        # off for the whole process while other threads may load user files.
        vad = _whisperx_vad(config.device)
        with captured_stdout():  # "Use manually assigned vad_model..."
            return whisperx.load_model(path, config.device, compute_type=config.compute_type, vad_model=vad)
    return shared_whisper(path, config.device, config.compute_type, config.cpu_threads)


def load_align_model(language: str, config: AsrConfig) -> tuple[Any, Any]:
    """whisperx's forced-alignment model (and its metadata) for ``language``."""
    import whisperx

    model, meta = whisperx.load_align_model(language_code=language, device=config.device, model_name=config.align_model)
    return model, meta
