"""Voice activity against two_speakers.rttm (pyannote.metrics), overlaps, edge inputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from emoforge.configs.sampling import VadConfig
from emoforge.preprocess.media import Media
from emoforge.preprocess.sampling.vad_pyannote import PyannoteSegmentation, resolve_checkpoint
from emoforge.preprocess.sampling.vad_silero import SileroVad, to_rate
from emoforge.storage.records import Span
from tests.preprocess.sampling.conftest import load


def _reference(fixtures_dir: Path):
    from pyannote.core import Annotation, Segment

    ref = Annotation()
    for line in (fixtures_dir / "labels" / "two_speakers.rttm").read_text().splitlines():
        f = line.split()
        start = float(f[3])
        ref[Segment(start, start + float(f[4]))] = f[7]
    return ref


def _der(fixtures_dir: Path, spans: list[Span]) -> float:
    from pyannote.core import Annotation, Segment
    from pyannote.metrics.detection import DetectionErrorRate

    hyp = Annotation()
    for s in spans:
        hyp[Segment(s.start_s, s.end_s)] = "speech"
    return float(DetectionErrorRate(collar=0.0)(_reference(fixtures_dir), hyp))


def _reference_overlaps(fixtures_dir: Path) -> list[tuple[float, float]]:
    ref = _reference(fixtures_dir)
    return [(s.start, s.end) for s in ref.get_overlap()]


def test_silero_detection_error_rate(fixtures_dir: Path, two_speakers_media: Media, silero: SileroVad) -> None:
    assert two_speakers_media.audio is not None
    spans = silero.detect(two_speakers_media.audio, two_speakers_media.sample_rate)
    assert _der(fixtures_dir, spans) <= 0.05
    assert spans[0].start_s == pytest.approx(6.69, abs=0.15)  # first reference turn starts at 6.69 s


def test_pyannote_detection_error_rate(
    fixtures_dir: Path, two_speakers_media: Media, pyannote_seg: PyannoteSegmentation
) -> None:
    assert two_speakers_media.audio is not None
    spans = pyannote_seg.detect(two_speakers_media.audio, two_speakers_media.sample_rate)
    assert _der(fixtures_dir, spans) <= 0.05


def test_pyannote_finds_every_reference_overlap(
    fixtures_dir: Path, two_speakers_media: Media, pyannote_seg: PyannoteSegmentation
) -> None:
    assert two_speakers_media.audio is not None
    found = pyannote_seg.overlaps(two_speakers_media.audio, two_speakers_media.sample_rate)
    # the 30 ms overlap at 8.32 s is below min_overlap_s; the other five are 0.1-0.65 s long
    reference = [(a, b) for a, b in _reference_overlaps(fixtures_dir) if b - a >= 0.09]
    assert len(reference) == 5
    for a, b in reference:  # recall: each reference overlap is hit
        assert any(min(b, s.end_s) - max(a, s.start_s) > 0 for s in found), (a, b, found)
    for s in found:  # precision: nothing far from a reference overlap
        assert any(min(b + 0.3, s.end_s) - max(a - 0.3, s.start_s) > 0 for a, b in reference), s


def test_silero_model_variants_agree(two_speakers_media: Media) -> None:
    assert two_speakers_media.audio is not None
    audio = two_speakers_media.audio
    seq = SileroVad(VadConfig(silero_model="sequence")).detect(audio, 16000)
    onnx = SileroVad(VadConfig(silero_model="onnx")).detect(audio, 16000)
    assert seq == onnx


def test_other_sample_rates_are_resampled(fixtures_dir: Path, two_speakers_media: Media, silero: SileroVad) -> None:
    """Both backends share ``to_rate``; checked once, on the cheaper model."""
    assert two_speakers_media.audio is not None
    audio44 = to_rate(two_speakers_media.audio, 16000, 44100)
    assert len(audio44) == 30 * 44100
    assert _der(fixtures_dir, silero.detect(audio44, 44100)) <= 0.06


def test_silence_and_tones_are_not_speech(silero: SileroVad, pyannote_seg: PyannoteSegmentation) -> None:
    t = np.arange(5 * 16000) / 16000
    tone = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    silence = np.zeros(5 * 16000, np.float32)
    for audio in (tone, silence):
        assert silero.detect(audio, 16000) == []
        assert pyannote_seg.detect(audio, 16000) == []
        assert pyannote_seg.overlaps(audio, 16000) == []
    assert silero.detect(np.zeros(0, np.float32), 16000) == []


def test_generated_speech_is_found(speech_wav: Path, silero: SileroVad, pyannote_seg: PyannoteSegmentation) -> None:
    media = load(speech_wav)
    assert media.audio is not None
    voiced = np.abs(media.audio) > 0.01
    first, last = np.argmax(voiced) / 16000, (len(voiced) - np.argmax(voiced[::-1])) / 16000
    for vad in (silero, pyannote_seg):
        spans = vad.detect(media.audio, media.sample_rate)
        assert spans, type(vad).__name__
        assert spans[0].start_s == pytest.approx(first, abs=0.3)
        assert spans[-1].end_s == pytest.approx(last, abs=0.4)


def test_checkpoint_resolution(tmp_path: Path) -> None:
    assert resolve_checkpoint("package:whisperx").name == "pytorch_model.bin"
    with pytest.raises(FileNotFoundError):
        resolve_checkpoint(str(tmp_path / "missing.bin"))
