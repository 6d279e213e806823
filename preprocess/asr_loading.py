"""Loading the ASR models: faster-whisper, or whisperx with a VAD built without unsafe unpickling.

Heavy libraries are imported inside the functions; ``SpeechTranscriber`` caches what they
return, so each model is loaded once per process.
"""

from __future__ import annotations

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
    from faster_whisper import WhisperModel

    return WhisperModel(
        path,
        device=config.device,
        compute_type=config.compute_type,
        cpu_threads=config.cpu_threads,
    )


def load_align_model(language: str, config: AsrConfig) -> tuple[Any, Any]:
    """whisperx's forced-alignment model (and its metadata) for ``language``."""
    import whisperx

    model, meta = whisperx.load_align_model(language_code=language, device=config.device, model_name=config.align_model)
    return model, meta
