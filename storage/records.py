"""Typed, versioned records that cross every module boundary.

A Recording says where media lives; a Segment is a time span of one recording; Features,
Annotations, Verdicts and a Consensus hang off a segment; a SegmentRow is what a shard
stores, one per segment. IDs derive from parents (``{recording_id}-{index:05d}``,
``{segment_id}-{agent}``) so a rerun overwrites rows instead of duplicating them.

Every field carries a description: ``storage/SCHEMA.md`` and the Arrow schema are
generated from these classes (``python -m emoforge.storage.schema --write``), and a test
fails when the committed snapshot drifts from the code without a schema version bump.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import stat
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from emoforge.configs.terms import Consent
from emoforge.storage.secrets import scrub

SCHEMA_VERSION = 2
"""Bump on any change to the row layout; add an upgrade in ``storage/schema.py``."""


# Failure `stage` strings that older runs committed -> the phase's one name today (`PIPELINE`
# in flows/pipeline.py declares the phases): the in-stage names ("segment", "features") and
# the task names a crash past retries wrote.
LEGACY_STAGE_NAMES: dict[str, str] = {
    "segment": "sampling",
    "features": "preprocess",
    "probe-media": "probe",
    "sample-segments": "sampling",
    "extract-features": "preprocess",
    "annotate-segments": "annotate",
    "judge-annotations": "judge",
    "aggregate-votes": "aggregate",
}


def phase_of(stage_name: str) -> str:
    """The phase a stored failure ``stage`` string names (old names mapped, others as they are:
    tools inside a phase, such as ``asr`` or ``decode``, keep their own names)."""
    return LEGACY_STAGE_NAMES.get(stage_name, stage_name)


class Record(BaseModel):
    """Base for all records: immutable-by-convention, no unknown fields."""

    # bytes (key-frame JPEGs) travel as base64 in JSON: caches, manifests and logs stay text.
    model_config = ConfigDict(
        extra="forbid", validate_assignment=True, ser_json_bytes="base64", val_json_bytes="base64"
    )


class Status(StrEnum):
    ok = "ok"
    failed = "failed"
    skipped = "skipped"


class ErrorKind(StrEnum):
    """Typed failure reasons. ``TRANSIENT`` ones are retried on resume; the rest are final."""

    corrupt_media = "corrupt_media"
    unsupported_media = "unsupported_media"
    no_audio = "no_audio"
    no_video = "no_video"
    no_speech = "no_speech"
    no_face = "no_face"
    model_unavailable = "model_unavailable"
    malformed_output = "malformed_output"
    refusal = "refusal"
    timeout = "timeout"
    rate_limited = "rate_limited"
    provider_error = "provider_error"
    budget_exceeded = "budget_exceeded"
    invalid_input = "invalid_input"
    internal = "internal"
    # Added within schema v1: the column stores the enum as a string, so older readers and
    # shards are unaffected; older emoforge versions just cannot parse these two values.
    partial_media = "partial_media"
    outside_input_root = "outside_input_root"


TRANSIENT_ERRORS = frozenset(
    {ErrorKind.timeout, ErrorKind.rate_limited, ErrorKind.provider_error, ErrorKind.budget_exceeded}
)


class Failure(Record):
    """Why a stage did not produce its output. Never stored in label fields."""

    stage: str = Field(description="Pipeline stage that failed (probe, segment, asr, annotate, ...).")
    kind: ErrorKind = Field(description="Typed reason; transient kinds are retried on resume.")
    message: str = Field(description="Human-readable detail; never contains secrets.")

    @field_validator("message")
    @classmethod
    def _no_secrets(cls, value: str) -> str:
        # Every stored failure passes here, whichever stage or provider text it came from.
        return scrub(value)

    @property
    def transient(self) -> bool:
        return self.kind in TRANSIENT_ERRORS


class Provenance(Record):
    """What produced a record: answers 'where did this row come from?'."""

    stage: str = Field(description="Stage name that produced the record.")
    model: str | None = Field(default=None, description="Model id or path, if a model was used.")
    prompt_version: str | None = Field(default=None, description="Prompt/instruction version used.")
    config_hash: str = Field(description="sha256 prefix of the resolved pipeline config.")
    emoforge_version: str = Field(description="emoforge package version.")
    created_at: datetime = Field(description="UTC time the record was produced.")


def utcnow() -> datetime:
    return datetime.now(UTC)


# --------------------------------------------------------------------------- media


class StreamInfo(Record):
    kind: Literal["audio", "video"] = Field(description="Stream type.")
    codec: str | None = Field(default=None, description="Codec name as reported by the demuxer.")
    duration_s: float | None = Field(default=None, description="Stream duration in seconds.")
    sample_rate: int | None = Field(default=None, description="Audio sample rate (Hz).")
    channels: int | None = Field(default=None, description="Audio channel count.")
    fps: float | None = Field(default=None, description="Average video frame rate.")
    width: int | None = Field(default=None, description="Video width in pixels (before rotation).")
    height: int | None = Field(default=None, description="Video height in pixels (before rotation).")
    rotation: int = Field(default=0, description="Display rotation in degrees (0/90/180/270).")


_SLUG = re.compile(r"[^a-z0-9]+")


def recording_id_for(path: str | Path, sha256: str) -> str:
    """Readable, content-addressed id: the file stem slug plus a hash prefix.

    The hash makes the id stable when the file moves and new when its bytes change.
    """
    stem = _SLUG.sub("-", Path(str(path)).stem.lower()).strip("-")[:40] or "rec"
    return f"{stem}-{sha256[:10]}"


def file_sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    """sha256 of a regular file's bytes.

    Raises:
        OSError: unreadable, or not a regular file: hashing ``/dev/zero`` or a FIFO would never
            end, so devices, pipes and sockets are refused before the first read.
    """
    # stat before open: opening a FIFO with no writer blocks forever.
    if not stat.S_ISREG(os.stat(path).st_mode):
        raise OSError(errno.EINVAL, "not a regular file", str(path))
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


class Terms(Record):
    """Under what terms a clip may be used: its licence, the consent of the people in it, whom to
    credit and where it came from. Added in schema v2; older rows read as unknown."""

    licence: str | None = Field(default=None, description="SPDX id (CC-BY-4.0) or free text; null: unknown.")
    consent: Consent = Field(default="unknown", description="publish, research, none or unknown.")
    attribution: str | None = Field(default=None, description="Who must be credited, as the licence asks.")
    source_url: str | None = Field(default=None, description="Where the media can be obtained legitimately.")


class Recording(Record):
    """A media file: where it is, what it holds, and its content hash."""

    id: str = Field(description="`{stem}-{sha256[:10]}`; stable across moves, new on content change.")
    uri: str = Field(description="Path or fsspec URL of the media file.")
    sha256: str = Field(description="sha256 of the file bytes.")
    size_bytes: int = Field(description="File size in bytes.")
    duration_s: float | None = Field(default=None, description="Container duration in seconds.")
    has_audio: bool = Field(default=False, description="At least one decodable audio stream.")
    has_video: bool = Field(default=False, description="At least one decodable video stream.")
    streams: list[StreamInfo] = Field(default_factory=list, description="Streams found by probing.")
    source: str | None = Field(default=None, description="Source/collection name (for grouped splits).")
    speaker_hint: str | None = Field(default=None, description="Speaker id given by the input manifest.")
    terms: Terms = Field(default_factory=Terms, description="Licence, consent, attribution and source of the media.")
    status: Status = Field(default=Status.ok, description="ok, or failed when probing failed.")
    failure: Failure | None = Field(default=None, description="Why probing failed.")


class FileHash(Record):
    """A local file's sha256 and the size/mtime it was computed at (valid while both match)."""

    sha256: str = Field(description="Hex sha256 of the file's bytes.")
    size_bytes: int = Field(description="File size when hashed.")
    mtime_ns: int = Field(description="Modification time (ns) when hashed.")

    def valid_for(self, path: str | Path) -> bool:
        try:
            st = os.stat(path)
        except OSError:
            return False
        return st.st_size == self.size_bytes and st.st_mtime_ns == self.mtime_ns


