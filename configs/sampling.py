"""Stage 1 config: media probing/decoding, shots, VAD, segment policy, key frames, instruction."""

from typing import Literal

from pydantic import Field

from emoforge.configs.base import Section
from emoforge.configs.emotions import DEFAULT_LABELS


class MediaConfig(Section):
    audio_sample_rate: int = Field(16000, description="Decode audio to this rate, mono.")
    frame_fps: float = Field(2.0, gt=0, description="Frames per second sampled for vision stages.")
    frame_max_side: int = Field(640, ge=64, description="Downscale sampled frames to this long side.")
    frame_jpeg_quality: int = Field(
        90, ge=10, le=100, description="JPEG quality of the shared frame store (memory vs fidelity)."
    )
    apply_rotation: bool = Field(True, description="Rotate sampled frames upright using the stream's display matrix.")
    scan_side: int = Field(
        256,
        ge=0,
        description="Score every decoded frame for shot cuts at this long side during the one decode "
        "pass (PySceneDetect's working size); 0 = off (shots then decode the file again).",
    )
    max_file_bytes: int | None = Field(
        50 << 30,
        gt=0,
        description="Larger input files fail as unsupported_media before they are hashed or decoded; null = no cap.",
    )
    max_duration_s: float | None = Field(
        4 * 3600.0,
        gt=0,
        description="Longer recordings (container duration) fail as unsupported_media before decoding: "
        "decoded audio alone takes 230 MB an hour at 16 kHz. null = no cap.",
    )
    max_pixels: int | None = Field(
        3840 * 2160,
        gt=0,
        description="Videos with more pixels per frame (width x height) fail as unsupported_media: one "
        "8192x8192 frame is 200 MB in RGB before it is scaled down. null = no cap.",
    )
    min_decoded_fraction: float = Field(
        0.9,
        ge=0,
        le=1,
        description="A stream that decodes to less than this fraction of the container duration is "
        "truncated: the recording fails as partial_media instead of passing as shorter media.",
    )


class ShotConfig(Section):
    enabled: bool = True
    detector: Literal["content", "adaptive"] = "content"
    threshold: float = Field(27.0, description="ContentDetector threshold (adaptive: adaptive_threshold).")
    adaptive_threshold: float = Field(3.0, gt=0, description="AdaptiveDetector score ratio for a cut.")
    adaptive_min_content_val: float = Field(
        15.0, ge=0, description="AdaptiveDetector: minimum content score a cut must also exceed."
    )
    adaptive_window: int = Field(2, ge=1, description="AdaptiveDetector rolling window (frames each side).")
    min_scene_len_s: float = Field(0.5, ge=0)
    downscale: int = Field(0, ge=0, description="PySceneDetect downscale factor; 0 = automatic.")
    source: Literal["scan", "file", "frames"] = Field(
        "scan",
        description="scan: PySceneDetect's detector over the content scores the decoder took from every "
        "frame (no second decode, cuts exact to one frame; falls back to file without them); "
        "file: PySceneDetect decodes the file again; frames: the shared sampled FrameStore "
        "(cuts exact to 1/frame_fps).",
    )
    backend: Literal["pyav", "opencv"] = Field("pyav", description="PySceneDetect video backend for 'file'.")


class VadConfig(Section):
    backend: Literal["silero", "pyannote", "none"] = "silero"
    threshold: float = Field(0.5, ge=0, le=1)
    min_speech_s: float = Field(0.25, ge=0)
    min_silence_s: float = Field(0.1, ge=0)
    speech_pad_s: float = Field(0.03, ge=0, description="silero: pad each detected speech span.")
    silero_model: Literal["sequence", "onnx", "jit"] = Field(
        "sequence",
        description="silero: sequence = batched ONNX (same probabilities, fastest, no torch); "
        "onnx = the streaming ONNX model; jit = TorchScript.",
    )
    offset: float | None = Field(None, ge=0, le=1, description="pyannote: hysteresis off-threshold; null = threshold.")
    overlap_threshold: float = Field(
        0.5, ge=0, le=1, description="pyannote: second-speaker activation that counts as overlap."
    )
    min_overlap_s: float = Field(0.1, ge=0, description="pyannote: drop overlaps shorter than this.")
    pyannote_model: str = Field(
        "package:whisperx",
        description="PyanNet segmentation checkpoint: a path, or 'package:whisperx' for the one "
        "bundled at whisperx/assets/pytorch_model.bin.",
    )
    pyannote_step_s: float | None = Field(
        2.0,
        gt=0,
        description="pyannote sliding-window step (s); null = 10% of the 5 s window. 2.0 s is ~2.5x "
        "faster than 1.0 s on CPU, with the same DER and overlap recall/precision on two_speakers.wav.",
    )
    pyannote_batch_size: int = Field(32, ge=1)


class SegmentPolicy(Section):
    merge_gap_s: float = Field(0.5, ge=0, description="Merge speech turns separated by less.")
    max_len_s: float = Field(15.0, gt=0, description="Split longer turns at pauses.")
    min_len_s: float = Field(1.0, ge=0, description="Drop or merge segments shorter than this.")
    pad_s: float = Field(0.1, ge=0, description="Pad each segment on both sides (clipped to shot).")
    cross_shots: bool = Field(False, description="Allow segments to span shot boundaries.")
    visual_mode: Literal["off", "gaps", "whole"] = Field(
        "gaps", description="gaps: shots without speech become visual segments; whole: one per file."
    )
    min_shot_s: float = Field(
        0.0, ge=0, description="Shots shorter than this are merged into their neighbour before segmenting."
    )


class KeyframeConfig(Section):
    k: int = Field(3, ge=1, description="Key frames per segment.")
    min_gap_s: float = Field(0.5, ge=0)
    method: Literal["diversity", "uniform"] = "diversity"
    jpeg_max_side: int = Field(384, ge=32, description="Thumbnail size stored for agents.")
    jpeg_quality: int = Field(80, ge=10, le=100)
    analysis_side: int = Field(160, ge=32, description="Long side of the copy used for diff/flow/ORB.")
    orb_features: int = Field(300, ge=10, description="ORB keypoints per frame for similarity.")
    peak_top_aus: int = Field(3, ge=1, description="Peak frame: sum the intensities of this many AUs.")
    peak_au_active: float = Field(
        0.3, ge=0, le=1, description="Peak frame: an AU counts as present in a frame above this intensity."
    )


DEFAULT_TAXONOMY = list(DEFAULT_LABELS)  # configs/emotions.py; name kept for its importers


class InstructionConfig(Section):
    version: str = "emo-cot-v1"
    taxonomy: list[str] = Field(
        default_factory=lambda: list(DEFAULT_TAXONOMY),
        description="Labels named in the instruction; the flow keeps it equal to agents.taxonomy.labels.",
    )


class SamplingConfig(Section):
    media: MediaConfig = MediaConfig()
    shots: ShotConfig = ShotConfig()
    vad: VadConfig = VadConfig()
    policy: SegmentPolicy = SegmentPolicy()
    keyframes: KeyframeConfig = KeyframeConfig()
    instruction: InstructionConfig = InstructionConfig()
