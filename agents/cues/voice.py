"""Voice cue agent: prosody -> arousal -> a weak guess among the basic emotions.

Prosody carries arousal well and valence poorly, so this agent reports arousal (from F0
range, F0 variability, loudness variability and speech rate, each scaled against
typical conversational values) and leaves valence empty. Emotions are scored by their
circumplex arousal's closeness to the measured one, with two classic refinements: a
rising, wide F0 contour favours surprise; loud speech with a narrow F0 range favours
anger. Its confidence ceiling is the 40.9 % voice-only human rate from CREMA-D.
"""

from __future__ import annotations

import math

from emoforge.agents.base import AnnotatorError
from emoforge.agents.cues.base import CueAnnotator, CueReading
from emoforge.agents.providers import ProviderSpec
from emoforge.configs.emotions import CIRCUMPLEX
from emoforge.storage.records import Cue, ErrorKind, Features, Prosody, Segment

# (typical conversational value, spread): a feature at value + spread adds +1 to arousal
NORMS: dict[str, tuple[float, float]] = {
    "f0_range_st": (6.0, 4.0),
    "f0_cv": (0.15, 0.08),
    "intensity_sd_db": (6.0, 3.0),
    "speech_rate_wps": (2.7, 1.0),
}

# Values outside these ranges are measurement errors, not emotion: octave jumps of the
# pitch tracker (F0 CV > 0.5, range > 2 octaves) or digital silence inside the intensity
# contour (SD of tens of dB). Such features are left out, and the rationale says so.
PLAUSIBLE: dict[str, tuple[float, float]] = {
    "f0_range_st": (0.0, 24.0),
    "f0_cv": (0.0, 0.5),
    "intensity_sd_db": (0.0, 25.0),
    "speech_rate_wps": (0.3, 8.0),
}


def _features(p: Prosody) -> dict[str, float]:
    out: dict[str, float] = {}
    if p.f0_min_hz and p.f0_max_hz and p.f0_min_hz > 0 and p.f0_max_hz > p.f0_min_hz:
        out["f0_range_st"] = 12.0 * math.log2(p.f0_max_hz / p.f0_min_hz)
    if p.f0_mean_hz and p.f0_sd_hz is not None and p.f0_mean_hz > 0:
        out["f0_cv"] = p.f0_sd_hz / p.f0_mean_hz
    if p.intensity_sd_db is not None:
        out["intensity_sd_db"] = p.intensity_sd_db
    if p.speech_rate_wps is not None and p.speech_rate_wps > 0:
        out["speech_rate_wps"] = p.speech_rate_wps
    return out


class VoiceCueAnnotator(CueAnnotator):
    backend = "voice_cues"
    ceiling = 0.41  # CREMA-D voice-only human recognition rate
    temperature = 0.15
    model_id = "prosody-arousal-rules"

    def read(self, segment: Segment, features: Features) -> CueReading:
        p = features.prosody
        if p is None or not p.voiced_fraction:
            raise AnnotatorError(ErrorKind.no_speech, "no voiced speech (prosody missing or unvoiced)")
        raw = _features(p)
        measured = {k: v for k, v in raw.items() if PLAUSIBLE[k][0] <= v <= PLAUSIBLE[k][1]}
        dropped = {k: v for k, v in raw.items() if k not in measured}
        if not measured:
            raise AnnotatorError(
                ErrorKind.invalid_input,
                f"no plausible prosody values (F0, intensity, rate): {sorted(raw) or 'none measured'}",
            )
        terms = {k: max(-1.0, min(1.0, (v - NORMS[k][0]) / NORMS[k][1])) for k, v in measured.items()}
        arousal = sum(terms.values()) / len(terms)
        scores = {e: 1.0 - abs(arousal - a) for e, (_, a) in CIRCUMPLEX.items()}
        steps = [
            f"Voiced {p.voiced_fraction:.0%} of the segment ({segment.start_s:.2f}-{segment.end_s:.2f} s).",
            "Arousal terms vs typical speech: "
            + ", ".join(f"{k}={measured[k]:.2f} -> {terms[k]:+.2f}" for k in sorted(terms))
            + f"; arousal {arousal:+.2f}.",
        ]
        if dropped:
            steps.append(
                "Ignored as implausible (measurement error): "
                + ", ".join(f"{k}={v:.2f}" for k, v in sorted(dropped.items()))
                + "."
            )
        slope = p.f0_slope_hz_s
        if slope is not None and slope > 20 and "f0_range_st" in measured and terms["f0_range_st"] > 0.5:
            scores["surprised"] += 0.15
            steps.append(f"Rising F0 ({slope:.0f} Hz/s) over a wide range favours surprise.")
        if terms.get("intensity_sd_db", 0) > 0.5 and terms.get("f0_range_st", 0) < 0:
            scores["angry"] += 0.15
            steps.append("Loudness varies strongly while the F0 range stays narrow: favours anger.")
        steps.append("Prosody alone does not tell positive from negative: valence left empty.")
        evidence = [
            Cue(
                modality="voice",
                cue=f"{k} {measured[k]:.2f} (typical {NORMS[k][0]:.2f})",
                feature=k,
                value=round(measured[k], 4),
                start_s=segment.start_s,
                end_s=segment.end_s,
            )
            for k in sorted(measured)
        ]
        for name in ("f0_mean_hz", "intensity_mean_db"):
            value = getattr(p, name)
            if value is not None:
                evidence.append(
                    Cue(
                        modality="voice",
                        cue=f"{name} {value:.1f}",
                        feature=name,
                        value=round(value, 4),
                        start_s=segment.start_s,
                        end_s=segment.end_s,
                    )
                )
        coverage = len(measured) / len(NORMS)
        return CueReading(
            scores=scores,
            reliability=coverage * min(1.0, p.voiced_fraction / 0.3),
            steps=steps,
            evidence=evidence,
            intensity=abs(arousal),
            valence=None,
            arousal=arousal,
            modalities_seen=["voice"],
        )


PROVIDER = ProviderSpec(
    name=VoiceCueAnnotator.backend,
    kind="cues",
    annotator=lambda agent, ctx, taxonomy, embedder: VoiceCueAnnotator(agent, ctx, taxonomy),
    modality="voice",
)