class MediaInput(Record):
    """One input to annotate: a media path plus optional grouping metadata from a manifest."""

    uri: str = Field(description="Media path or URL.")
    source: str | None = Field(default=None, description="Source/collection (splits group by it).")
    speaker: str | None = Field(default=None, description="Speaker id (splits group by it).")
    terms: Terms = Field(
        default_factory=Terms, description="Terms from the manifest, the folder's terms file or the config."
    )
    known_hash: FileHash | None = Field(
        default=None, description="Content hash the planner already computed; probing reuses it if still valid."
    )
    rel_path: str | None = Field(
        default=None,
        description="POSIX path relative to the input root: what a release may publish (never the absolute "
        "path). None for URLs.",
    )
    refused: Failure | None = Field(
        default=None,
        description="Why the input is refused unread (outside the input root); it becomes a failure row.",
    )


# --------------------------------------------------------------------------- segments


class Instruction(Record):
    """The task paired with a segment: versioned so a row says which prompt asked it."""

    version: str = Field(description="Instruction template version, e.g. 'emo-cot-v1'.")
    text: str = Field(description="Rendered instruction text given to annotators.")


class Segment(Record):
    """A time span of one recording, in recording time (seconds)."""

    id: str = Field(description="`{recording_id}-{index:05d}`.")
    recording_id: str = Field(description="Parent recording id.")
    index: int = Field(ge=0, description="0-based position of the segment in the recording.")
    start_s: float = Field(ge=0, description="Start time in recording seconds.")
    end_s: float = Field(ge=0, description="End time in recording seconds (exclusive).")
    kind: Literal["speech", "visual", "full"] = Field(
        description="speech: a voice-activity turn; visual: no speech; full: the whole file."
    )
    shot_index: int | None = Field(default=None, description="Index of the shot containing it.")
    speaker: str | None = Field(default=None, description="Dominant speaker label, if known.")
    overlap_s: float = Field(default=0.0, ge=0, description="Seconds of overlapped speech inside.")
    instruction: Instruction | None = Field(default=None, description="Task paired with the segment.")

    @model_validator(mode="after")
    def _ordered(self) -> Segment:
        if self.end_s <= self.start_s:
            raise ValueError(f"segment {self.id}: end_s {self.end_s} <= start_s {self.start_s}")
        return self

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s


