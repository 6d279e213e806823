"""Shared shape of the offline cue agents: scores over the basic emotions -> Annotation.

A cue agent implements ``read(segment, features) -> CueReading`` (it reads extracted
features only; a segment clip passed to ``annotate`` is ignored) and raises
``AnnotatorError`` (no_face, no_speech, invalid_input) when its modality is missing;
``CueAnnotator.annotate`` turns either into an Annotation. Scores over the basic
emotions are restricted to the configured taxonomy (through the synonym table), and the
valence/arousal of a reading default to the expectation of circumplex coordinates.

Confidence is calibrated against how well *people* do from the same single modality:
individual CREMA-D raters recognised the intended emotion in 40.9 % (voice only) and
58.2 % (face only) of responses, so a cue agent never claims more than that ceiling.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from emoforge.agents.base import AnnotatorError, SegmentClip
from emoforge.agents.rationale import normalise_steps
from emoforge.configs.agents import AgentConfig, TaxonomyConfig
from emoforge.configs.emotions import CIRCUMPLEX, DEFAULT_LABELS, SYNONYMS
from emoforge.storage.records import (
    Annotation,
    Cue,
    DomainCheck,
    ErrorKind,
    Features,
    RunContext,
    Segment,
    Status,
    Transcript,
    Usage,
)

# The basic emotions a cue agent scores: the default taxonomy of configs/emotions.py.
BASIC = DEFAULT_LABELS


@dataclass
class CueReading:
    """What a cue agent read from its modality, before it becomes an Annotation."""

    scores: dict[str, float]  # basic emotion -> non-negative evidence score
    reliability: float  # 0..1: how much of the evidence was there (coverage, face ratio...)
    steps: list[str]
    evidence: list[Cue]
    intensity: float | None = None
    valence: float | None = None
    arousal: float | None = None
    modalities_seen: list[str] = field(default_factory=list)
    domain: DomainCheck | None = None  # trained recognizers: how far the input is from their training data


def usable_transcript(features: Features) -> Transcript:
    """The segment's transcript if a text agent may read it; a typed AnnotatorError otherwise:
    no_speech without words, invalid_input when a hallucination guard fired."""
    t = features.transcript
    if t is None or not t.text.strip():
        raise AnnotatorError(ErrorKind.no_speech, "no transcript for this segment")
    if not t.reliable:
        raise AnnotatorError(
            ErrorKind.invalid_input,
            f"transcript flagged unreliable ({', '.join(t.unreliable_reasons) or 'no reason given'}): not used",
        )
    return t


def softmax(scores: dict[str, float], temperature: float) -> dict[str, float]:
    top = max(scores.values())
    exp = {k: math.exp((v - top) / temperature) for k, v in scores.items()}
    total = sum(exp.values())
    return {k: v / total for k, v in exp.items()}


class CueAnnotator:
    """Base for face/voice/text cue agents; subclasses set ``ceiling`` and ``temperature``."""

    backend = "cues"
    ceiling = 0.5
    temperature = 0.1
    model_id = "rules"
    version = "cues-v1"

    def __init__(self, config: AgentConfig, ctx: RunContext, taxonomy: TaxonomyConfig) -> None:
        self.config = config
        self.name = config.name
        self.ctx = ctx
        self.taxonomy = taxonomy

    def read(self, segment: Segment, features: Features) -> CueReading:
        raise NotImplementedError

    def read_clip(self, segment: Segment, features: Features, clip: SegmentClip | None) -> CueReading:
        """``read`` for agents that also take the segment's clip (the voice model); cue rules ignore it."""
        return self.read(segment, features)

    def confidence(self, dist: dict[str, float], primary: str, reading: CueReading) -> float:
        """P(primary is right): the human single-modality ceiling x own probability x evidence share.

        Rules have no training data to calibrate on, so their confidence is capped by how well
        people do from the same modality; trained recognizers override this with their
        held-out-calibrated probability."""
        return self.ceiling * dist[primary] * min(1.0, max(0.0, reading.reliability))

    def _to_taxonomy(self, scores: dict[str, float]) -> dict[str, float]:
        out: dict[str, float] = {}
        for basic, value in scores.items():
            target = basic if basic in self.taxonomy.labels else SYNONYMS.get(basic)
            if target in self.taxonomy.labels:
                out[target] = max(out.get(target, float("-inf")), value)
        return out

    def annotate(self, segment: Segment, features: Features, clip: SegmentClip | None = None) -> Annotation:
        provenance = self.ctx.provenance("annotate", self.model_id, self.version)
        base = {
            "id": f"{segment.id}-{self.name}",
            "segment_id": segment.id,
            "agent": self.name,
            "backend": self.backend,
            "provenance": provenance,
        }
        try:
            reading = self.read_clip(segment, features, clip)
            scores = self._to_taxonomy(reading.scores)
            if not scores:
                raise AnnotatorError(
                    ErrorKind.invalid_input,
                    f"taxonomy {self.taxonomy.labels} has none of the basic emotions",
                )
        except AnnotatorError as exc:
            return Annotation(**base, status=Status.failed, failure=exc.failure())
        dist = softmax(scores, self.temperature)
        primary = max(dist, key=lambda k: dist[k])
        confidence = round(self.confidence(dist, primary, reading), 3)
        valence, arousal = reading.valence, reading.arousal
        if valence is None and arousal is None:
            valence = sum(p * CIRCUMPLEX.get(k, (0.0, 0.0))[0] for k, p in dist.items())
            arousal = sum(p * CIRCUMPLEX.get(k, (0.0, 0.0))[1] for k, p in dist.items())
        steps = [*reading.steps, f"Label {primary} (p={dist[primary]:.2f}, confidence {confidence:.2f})."]
        return Annotation(
            **base,
            labels=[primary],
            primary_label=primary,
            raw_label=primary,
            label_scores={k: round(v, 4) for k, v in sorted(dist.items())},
            confidence=confidence,
            intensity=None if reading.intensity is None else round(min(1.0, max(0.0, reading.intensity)), 3),
            valence=None if valence is None else round(max(-1.0, min(1.0, valence)), 3),
            arousal=None if arousal is None else round(max(-1.0, min(1.0, arousal)), 3),
            rationale=normalise_steps(steps, primary, max_steps=8, max_chars=300),
            raw_rationale="\n".join(steps),
            evidence=reading.evidence,
            modalities_seen=reading.modalities_seen,
            usage=Usage(),
            domain=reading.domain,
        )

    def estimate(self, segment: Segment, features: Features, clip: SegmentClip | None = None) -> Usage:
        return Usage()  # offline: no calls, no tokens, no cost

    def close(self) -> None:
        return None
