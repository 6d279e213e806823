"""Offline cue agents: labels from real features, evidence citing values, typed failures."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from emoforge.agents.cues.face import PROTOTYPES, FaceCueAnnotator
from emoforge.agents.cues.text import TextCueAnnotator
from emoforge.agents.cues.voice import VoiceCueAnnotator
from emoforge.agents.labels import SentenceEmbedder
from emoforge.configs.agents import AgentConfig, TaxonomyConfig
from emoforge.storage.records import (
    ErrorKind,
    FaceObservation,
    Features,
    Prosody,
    RunContext,
    Status,
    Transcript,
    Word,
)
from tests.agents.conftest import make_features, make_segment
from tests.conftest import espeak

TAXONOMY = TaxonomyConfig()


def face_agent(ctx: RunContext) -> FaceCueAnnotator:
    return FaceCueAnnotator(AgentConfig(name="face", backend="face_cues"), ctx, TAXONOMY)


@pytest.mark.parametrize("emotion", sorted(PROTOTYPES))
def test_face_prototypes_recover_their_emotion(ctx: RunContext, emotion: str) -> None:
    # the emotion's own AUs active at 0.6, every other AU at 0.05 (all 13 AUs measured)
    all_aus = {au for aus in PROTOTYPES.values() for au in aus}
    au = {a: (0.6 if a in PROTOTYPES[emotion] else 0.05) for a in all_aus}
    seg = make_segment()
    ann = face_agent(ctx).annotate(seg, make_features(seg, au_mean=au))
    # fear's AUs are a superset of surprise's except AU4/AU7/AU20: both score high; the
    # prototype with the larger mean must win, which is the intended one by construction
    assert ann.status == Status.ok and ann.primary_label == emotion
    assert ann.confidence is not None and ann.confidence <= FaceCueAnnotator.ceiling
    cited = {c.feature: c.value for c in ann.evidence}
    assert cited == {a: 0.6 for a in PROTOTYPES[emotion]}
    assert ann.rationale[-1].startswith(f"Step {len(ann.rationale)}: Label {emotion}")


def test_face_neutral_and_calibration(ctx: RunContext) -> None:
    seg = make_segment()
    quiet = face_agent(ctx).annotate(seg, make_features(seg, au_mean={"AU12": 0.05, "AU4": 0.08, "AU1": 0.02}))
    assert quiet.primary_label == "neutral" and quiet.intensity == 0.0
    # half the frames without a face and only landmark AUs: confidence drops accordingly
    feats = make_features(seg, au_mean={"AU6": 0.6, "AU12": 0.6})
    full = face_agent(ctx).annotate(seg, feats)
    assert feats.face is not None
    half = feats.model_copy(update={"face": feats.face.model_copy(update={"frames_with_face": 3})})
    halved = face_agent(ctx).annotate(seg, half)
    assert full.confidence is not None and halved.confidence is not None
    assert halved.confidence == pytest.approx(full.confidence / 2, abs=0.002)
    # the cited peak time is the frame where the AU peaked
    assert {c.start_s for c in full.evidence} == {seg.start_s + 1.5}


def test_face_missing_is_typed_failure_not_a_label(ctx: RunContext) -> None:
    seg = make_segment()
    no_video = face_agent(ctx).annotate(seg, make_features(seg, face=False))
    assert no_video.failure is not None and no_video.failure.kind == ErrorKind.no_face
    assert no_video.labels == [] and no_video.primary_label is None
    empty = Features(segment_id=seg.id, face=FaceObservation(frames_sampled=10, frames_with_face=0))
    assert face_agent(ctx).annotate(seg, empty).failure.kind == ErrorKind.no_face
    no_aus = Features(segment_id=seg.id, face=FaceObservation(frames_sampled=4, frames_with_face=4))
    assert face_agent(ctx).annotate(seg, no_aus).failure.kind == ErrorKind.invalid_input


def voice_agent(ctx: RunContext) -> VoiceCueAnnotator:
    return VoiceCueAnnotator(AgentConfig(name="voice", backend="voice_cues"), ctx, TAXONOMY)


def _prosody(wav: Path, text: str) -> Prosody:
    import soundfile as sf

    from emoforge.configs.preprocess import ProsodyConfig
    from emoforge.preprocess.prosody import ProsodyAnalyzer

    audio, sr = sf.read(str(wav), dtype="float32")
    if audio.ndim > 1:
        audio = audio.mean(axis=1)
    words = [Word(text=w, start_s=0.0, end_s=0.0) for w in text.split()]
    return ProsodyAnalyzer(ProsodyConfig()).analyze(np.asarray(audio), int(sr), 0.0, words)


def test_voice_cues_on_real_speech_cite_the_measured_values(ctx: RunContext, media_dir: Path) -> None:
    text = "And so my fellow Americans, ask not what your country can do for you"
    prosody = _prosody(media_dir / "jfk.flac", text)
    seg = make_segment(end_s=11.0)
    ann = voice_agent(ctx).annotate(seg, Features(segment_id=seg.id, prosody=prosody))
    assert ann.status == Status.ok and ann.valence is None  # prosody does not give valence
    assert ann.confidence is not None and 0 < ann.confidence <= 0.41
    cited = {c.feature: c.value for c in ann.evidence}
    assert cited["f0_mean_hz"] == pytest.approx(prosody.f0_mean_hz)
    assert prosody.f0_sd_hz is not None and prosody.f0_mean_hz is not None
    assert cited["f0_cv"] == pytest.approx(prosody.f0_sd_hz / prosody.f0_mean_hz, rel=1e-3)
    assert f"f0_cv={cited['f0_cv']:.2f}" in " ".join(ann.rationale)


def test_voice_arousal_orders_slow_flat_and_fast_speech(ctx: RunContext, generated_dir: Path) -> None:
    text = "I told you already, we are leaving right now, get in the car"
    slow = _prosody(espeak(text, generated_dir / "slow.wav", speed=90, pitch=20), text)
    fast = _prosody(espeak(text, generated_dir / "fast.wav", speed=260, pitch=80), text)
    assert slow.speech_rate_wps is not None and fast.speech_rate_wps is not None
    assert fast.speech_rate_wps > slow.speech_rate_wps * 1.8
    seg = make_segment(end_s=6.0)
    a_slow = voice_agent(ctx).annotate(seg, Features(segment_id=seg.id, prosody=slow))
    a_fast = voice_agent(ctx).annotate(seg, Features(segment_id=seg.id, prosody=fast))
    assert a_slow.arousal is not None and a_fast.arousal is not None
    assert a_fast.arousal > a_slow.arousal + 0.2
    # espeak's very low voice breaks the pitch tracker and its digital silence inflates the
    # intensity SD: the agent must say it ignored those values instead of reading emotion in
    assert "Ignored as implausible" in " ".join(a_slow.rationale)


def test_voice_missing_is_no_speech(ctx: RunContext) -> None:
    seg = make_segment()
    for prosody in (None, Prosody(voiced_fraction=0.0)):
        ann = voice_agent(ctx).annotate(seg, Features(segment_id=seg.id, prosody=prosody))
        assert ann.failure is not None and ann.failure.kind == ErrorKind.no_speech and not ann.labels


@pytest.fixture(scope="module")
def text_agent(ctx: RunContext, embedder: SentenceEmbedder) -> TextCueAnnotator:
    return TextCueAnnotator(AgentConfig(name="text", backend="text_cues"), ctx, TAXONOMY, embedder)


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("I'm so scared, please help me, something is in the house.", "fearful"),
        ("I hate you, get out of my room right now!", "angry"),
        ("I miss my mother so much since she died.", "sad"),
        ("This is wonderful news, I love it!", "happy"),
        ("The train leaves at nine from platform two.", "neutral"),
    ],
)
def test_text_cues_label_clear_sentences(text_agent: TextCueAnnotator, text: str, label: str) -> None:
    seg = make_segment()
    ann = text_agent.annotate(seg, Features(segment_id=seg.id, transcript=Transcript(text=text, language="en")))
    assert ann.primary_label == label
    assert ann.confidence is not None and ann.confidence <= 0.5


def test_text_cues_on_mer_translations_are_humble(
    text_agent: TextCueAnnotator, mer_labels: list[dict[str, str]]
) -> None:
    """The angry MER clip reads angry; ambiguous lines get low confidence, never the ceiling."""
    results = {}
    for i, row in enumerate(mer_labels):
        seg = make_segment(i)
        feats = Features(segment_id=seg.id, transcript=Transcript(text=row["transcript_en"], language="en"))
        results[row["emotion"]] = text_agent.annotate(seg, feats)
    assert results["angry"].primary_label == "angry"
    assert results["angry"].valence is not None and results["angry"].valence < 0
    for ann in results.values():
        assert ann.confidence is not None and ann.confidence < 0.35  # real speech: weak text evidence


def test_text_cues_respect_unreliable_and_foreign_transcripts(text_agent: TextCueAnnotator) -> None:
    seg = make_segment()
    cases = {
        ErrorKind.invalid_input: [
            make_features(seg, reliable=False),
            make_features(seg, text="你们都不是好东西", language="zh"),
        ],
        ErrorKind.no_speech: [make_features(seg, text=None), make_features(seg, text="   ")],
    }
    for kind, feats_list in cases.items():
        for feats in feats_list:
            ann = text_agent.annotate(seg, feats)
            assert ann.failure is not None and ann.failure.kind == kind and ann.primary_label is None


def test_mer_labels_fixture_has_three_clips(fixtures_dir: Path) -> None:
    with open(fixtures_dir / "labels" / "mer2023_clips.csv", encoding="utf-8") as fh:
        assert len(list(csv.DictReader(fh))) == 3