def segment_id_for(recording_id: str, index: int) -> str:
    return f"{recording_id}-{index:05d}"


# --------------------------------------------------------------------------- features


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


# --------------------------------------------------------------------------- annotation

Modality = Literal["face", "voice", "text", "visual", "context"]


class Cue(Record):
    """One piece of evidence an annotator cites."""

    modality: Modality = Field(description="Which modality the cue comes from.")
    cue: str = Field(description="What was observed, e.g. 'AU12 lip-corner pull'.")
    start_s: float | None = Field(default=None, description="Where (recording seconds), if cited.")
    end_s: float | None = Field(default=None, description="End of the cited span.")
    feature: str | None = Field(default=None, description="Feature key the cue refers to (AU12, f0_mean_hz).")
    value: float | None = Field(default=None, description="Feature value the annotator cited.")


class Usage(Record):
    input_tokens: int = Field(default=0, description="Prompt tokens.")
    output_tokens: int = Field(default=0, description="Completion tokens.")
    cost_usd: float = Field(default=0.0, description="Cost from the configured price table.")
    latency_s: float = Field(default=0.0, description="Wall time of the call(s).")
    calls: int = Field(default=0, description="Provider calls made (0 when cached).")
    cached: bool = Field(default=False, description="Served from the response cache.")
    attempts: int = Field(default=0, description="Attempts including re-asks and retries.")


class DomainCheck(Record):
    """How far a trained recognizer's input was from its training data (agents/recognizers/domain.py)."""

    distance: float = Field(ge=0, description="Mahalanobis distance in the training data's main subspace (~1 there).")
    residual: float = Field(ge=0, description="Energy outside that subspace over the training mean (~1 there).")
    trust: float = Field(ge=0, le=1, description="Weight of the model's own probabilities against its output prior.")
    min_trust: float = Field(ge=0, le=1, description="Trust below which an input is off-domain.")
    off_domain: bool = Field(description="trust < min_trust: unlike anything the model was trained on.")
    reference: str = Field(description="The training data the distance is measured against.")


