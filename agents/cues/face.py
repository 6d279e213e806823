"""Face cue agent: action-unit prototypes of the basic emotions (EMFACS), no model.

Prototypes: ``EMFACS_PROTOTYPES`` in ``configs/emotions.py`` (e.g. happy AU6+AU12). An
emotion's score is the mean intensity of its measured prototype AUs (how strongly)
times the cosine between the measured AU vector and the prototype (how specifically):
the cosine is what separates nested prototypes (surprise's AUs are a subset of fear's).
Neutral scores a fixed baseline, so only clearly active prototypes beat it. Reliability
is the share of frames with a face times the measured share of the winning prototype,
lower for landmark-geometry AUs than for a trained AU model.
"""

from __future__ import annotations

import math
import re

from emoforge.agents.base import AnnotatorError
from emoforge.agents.cues.base import CueAnnotator, CueReading
from emoforge.agents.providers import ProviderSpec
from emoforge.configs.emotions import AU_NAMES, EMFACS_PROTOTYPES
from emoforge.storage.records import Cue, ErrorKind, FaceObservation, Features, Segment

# The EMFACS table lives in configs/emotions.py (the judge reads it too); the old names stay.
PROTOTYPES = EMFACS_PROTOTYPES
NEUTRAL_BASELINE = 0.2  # mean prototype intensity a face must exceed to count as expressive
BACKEND_RELIABILITY = {"pyfeat": 1.0, "landmark": 0.75, "none": 0.0}
_AU = re.compile(r"(?i)^au[_ ]?0*(\d+)")


def canonical_au(name: str) -> str | None:
    """'AU12', 'AU12_r', 'au_12' -> 'AU12'; None for anything else."""
    match = _AU.match(name.strip())
    return f"AU{int(match.group(1))}" if match else None


def _canonical(values: dict[str, float]) -> dict[str, float]:
    out: dict[str, float] = {}
    for key, value in values.items():
        au = canonical_au(key)
        if au is not None:
            out[au] = float(value)
    return out


def _peak_time(face: FaceObservation, au: str) -> float | None:
    best_t, best_v = None, float("-inf")
    for frame in face.au_frames:
        value = _canonical(frame.values).get(au)
        if value is not None and value > best_v:
            best_t, best_v = frame.t_s, value
    return best_t


class FaceCueAnnotator(CueAnnotator):
    backend = "face_cues"
    ceiling = 0.58  # CREMA-D face-only human recognition rate
    temperature = 0.08
    model_id = "au-prototypes-emfacs"

    def read(self, segment: Segment, features: Features) -> CueReading:
        face = features.face
        if face is None or face.frames_sampled == 0:
            raise AnnotatorError(ErrorKind.no_face, "no video frames were analysed for this segment")
        if face.frames_with_face == 0:
            raise AnnotatorError(ErrorKind.no_face, f"no face in {face.frames_sampled} sampled frames")
        au_mean = _canonical(face.au_mean)
        if not au_mean:
            raise AnnotatorError(
                ErrorKind.invalid_input, f"face found but no AU estimates (au_backend={face.au_backend})"
            )
        scores: dict[str, float] = {"neutral": NEUTRAL_BASELINE}
        coverage: dict[str, float] = {"neutral": 1.0}
        norm = math.sqrt(sum(v * v for v in au_mean.values())) or 1.0
        activation: dict[str, float] = {}
        match: dict[str, float] = {}
        for emotion, aus in PROTOTYPES.items():
            measured = [au_mean[a] for a in aus if a in au_mean]
            if measured:
                activation[emotion] = sum(measured) / len(measured)
                match[emotion] = sum(measured) / (norm * math.sqrt(len(measured)))
                scores[emotion] = activation[emotion] * match[emotion]
                coverage[emotion] = len(measured) / len(aus)
        ranked = sorted(scores, key=lambda k: scores[k], reverse=True)
        primary = ranked[0]
        reliability = face.face_ratio * coverage[primary] * BACKEND_RELIABILITY.get(face.au_backend, 0.5)

        steps = [
            f"Face found in {face.frames_with_face}/{face.frames_sampled} sampled frames "
            f"({face.face_ratio:.0%}); AUs from the {face.au_backend} estimator.",
        ]
        evidence: list[Cue] = []
        for emotion in ranked[:3]:
            if emotion == "neutral":
                steps.append(f"Neutral baseline score {NEUTRAL_BASELINE:.2f}.")
                continue
            parts = ", ".join(f"{a}={au_mean[a]:.2f}" for a in PROTOTYPES[emotion] if a in au_mean)
            steps.append(
                f"{emotion} prototype ({'+'.join(PROTOTYPES[emotion])}): {parts}; mean "
                f"{activation[emotion]:.2f} x pattern match {match[emotion]:.2f} = {scores[emotion]:.2f}, "
                f"{coverage[emotion]:.0%} of its AUs measured."
            )
        cited = PROTOTYPES.get(primary, ())
        for au in cited:
            if au not in au_mean:
                continue
            t = _peak_time(face, au)
            peak = _canonical(face.au_peak).get(au)
            where = f", peak {peak:.2f} at {t:.2f} s" if peak is not None and t is not None else ""
            evidence.append(
                Cue(
                    modality="face",
                    cue=f"{au} {AU_NAMES.get(au, '')} mean {au_mean[au]:.2f}{where}".strip(),
                    feature=au,
                    value=round(au_mean[au], 4),
                    start_s=t if t is not None else segment.start_s,
                    end_s=t if t is not None else segment.end_s,
                )
            )
        if primary == "neutral":
            top = max(au_mean, key=lambda a: au_mean[a])
            evidence.append(
                Cue(
                    modality="face",
                    cue=f"strongest AU {top} only {au_mean[top]:.2f}",
                    feature=top,
                    value=round(au_mean[top], 4),
                    start_s=segment.start_s,
                    end_s=segment.end_s,
                )
            )
        intensity = 0.0 if primary == "neutral" else activation[primary]
        return CueReading(
            scores=scores,
            reliability=reliability,
            steps=steps,
            evidence=evidence,
            intensity=intensity,
            modalities_seen=["face"],
        )


PROVIDER = ProviderSpec(
    name=FaceCueAnnotator.backend,
    kind="cues",
    annotator=lambda agent, ctx, taxonomy, embedder: FaceCueAnnotator(agent, ctx, taxonomy),
    modality="face",
)
