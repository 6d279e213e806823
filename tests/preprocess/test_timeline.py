"""Evidence text: the right modality facts, read across words, prosody frames and AU frames."""

from __future__ import annotations

from emoforge.preprocess.timeline import EvidenceSummarizer, co_peak, word_f0
from emoforge.storage.records import (
    AUFrame,
    FaceObservation,
    Features,
    Prosody,
    ProsodyFrame,
    Span,
    Transcript,
    Word,
)


def _features(reliable: bool = True) -> Features:
    words = [
        Word(text="I", start_s=3.0, end_s=3.1),
        Word(text="really", start_s=3.1, end_s=3.5, speaker="S1"),
        Word(text="know", start_s=3.5, end_s=3.9),
    ]
    frames = [
        ProsodyFrame(t_s=3.0 + 0.05 * i, f0_hz=260.0 if 3.1 <= 3.0 + 0.05 * i <= 3.5 else 200.0, intensity_db=60.0)
        for i in range(19)
    ]
    au = [
        AUFrame(t_s=t, values={"AU12": v, "AU6": v * 0.8, "AU4": 0.05}) for t, v in ((3.0, 0.2), (3.2, 0.9), (3.4, 0.5))
    ]
    return Features(
        segment_id="rec-00000",
        transcript=Transcript(
            text="I really know",
            language="en",
            language_probability=0.97,
            words=words,
            word_timing="asr",
            reliable=reliable,
            unreliable_reasons=[] if reliable else ["low_logprob"],
        ),
        prosody=Prosody(
            f0_mean_hz=221.0,
            f0_sd_hz=28.0,
            f0_min_hz=200.0,
            f0_max_hz=260.0,
            f0_slope_hz_s=40.0,
            intensity_mean_db=60.0,
            intensity_sd_db=2.0,
            voiced_fraction=0.8,
            pause_count=1,
            pause_total_s=0.3,
            speech_rate_wps=3.1,
            frames=frames,
        ),
        face=FaceObservation(
            frames_sampled=3,
            frames_with_face=3,
            faces_max=1,
            au_backend="landmark",
            au_mean={"AU12": 0.53, "AU6": 0.43, "AU4": 0.05},
            au_peak={"AU12": 0.9, "AU6": 0.72, "AU4": 0.05},
            au_frames=au,
            head_pose_deg={"yaw": -12.0, "pitch": 3.0, "roll": 1.0},
        ),
        overlaps=[Span(start_s=3.2, end_s=3.6)],
        peak_t_s=3.2,
    )


def test_face_evidence_names_co_peaking_aus_and_pose() -> None:
    ev = EvidenceSummarizer().summarize(_features())
    assert ev.face is not None
    assert "AU12 + AU6 peak at 3.20 s" in ev.face
    assert "AU4" not in ev.face  # below the activity threshold
    assert "face in 3/3 frames" in ev.face and "yaw -12°" in ev.face


def test_voice_evidence_reads_f0_on_words() -> None:
    ev = EvidenceSummarizer().summarize(_features())
    assert ev.voice is not None
    assert "F0 rises 60 Hz on 'really' (3.10 s)" in ev.voice
    assert "F0 mean 221 Hz" in ev.voice and "rising 40 Hz/s" in ev.voice
    assert "1 pauses (0.3 s)" in ev.voice and "overlapped speech 0.4 s" in ev.voice


def test_text_evidence_and_unreliable_asr() -> None:
    ev = EvidenceSummarizer().summarize(_features())
    assert ev.text == '"I really know" (en, p=0.97; 3 words, timing asr; speakers S1)'
    bad = EvidenceSummarizer().summarize(_features(reliable=False))
    assert bad.text is not None and "unreliable (low_logprob)" in bad.text and "really" not in bad.text
    assert bad.voice is not None and "on 'really'" not in bad.voice  # no word-level claims from bad ASR


def test_empty_modalities_say_so() -> None:
    ev = EvidenceSummarizer().summarize(
        Features(segment_id="r-00000", face=FaceObservation(frames_sampled=4), prosody=Prosody(voiced_fraction=0.0))
    )
    assert ev.face == "no face found in 4 sampled frames"
    assert ev.voice == "no voiced speech"
    assert ev.text is None


def test_helpers() -> None:
    f = _features()
    assert f.transcript is not None and f.prosody is not None and f.face is not None
    per_word = dict((w.text, hz) for w, hz in word_f0(f.transcript.words, f.prosody.frames))
    assert per_word["really"] == 260.0 and per_word["know"] < 260.0
    peak = co_peak(f.face.au_frames, ["AU12", "AU6"])
    assert peak is not None and peak.t_s == 3.2