class Annotation(Record):
    """One annotator's answer for one segment: {labels, rationale steps, evidence}."""

    id: str = Field(description="`{segment_id}-{agent}`.")
    segment_id: str = Field(description="Parent segment id.")
    agent: str = Field(description="Agent name from the config.")
    backend: str = Field(description="face_cues, voice_cues, text_cues, openai, gemini, ...")
    status: Status = Field(default=Status.ok, description="ok, or failed (then no labels).")
    failure: Failure | None = Field(default=None, description="Why the agent produced no answer.")
    labels: list[str] = Field(default_factory=list, description="Normalised labels (multi-label set).")
    primary_label: str | None = Field(default=None, description="Most prominent normalised label.")
    raw_label: str | None = Field(default=None, description="Label as the model wrote it.")
    label_scores: dict[str, float] = Field(
        default_factory=dict, description="Agent's distribution over the taxonomy, if given."
    )
    confidence: float | None = Field(default=None, ge=0, le=1, description="Agent confidence.")
    intensity: float | None = Field(default=None, ge=0, le=1, description="Emotion intensity 0..1.")
    valence: float | None = Field(default=None, ge=-1, le=1, description="Valence -1..1.")
    arousal: float | None = Field(default=None, ge=-1, le=1, description="Arousal -1..1.")
    rationale: list[str] = Field(
        default_factory=list, description="Normalised steps; each 'Step k: ...', last states the label."
    )
    raw_rationale: str | None = Field(default=None, description="Reasoning as returned.")
    evidence: list[Cue] = Field(default_factory=list, description="Cited cues per modality.")
    modalities_seen: list[str] = Field(default_factory=list, description="Modalities given to the agent.")
    usage: Usage = Field(default_factory=Usage, description="Tokens, cost, latency, cache use.")
    domain: DomainCheck | None = Field(
        default=None, description="Trained recognizers: distance of the input to their training data."
    )
    provenance: Provenance = Field(description="Model, prompt version, config hash.")

    @model_validator(mode="after")
    def _failed_has_no_label(self) -> Annotation:
        if self.status != Status.ok and (self.labels or self.primary_label):
            raise ValueError(f"annotation {self.id}: a failed annotation must not carry labels")
        if self.status != Status.ok and self.failure is None:
            raise ValueError(f"annotation {self.id}: status {self.status} needs a failure")
        return self


class Verdict(Record):
    """The judge's scores for one annotation."""

    id: str = Field(description="`{annotation_id}-{judge}`.")
    annotation_id: str = Field(description="Annotation judged.")
    judge: str = Field(description="Judge name.")
    status: Status = Field(default=Status.ok, description="failed: unparsable/failed judgement (scores 0).")
    failure: Failure | None = Field(default=None, description="Why judging failed.")
    s_rec: float = Field(ge=0, le=1, description="Recognition score.")
    s_reason: float = Field(ge=0, le=1, description="Reasoning soundness score.")
    s_cot: float = Field(ge=0, le=1, description="Multimodal chain-of-thought completeness.")
    s_final: float = Field(ge=0, le=1, description="a*s_rec + b*s_reason + c*s_cot.")
    weights: list[float] = Field(description="[a, b, c] used for s_final.")
    task: str = Field(default="default", description="Task whose weights were used.")
    notes: list[str] = Field(default_factory=list, description="Why points were lost.")
    provenance: Provenance = Field(description="Judge model and config hash.")
    # Added within schema v1 (nullable): shards written before it load with None.
    usage: Usage | None = Field(
        default=None,
        description="What this judgement spent: the LLM judge's calls (a cached one: calls 0, cached) and the "
        "faithfulness re-asks of paid annotators; null for the offline rules judge and rows written before it.",
    )


