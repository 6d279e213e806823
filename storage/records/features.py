"""What the preprocess phase extracts for a segment, aligned on recording time."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from emoforge.storage.records.base import Provenance, Record
from emoforge.storage.records.failure import Failure


class Word(Record):
    text: str = Field(description="Word as transcribed.")
    start_s: float = Field(description="Start in recording seconds.")
    end_s: float = Field(description="End in recording seconds.")
    probability: float | None = Field(default=None, description="ASR word probability.")
    speaker: str | None = Field(default=None, description="Speaker label, when diarized.")


class Transcript(Record):
    text: str = Field(description="Transcript text of the segment.")
    language: str | None = Field(default=None, description="Language code used or detected.")
    language_probability: float | None = Field(default=None, description="Detection probability.")
    words: list[Word] = Field(default_factory=list, description="Words with recording-time stamps.")
    word_timing: Literal["aligned", "asr", "none"] = Field(
        default="none", description="aligned: forced alignment (wav2vec2); asr: decoder timestamps."
    )
    model: str | None = Field(default=None, description="ASR model id or path.")
    reliable: bool = Field(default=True, description="False when a hallucination guard fired.")
    unreliable_reasons: list[str] = Field(default_factory=list, description="Guards that fired.")
    no_speech_prob: float | None = Field(default=None, description="Max no-speech probability.")
    avg_logprob: float | None = Field(default=None, description="Mean token log-probability.")
    compression_ratio: float | None = Field(default=None, description="Max gzip compression ratio.")


class Span(Record):
    start_s: float = Field(description="Start in recording seconds.")
    end_s: float = Field(description="End in recording seconds.")
    label: str | None = Field(default=None, description="Speaker or event label.")


class ProsodyFrame(Record):
    t_s: float = Field(description="Frame time in recording seconds.")
    f0_hz: float | None = Field(default=None, description="F0 (Hz); null when unvoiced.")
    intensity_db: float | None = Field(default=None, description="Intensity (dB).")


class Prosody(Record):
    """Segment-level prosody (praat-parselmouth); values null where undefined."""

    f0_mean_hz: float | None = Field(default=None, description="Mean F0 over voiced frames.")
    f0_sd_hz: float | None = Field(default=None, description="F0 standard deviation.")
    f0_min_hz: float | None = Field(default=None, description="5th percentile F0.")
    f0_max_hz: float | None = Field(default=None, description="95th percentile F0.")
    f0_slope_hz_s: float | None = Field(default=None, description="Linear F0 trend (Hz/s).")
    intensity_mean_db: float | None = Field(default=None, description="Mean intensity (dB).")
    intensity_sd_db: float | None = Field(default=None, description="Intensity standard deviation.")
    jitter_local: float | None = Field(default=None, description="Local jitter (fraction).")
    shimmer_local: float | None = Field(default=None, description="Local shimmer (fraction).")
    hnr_db: float | None = Field(default=None, description="Harmonics-to-noise ratio (dB).")
    voiced_fraction: float | None = Field(default=None, description="Fraction of voiced frames.")
    speech_rate_wps: float | None = Field(default=None, description="Words per second of speech.")
    pause_count: int | None = Field(default=None, description="Silent pauses >= min pause length.")
    pause_total_s: float | None = Field(default=None, description="Total pause time (s).")
    frames: list[ProsodyFrame] = Field(default_factory=list, description="Subsampled F0/intensity.")


class AUFrame(Record):
    t_s: float = Field(description="Frame time in recording seconds.")
    values: dict[str, float] = Field(description="AU name -> intensity (0..1 for landmark AUs).")


class FaceObservation(Record):
    """Face evidence of a segment: presence, pose, geometry, action units."""

    frames_sampled: int = Field(default=0, description="Video frames analysed.")
    frames_with_face: int = Field(default=0, description="Frames where a face was found.")
    faces_max: int = Field(default=0, description="Most faces seen in one frame.")
    landmark_model: str | None = Field(default=None, description="Landmark model (e.g. mediapipe).")
    head_pose_deg: dict[str, float] = Field(default_factory=dict, description="Mean yaw/pitch/roll.")
    geometry: dict[str, float] = Field(default_factory=dict, description="Mean size-normalised facial descriptors.")
    au_backend: Literal["landmark", "pyfeat", "none"] = Field(
        default="none", description="Which estimator produced the AUs."
    )
    au_mean: dict[str, float] = Field(default_factory=dict, description="AU -> mean intensity.")
    au_peak: dict[str, float] = Field(default_factory=dict, description="AU -> max intensity.")
    au_frames: list[AUFrame] = Field(default_factory=list, description="Per-frame AU intensities.")

    @property
    def face_ratio(self) -> float:
        return self.frames_with_face / self.frames_sampled if self.frames_sampled else 0.0


class KeyFrame(Record):
    t_s: float = Field(description="Frame time in recording seconds.")
    score: float = Field(description="Diversity or peak score that selected it.")
    reason: str = Field(description="Selector: diversity, peak, uniform.")
    jpeg: bytes | None = Field(default=None, description="Small JPEG thumbnail for agents.")


class Evidence(Record):
    """Compact per-modality text summary handed to annotators."""

    face: str | None = Field(default=None, description="Face/AU evidence summary.")
    voice: str | None = Field(default=None, description="Prosody evidence summary.")
    text: str | None = Field(default=None, description="Transcript evidence summary.")


class Features(Record):
    """Everything extracted for one segment, aligned on recording time."""

    segment_id: str = Field(description="Parent segment id.")
    transcript: Transcript | None = Field(default=None, description="ASR output, if any.")
    speaker_turns: list[Span] = Field(default_factory=list, description="Speaker turns in span.")
    overlaps: list[Span] = Field(default_factory=list, description="Overlapped-speech spans.")
    diarization: str = Field(default="unavailable", description="Diarization backend or 'unavailable'.")
    prosody: Prosody | None = Field(default=None, description="Prosody, if there is audio.")
    face: FaceObservation | None = Field(default=None, description="Face evidence, if video.")
    keyframes: list[KeyFrame] = Field(default_factory=list, description="Selected key frames.")
    peak_t_s: float | None = Field(default=None, description="Emotional peak frame time.")
    evidence: Evidence = Field(default_factory=Evidence, description="Per-modality text summaries.")
    failures: list[Failure] = Field(default_factory=list, description="Sub-stages that failed (the rest still ran).")
    provenance: list[Provenance] = Field(default_factory=list, description="One per sub-stage.")

    @property
    def modalities(self) -> list[str]:
        """Modalities with usable evidence: the judge checks coverage against this."""
        out = []
        if self.face is not None and self.face.frames_with_face > 0:
            out.append("face")
        if self.prosody is not None and self.prosody.voiced_fraction:
            out.append("voice")
        if self.transcript is not None and self.transcript.text.strip() and self.transcript.reliable:
            out.append("text")
        return out
