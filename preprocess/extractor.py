"""Stage 2: turn each segment into aligned multimodal evidence (one ``Features`` per segment).

Recording-level work runs once per call: denoising, overlap/diarization and ASR (all speech
segments decoded in one pass, then sliced). Segment-level work then runs per segment:
transcript slice with speakers, prosody, faces -> geometry -> AUs, key frames and the
evidence text. Each tool's failure becomes a typed ``Failure`` in ``Features.failures``
and the others still run; ``extract`` does not raise for bad input or missing models.

Tools are named by their specs (``preprocess/tool.py``). The recording-level ones, which
feed each other, are wired here by hand; every tool listed in ``preprocess/tools.py`` with
a ``build`` (key frames, then the evidence timeline, which reads all the others) runs after
them on each segment, in list order.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any, TypeVar

import numpy as np

from emoforge.configs.preprocess import PreprocessConfig
from emoforge.configs.sampling import KeyframeConfig
from emoforge.preprocess import tools
from emoforge.preprocess.asr import TOOL as ASR
from emoforge.preprocess.asr import RecordingTranscript, SpeechTranscriber
from emoforge.preprocess.aus_landmarks import TOOL as AUS
from emoforge.preprocess.aus_landmarks import LandmarkAUEstimator
from emoforge.preprocess.aus_pyfeat import PyFeatAUEstimator
from emoforge.preprocess.denoise import TOOL as DENOISE
from emoforge.preprocess.denoise import AudioCleaner
from emoforge.preprocess.faces import TOOL as FACE
from emoforge.preprocess.faces import FaceTracker
from emoforge.preprocess.geometry import FaceGeometry
from emoforge.preprocess.media import Media
from emoforge.preprocess.models import ModelUnavailable
from emoforge.preprocess.prosody import TOOL as PROSODY
from emoforge.preprocess.prosody import ProsodyAnalyzer
from emoforge.preprocess.speakers import TOOL as SPEAKERS
from emoforge.preprocess.speakers import SpeakerAnalysis, SpeakerAnalyzer, clip_spans, label_words
from emoforge.preprocess.tool import SegmentTool, ToolSettings, ToolSpec
from emoforge.storage.records import (
    AUFrame,
    ErrorKind,
    FaceObservation,
    Failure,
    Features,
    Provenance,
    RunContext,
    Segment,
    Span,
)

log = logging.getLogger(__name__)

T = TypeVar("T")
_SPEECH_KINDS = ("speech", "full")
PHASE = "preprocess"  # the phase whose tools this runs


def _kind_of(exc: Exception) -> ErrorKind:
    if isinstance(exc, ModelUnavailable | ImportError):
        return ErrorKind.model_unavailable
    if isinstance(exc, ValueError):
        return ErrorKind.invalid_input
    return ErrorKind.internal


def word_windows(speech: list[Segment]) -> dict[str, tuple[float, float]]:
    """Where each speech segment collects its words: its span widened to the middle of the gaps.

    ASR decodes merged speech, so a word can land in a pause the segment policy cut out
    (VAD trimmed it, or it sits between two turns); the nearer segment takes it instead of
    nobody. Segment times themselves stay as the segmenter set them.
    """
    ordered = sorted(speech, key=lambda s: s.start_s)
    out: dict[str, tuple[float, float]] = {}
    for i, seg in enumerate(ordered):
        lo = (ordered[i - 1].end_s + seg.start_s) / 2 if i else 0.0
        hi = (seg.end_s + ordered[i + 1].start_s) / 2 if i + 1 < len(ordered) else float("inf")
        out[seg.id] = (min(lo, seg.start_s), max(hi, seg.end_s))
    return out


class FeatureExtractor:
    """Runs every tool of the preprocess phase; models load lazily on first use and once per instance."""

    def __init__(self, config: PreprocessConfig, keyframes: KeyframeConfig, ctx: RunContext) -> None:
        self.config = config
        self.settings = ToolSettings(preprocess=config, keyframes=keyframes)
        self.ctx = ctx
        self.cleaner = AudioCleaner(config.denoise)
        self.asr = SpeechTranscriber(config.asr)
        self.speakers = SpeakerAnalyzer(config.diarization)
        self.prosody = ProsodyAnalyzer(config.prosody)
        self.faces = FaceTracker(config.face)
        self.geometry = FaceGeometry()
        self.aus: LandmarkAUEstimator | PyFeatAUEstimator | None = None
        if config.aus.backend == "landmark":
            self.aus = LandmarkAUEstimator(config.aus)
        elif config.aus.backend == "pyfeat":
            self.aus = PyFeatAUEstimator(config.aus)
        self._built: dict[str, SegmentTool] = {}

    # ------------------------------------------------------------------ helpers
    def _run(self, stage: str, failures: list[Failure], fn: Callable[[], T]) -> T | None:
        """Run one sub-stage; any error becomes a typed failure row and the others go on."""
        try:
            return fn()
        # Third-party models raise arbitrary exception types; this is the failure-as-row boundary.
        except Exception as exc:
            log.warning("%s failed: %s: %s", stage, type(exc).__name__, exc)
            failures.append(Failure(stage=stage, kind=_kind_of(exc), message=f"{type(exc).__name__}: {exc}"[:500]))
            return None

    def _prov(self, stage: str, model: str | None) -> Provenance:
        return self.ctx.provenance(stage=stage, model=model)

    def segment_tools(self) -> Iterator[tuple[ToolSpec, SegmentTool]]:
        """The listed tools the extractor runs per segment by itself, each built on first use."""
        for spec in tools.TOOLS.values():
            if spec.build is not None and spec.phase == PHASE:
                if spec.name not in self._built:
                    self._built[spec.name] = spec.build(self.settings)
                yield spec, self._built[spec.name]

    @staticmethod
    def _fill(
        spec: ToolSpec, tool: SegmentTool, media: Media, seg: Segment, features: Features
    ) -> dict[str, Any] | None:
        got = tool.fill(media, seg, features)
        if got is not None and not set(got) <= set(spec.fills):
            raise ValueError(f"tool {spec.name} filled {sorted(set(got) - set(spec.fills))}, not in its spec's fills")
        return got

    # ------------------------------------------------------------------ extract
    def extract(self, media: Media, segments: list[Segment]) -> list[Features]:
        """One ``Features`` per segment, in the order given."""
        shared: list[Failure] = []
        speech = [s for s in segments if s.kind in _SPEECH_KINDS]
        raw = media.audio if media.audio is not None and media.audio.size > 0 else None
        clean = None
        if raw is not None and speech and (self.config.prosody.enabled or self.config.asr.use_denoised):
            clean = self._run(DENOISE.name, shared, lambda: self.cleaner.clean(raw, media.sample_rate))
        speakers: SpeakerAnalysis | None = None
        if raw is not None and speech:
            speakers = self._run(SPEAKERS.name, shared, lambda: self.speakers.analyze(raw, media.sample_rate))
        rt: RecordingTranscript | None = None
        asr_failures: list[Failure] = []
        if raw is not None and speech and self.config.asr.enabled:
            audio = clean if (self.config.asr.use_denoised and clean is not None) else raw
            spans = [Span(start_s=s.start_s, end_s=s.end_s) for s in speech]
            rt = self._run(ASR.name, asr_failures, lambda: self.asr.transcribe(audio, media.sample_rate, spans))
        windows = word_windows(speech)
        return [
            self._segment(media, seg, clean, speakers, rt, shared, asr_failures, windows.get(seg.id))
            for seg in segments
        ]

    def _segment(
        self,
        media: Media,
        seg: Segment,
        clean: np.ndarray | None,
        speakers: SpeakerAnalysis | None,
        rt: RecordingTranscript | None,
        shared: list[Failure],
        asr_failures: list[Failure],
        window: tuple[float, float] | None = None,
    ) -> Features:
        failures = list(shared)
        prov: list[Provenance] = []
        is_speech = seg.kind in _SPEECH_KINDS
        update: dict[str, Any] = {}
        if clean is not None:
            prov.append(self._prov(DENOISE.name, self.cleaner.model_id))
        if is_speech and media.audio is None:
            failures.append(Failure(stage="audio", kind=ErrorKind.no_audio, message="recording has no audio"))
        if speakers is not None:
            failures.extend(speakers.failures)
            turns = clip_spans(speakers.turns, seg.start_s, seg.end_s)
            update.update(
                overlaps=clip_spans(speakers.overlaps, seg.start_s, seg.end_s),
                speaker_turns=turns,
                diarization=speakers.backend,
            )
            model = speakers.overlap_model if speakers.backend == "unavailable" else speakers.backend
            prov.append(self._prov(SPEAKERS.name, model))
        if is_speech and self.config.asr.enabled and media.audio is not None:
            failures.extend(asr_failures)
            if rt is not None:
                lo, hi = window or (seg.start_s, seg.end_s)
                tr = self.asr.slice(rt, lo, hi)
                if speakers is not None and speakers.turns:
                    tr = tr.model_copy(update={"words": label_words(tr.words, speakers.turns)})
                if not tr.words:
                    failures.append(Failure(stage=ASR.name, kind=ErrorKind.no_speech, message="no words recognised"))
                update["transcript"] = tr
                prov.append(self._prov(ASR.name, rt.model))
        if is_speech and self.config.prosody.enabled and clean is not None:
            words = update["transcript"].words if "transcript" in update else None
            audio = clean[int(seg.start_s * media.sample_rate) : int(seg.end_s * media.sample_rate)]
            pros = self._run(
                PROSODY.name, failures, lambda: self.prosody.analyze(audio, media.sample_rate, seg.start_s, words)
            )
            if pros is not None:
                update["prosody"] = pros
                prov.append(self._prov(PROSODY.name, self.prosody.model_id))
        if self.config.face.enabled:
            if media.frames is None or not len(media.frames):
                failures.append(Failure(stage=FACE.name, kind=ErrorKind.no_video, message="recording has no video"))
            else:
                face = self._run(FACE.name, failures, lambda: self._face(media, seg, failures, prov))
                if face is not None:
                    update["face"] = face
                    if face.frames_with_face == 0:
                        failures.append(Failure(stage=FACE.name, kind=ErrorKind.no_face, message="no face in segment"))
        features = Features(segment_id=seg.id, **update)
        for spec, tool in self.segment_tools():
            got = self._run(spec.name, failures, partial(self._fill, spec, tool, media, seg, features))
            if got is not None:
                update.update(got)
                features = features.model_copy(update=got)
                prov.append(self._prov(spec.name, tool.model_id))
        return Features(segment_id=seg.id, failures=failures, provenance=prov, **update)

    def _face(self, media: Media, seg: Segment, failures: list[Failure], prov: list[Provenance]) -> FaceObservation:
        frames = media.frames
        if frames is None:
            raise ValueError("no frames")
        idx = frames.indices_between(seg.start_s, seg.end_s)
        cap = self.config.face.max_frames_per_segment
        if len(idx) > cap:
            idx = idx[np.linspace(0, len(idx) - 1, cap).round().astype(int)]
        images = [(float(frames.times[i]), frames.frame(int(i))) for i in idx]
        tracked = self.faces.track(images)
        prov.append(self._prov(FACE.name, self.faces.model_id))
        found = [(f.t_s, f.landmarks) for f in tracked if f.landmarks is not None]
        obs = FaceObservation(
            frames_sampled=len(tracked),
            frames_with_face=len(found),
            faces_max=max((f.faces for f in tracked), default=0),
            landmark_model=self.faces.model_id,
        )
        if not found:
            return obs
        described = [self.geometry.describe(pts) for _, pts in found]
        geometry = {k: round(float(np.mean([d[k] for d, _ in described])), 4) for k in described[0][0]}
        pose = {k: round(float(np.mean([p[k] for _, p in described])), 2) for k in ("yaw", "pitch", "roll")}
        obs = obs.model_copy(update={"geometry": geometry, "head_pose_deg": pose})
        values = self._aus(images, [t for t, _ in found], [d for d, _ in described], failures)
        if values:
            au_frames = [AUFrame(t_s=round(t, 3), values=v) for t, v in values]
            names = sorted({k for _, v in values for k in v}, key=lambda n: int(n[2:]) if n[2:].isdigit() else 999)
            obs = obs.model_copy(
                update={
                    "au_backend": self.aus.backend if self.aus is not None else "none",
                    "au_frames": au_frames,
                    "au_mean": {n: round(float(np.mean([v.get(n, 0.0) for _, v in values])), 4) for n in names},
                    "au_peak": {n: round(float(np.max([v.get(n, 0.0) for _, v in values])), 4) for n in names},
                }
            )
            prov.append(self._prov(AUS.name, self.aus.model_id if self.aus is not None else None))
        return obs

    def _aus(
        self,
        images: list[tuple[float, np.ndarray]],
        times: list[float],
        descriptors: list[dict[str, float]],
        failures: list[Failure],
    ) -> list[tuple[float, dict[str, float]]]:
        if isinstance(self.aus, LandmarkAUEstimator):
            return list(zip(times, self.aus.estimate(descriptors), strict=True))
        if isinstance(self.aus, PyFeatAUEstimator):
            est = self.aus
            got = self._run(AUS.name, failures, lambda: est.estimate_images([img for _, img in images]))
            if got is None:
                return []
            return [(t, v) for (t, _), v in zip(images, got, strict=True) if v is not None]
        return []