class LabelQuality(Record):
    """How likely a segment's consensus label is right, estimated from its whole jury.

    CROWDLAB (Goh, Tkachenko, Mueller 2022, arXiv:2210.06812; cleanlab's
    ``get_label_quality_multiannotator``), reimplemented in ``emoforge/quality/label_quality.py``:
    the jury's consensus distribution and every vote, each vote weighted by its annotator's
    estimated reliability (and the judge's S_final), give a posterior over the labels; the score
    is that posterior's probability of the consensus label. Review the lowest scores first.
    """

    score: float = Field(
        ge=0, le=1, description="Estimated probability that the consensus primary label is right (low: review first)."
    )
    method: str = Field(description="Method and version that computed the score, e.g. 'crowdlab-v1'.")
    scope: Literal["segment", "corpus"] = Field(
        description="segment: annotator reliabilities at their prior (phase 5, aggregate); corpus: reliabilities "
        "fitted across the corpus by `emoforge aggregate`."
    )
    fitted_rows: int | None = Field(
        default=None, description="Rows the annotator reliabilities were fitted on (corpus scope)."
    )


class Consensus(Record):
    """The aggregated label of a segment, with how much to trust it."""

    segment_id: str = Field(description="Parent segment id.")
    method: str = Field(description="Aggregator name (majority, weighted, dawid_skene, ...).")
    primary_label: str | None = Field(default=None, description="Aggregated label; null if no votes.")
    labels: list[str] = Field(default_factory=list, description="Aggregated multi-label set.")
    distribution: dict[str, float] = Field(default_factory=dict, description="Label -> probability.")
    confidence: float = Field(ge=0, le=1, description="Probability of the primary label.")
    entropy: float = Field(ge=0, description="Entropy of the distribution (bits).")
    agreement: float | None = Field(default=None, description="Share of valid votes for the primary label.")
    intensity: float | None = Field(default=None, description="Aggregated intensity 0..1.")
    valence: float | None = Field(default=None, description="Aggregated valence -1..1.")
    arousal: float | None = Field(default=None, description="Aggregated arousal -1..1.")
    n_annotations: int = Field(description="Annotations considered.")
    n_valid: int = Field(description="Annotations with status ok.")
    needs_review: bool = Field(description="Flagged for human review.")
    review_reasons: list[str] = Field(default_factory=list, description="Why it was flagged.")
    provenance: Provenance = Field(description="Aggregator and config hash.")
    # Added within schema v1 (nullable): shards written before it load with None, and older
    # emoforge versions ignore the extra struct field when they read newer shards.
    label_quality: LabelQuality | None = Field(
        default=None,
        description="Label-quality score of the consensus (CROWDLAB); the review queue is ordered by it. "
        "Null in shards written before it existed.",
    )


class JuryDecision(Record):
    """What the jury of one segment did and spent (phase 3, annotate; ``agents/adaptive.py``).

    The full jury asks every agent; the adaptive one asks, round by round, the vote its plan
    (``agents/policy.py``) buys next, and stops when the pooled consensus is decisive (no vote
    left is worth its price: ``agents.adaptive.objective``), when every agent has answered,
    or when the corpus budget or the segment's cap is spent.
    """

    policy: Literal["full", "adaptive"] = Field(description="agents.policy of the run that asked the jury.")
    stop: Literal["full_jury", "decisive", "exhausted", "budget", "segment_cap"] = Field(
        description="Why the jury stopped: full_jury (policy full: everyone asked), decisive (confident, and the "
        "plan buys no more votes: none left is worth its price under agents.adaptive.objective), exhausted "
        "(every agent asked), budget (corpus budget spent), segment_cap (the segment's cap reached)."
    )
    route: Literal["label", "review"] = Field(
        description="label: the consensus labels the segment; review: sent to human review (stopped by the "
        "budget or the cap while the consensus was not decisive)."
    )
    rounds: int = Field(ge=0, description="Rounds asked (the free offline agents are one round, each paid agent one).")
    asked: list[str] = Field(default_factory=list, description="Agents asked, in the order asked.")
    skipped: list[str] = Field(default_factory=list, description="Enabled agents the policy did not ask.")
    confidence: float | None = Field(
        default=None, ge=0, le=1, description="Pooled probability of the top label when the jury stopped."
    )
    calls: int = Field(default=0, ge=0, description="Provider calls made for this segment (0 when cached).")
    calls_saved: int = Field(default=0, ge=0, description="Paid calls not made: one per skipped paid agent.")
    cost_usd: float = Field(default=0.0, ge=0, description="What the segment's annotators cost.")
    saved_usd: float = Field(default=0.0, ge=0, description="Estimated cost of the skipped paid agents.")
    tokens: dict[str, int] = Field(
        default_factory=dict,
        description="Billed tokens by part: input text, image, audio and video (split by the prompt's parts "
        "at the rates of agents/costs.py, scaled to the billed input), and output.",
    )


