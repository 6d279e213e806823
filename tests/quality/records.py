"""Small real-shaped records for judge and consensus tests (no models needed)."""

from __future__ import annotations

from emoforge.storage.records import (
    Annotation,
    AUFrame,
    Cue,
    ErrorKind,
    FaceObservation,
    Failure,
    Features,
    Prosody,
    RunContext,
    Segment,
    Status,
    Transcript,
)

CTX = RunContext(run_id="test-run", config_hash="0123456789abcdef", emoforge_version="0.0.0")
SEGMENT = Segment(
    id="clip-0123456789-00000", recording_id="clip-0123456789", index=0, start_s=0.0, end_s=4.0, kind="speech"
)
TRANSCRIPT = "I can not believe it. This is wonderful news!"


def smiling_features(with_voice: bool = True, with_text: bool = True) -> Features:
    """A smiling face (AU6 + AU12 strong, brows relaxed), lively voice, happy words."""
    frames = [
        AUFrame(t_s=t, values={"AU06": 0.6 * k, "AU12": 0.85 * k, "AU04": 0.02, "AU15": 0.03, "AU01": 0.05})
        for t, k in [(0.5, 0.2), (1.5, 1.0), (2.5, 0.8), (3.5, 0.3)]
    ]
    face = FaceObservation(
        frames_sampled=8,
        frames_with_face=8,
        faces_max=1,
        au_backend="landmark",
        au_frames=frames,
        au_peak={
            "AU06": 0.6,
            "AU12": 0.85,
            "AU04": 0.02,
            "AU15": 0.03,
            "AU01": 0.05,
            "AU02": 0.04,
            "AU05": 0.05,
            "AU26": 0.1,
        },
        au_mean={"AU06": 0.35, "AU12": 0.5, "AU04": 0.02, "AU15": 0.03, "AU01": 0.05},
    )
    prosody = (
        Prosody(
            f0_mean_hz=210.0,
            f0_sd_hz=42.0,
            f0_slope_hz_s=12.0,
            intensity_mean_db=66.0,
            voiced_fraction=0.6,
            speech_rate_wps=2.6,
            pause_count=1,
        )
        if with_voice
        else None
    )
    transcript = Transcript(text=TRANSCRIPT, language="en") if with_text else None
    return Features(segment_id=SEGMENT.id, face=face, prosody=prosody, transcript=transcript)


GOOD_STEPS = [
    "Step 1: The face shows a clear smile (AU12) with raised cheeks (AU6).",
    "Step 2: The voice is lively: the pitch is varied and animated, rising pitch at the end.",
    'Step 3: The speaker says "this is wonderful news".',
    "Step 4: Therefore the emotion is happy.",
]
GOOD_CUES = [
    Cue(modality="face", cue="AU12 lip-corner pull", start_s=1.0, end_s=2.0, feature="AU12", value=0.8),
    Cue(modality="voice", cue="varied pitch", feature="f0_sd_hz", value=40.0),
    Cue(modality="text", cue='"wonderful news"', start_s=2.5, end_s=3.5),
]


def annotation(
    agent: str,
    labels: list[str],
    steps: list[str] | None = None,
    cues: list[Cue] | None = None,
    valence: float | None = None,
    modalities: list[str] | None = None,
) -> Annotation:
    return Annotation(
        id=f"{SEGMENT.id}-{agent}",
        segment_id=SEGMENT.id,
        agent=agent,
        backend="openai",
        labels=labels,
        primary_label=labels[0],
        rationale=GOOD_STEPS if steps is None else steps,
        evidence=GOOD_CUES if cues is None else cues,
        valence=valence,
        confidence=0.8,
        intensity=0.6,
        arousal=0.4,
        modalities_seen=modalities or ["face", "voice", "text"],
        provenance=CTX.provenance(stage="annotate", model="test"),
    )


def failed(agent: str) -> Annotation:
    return Annotation(
        id=f"{SEGMENT.id}-{agent}",
        segment_id=SEGMENT.id,
        agent=agent,
        backend="openai",
        status=Status.failed,
        failure=Failure(stage="annotate", kind=ErrorKind.timeout, message="timed out"),
        provenance=CTX.provenance(stage="annotate", model="test"),
    )