class HumanLabel(Record):
    """A human reviewer's verification of a segment (Label Studio round trip)."""

    reviewer: str = Field(description="Reviewer id or e-mail.")
    label: str | None = Field(default=None, description="Label chosen by the reviewer.")
    labels: list[str] = Field(default_factory=list, description="Multi-label choice.")
    intensity: float | None = Field(default=None, description="Reviewer intensity 0..1.")
    valence: float | None = Field(default=None, description="Reviewer valence -1..1.")
    comment: str | None = Field(default=None, description="Free-text note.")
    reviewed_at: datetime = Field(description="When the review was submitted.")
    source: str = Field(description="Where it came from (labelstudio export file, task id).")


# --------------------------------------------------------------------------- shard row


class RecordingRef(Record):
    id: str = Field(description="Recording id.")
    uri: str = Field(description="Media path or URL.")
    sha256: str = Field(description="Media content hash.")
    duration_s: float | None = Field(default=None, description="Recording duration.")
    source: str | None = Field(default=None, description="Source/collection name.")
    speaker: str | None = Field(default=None, description="Speaker id from the input manifest.")
    segment_count: int | None = Field(
        default=None, description="Segments the recording was cut into (lets resume skip it whole)."
    )
    terms: Terms = Field(
        default_factory=Terms,
        description="Licence, consent, attribution and source of the media (schema v2; v1 rows read as unknown).",
    )


class SegmentRow(Record):
    """One shard row: a segment with everything produced for it, or a failure."""

    schema_version: int = Field(default=SCHEMA_VERSION, description="Row layout version.")
    row_id: str = Field(description="Segment id, or `{recording_id}-recording` for a recording failure.")
    run_id: str = Field(description="Run that wrote the row.")
    status: Status = Field(description="ok, or failed with a failure.")
    failure: Failure | None = Field(default=None, description="First fatal failure, if any.")
    recording: RecordingRef = Field(description="Parent recording.")
    segment: Segment | None = Field(default=None, description="Null only for recording failures.")
    features: Features | None = Field(default=None, description="Extracted features.")
    annotations: list[Annotation] = Field(default_factory=list, description="One per agent.")
    verdicts: list[Verdict] = Field(default_factory=list, description="One per annotation judged.")
    consensus: Consensus | None = Field(default=None, description="Aggregated label.")
    # Added within schema v1 (nullable): shards written before it load with None.
    jury: JuryDecision | None = Field(
        default=None, description="What the jury did and spent (agents.policy); null in shards written before it."
    )
    human: list[HumanLabel] = Field(default_factory=list, description="Human verifications.")
    config_hash: str = Field(description="Resolved-config hash of the run that wrote the row.")
    written_at: datetime = Field(default_factory=utcnow, description="UTC write time.")

    @model_validator(mode="after")
    def _failure_consistent(self) -> SegmentRow:
        if self.status == Status.failed and self.failure is None:
            raise ValueError(f"row {self.row_id}: failed rows need a failure")
        if self.status == Status.ok and self.segment is None:
            raise ValueError(f"row {self.row_id}: ok rows need a segment")
        return self


def recording_failure_row_id(recording_id: str) -> str:
    return f"{recording_id}-recording"


class RunContext(Record):
    """Handed to every stage so records can say what produced them."""

    run_id: str = Field(description="Run id.")
    config_hash: str = Field(description="Resolved-config hash.")
    emoforge_version: str = Field(description="Package version.")

    def provenance(self, stage: str, model: str | None = None, prompt_version: str | None = None) -> Provenance:
        return Provenance(
            stage=stage,
            model=model,
            prompt_version=prompt_version,
            config_hash=self.config_hash,
            emoforge_version=self.emoforge_version,
            created_at=utcnow(),
        )
