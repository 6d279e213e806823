"""Inputs that cannot hang or exhaust memory: special files, size/duration/pixel caps, and
audio decoded into one buffer (decode memory = the output array, not twice it)."""

from __future__ import annotations

import os
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emoforge.configs.preprocess import DenoiseConfig
from emoforge.configs.sampling import MediaConfig
from emoforge.preprocess.denoise import AudioCleaner, block_powers, gated_loudness_db
from emoforge.preprocess.guards import Growable
from emoforge.preprocess.media import MediaDecoder, MediaError, MediaProber
from emoforge.storage.records import ErrorKind, Status, file_sha256
from tests.conftest import run_ffmpeg


def test_special_files_are_refused_before_any_read(tmp_path: Path) -> None:
    """/dev/zero used to be hashed forever (full CPU, Ctrl-C ignored); a FIFO blocks on open."""
    fifo = tmp_path / "pipe.wav"
    os.mkfifo(fifo)
    prober = MediaProber(MediaConfig())
    for path, kind in ((Path("/dev/zero"), "character device"), (fifo, "FIFO"), (tmp_path, "directory")):
        rec = prober.probe(path)
        assert rec.status == Status.failed and rec.failure is not None
        assert rec.failure.kind == ErrorKind.invalid_input and rec.failure.stage == "probe"
        assert kind in rec.failure.message
        with pytest.raises(OSError, match="not a regular file"):
            file_sha256(path)  # the incremental planner hashes inputs with it before probing


def test_file_size_cap(speech_wav: Path) -> None:
    size = speech_wav.stat().st_size
    rec = MediaProber(MediaConfig(max_file_bytes=size - 1)).probe(speech_wav)
    assert rec.status == Status.failed and rec.failure is not None
    assert rec.failure.kind == ErrorKind.unsupported_media and "max_file_bytes" in rec.failure.message
    assert rec.size_bytes == size
    assert MediaProber(MediaConfig(max_file_bytes=size)).probe(speech_wav).status == Status.ok


def test_duration_cap(speech_wav: Path) -> None:
    rec = MediaProber(MediaConfig(max_duration_s=1.0)).probe(speech_wav)
    assert rec.status == Status.failed and rec.failure is not None
    assert rec.failure.kind == ErrorKind.unsupported_media and "max_duration_s=1" in rec.failure.message
    assert rec.duration_s is not None and rec.duration_s > 1.0
    assert MediaProber(MediaConfig(max_duration_s=None)).probe(speech_wav).status == Status.ok


def test_pixel_cap(silent_video: Path) -> None:
    """320x240 bars: one pixel over the cap is refused, exactly at the cap passes."""
    over = MediaProber(MediaConfig(max_pixels=320 * 240 - 1)).probe(silent_video)
    assert over.status == Status.failed and over.failure is not None
    assert over.failure.kind == ErrorKind.unsupported_media and "320x240" in over.failure.message
    assert MediaProber(MediaConfig(max_pixels=320 * 240)).probe(silent_video).status == Status.ok


def test_audio_decode_holds_the_audio_once(tmp_path: Path) -> None:
    """Peak Python-visible allocation while decoding 120 s is the output array plus a small
    constant; collecting frames and concatenating them peaked at twice the output."""
    wav = tmp_path / "long.wav"
    run_ffmpeg("-f", "lavfi", "-i", "sine=frequency=220:sample_rate=16000:duration=120", "-ac", "1", str(wav))
    config = MediaConfig()
    rec = MediaProber(config).probe(wav)
    decoder = MediaDecoder(config)
    tracemalloc.start()
    try:
        media = decoder.decode(rec)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert media.audio is not None and len(media.audio) == pytest.approx(120 * 16000, abs=1600)
    out = media.audio.nbytes
    assert peak < out * 1.1 + (1 << 20), (peak, out)


@settings(max_examples=60, deadline=None)
@given(
    capacity=st.integers(0, 50),
    chunks=st.lists(st.integers(0, 40), max_size=12),
)
def test_growable_buffer_equals_concatenation(capacity: int, chunks: list[int]) -> None:
    rng = np.random.default_rng(len(chunks))
    parts = [rng.standard_normal(n).astype(np.float32) for n in chunks]
    buf = Growable(capacity)
    for p in parts:
        buf.append(p)
    expected = np.concatenate(parts) if parts else np.zeros(0, np.float32)
    got = buf.array()
    assert got.dtype == np.float32 and np.array_equal(got, expected)


def test_truncated_flac_is_partial_but_estimated_durations_are_not(tmp_path: Path) -> None:
    """FLAC's STREAMINFO states its length, so a cut copy is caught; an mp3 without a Xing
    header only has a bitrate estimate (a quiet start makes it claim ~2x), so decoding less
    is fine. (A cut WAV cannot be caught: FFmpeg clamps its data size to the file.)"""
    flac = tmp_path / "tone.flac"
    run_ffmpeg("-f", "lavfi", "-i", "sine=frequency=300:sample_rate=16000:duration=10", str(flac))
    cut = tmp_path / "cut.flac"
    cut.write_bytes(flac.read_bytes()[: flac.stat().st_size // 3])
    config = MediaConfig()
    rec = MediaProber(config).probe(cut)
    assert rec.status == Status.ok and rec.duration_s == pytest.approx(10.0, abs=0.01)
    with pytest.raises(MediaError) as err:
        MediaDecoder(config).decode(rec)
    assert err.value.kind == ErrorKind.partial_media

    mp3 = tmp_path / "vbr.mp3"
    run_ffmpeg("-f", "lavfi", "-i", "anoisesrc=d=20:c=pink:a=0.5,volume=enable='lt(t,10)':volume=0",
               "-c:a", "libmp3lame", "-q:a", "2", "-write_xing", "0", str(mp3))  # fmt: skip
    rec = MediaProber(config).probe(mp3)
    assert rec.duration_s is not None and rec.duration_s > 30  # the estimate
    media = MediaDecoder(config).decode(rec)
    assert media.audio is not None and len(media.audio) / 16000 == pytest.approx(20.0, abs=0.1)


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(0, 3000),
    block=st.integers(1, 200),
    hop_div=st.integers(1, 4),
    chunk_blocks=st.integers(1, 40),
)
def test_block_powers_in_chunks_equal_one_running_sum(n: int, block: int, hop_div: int, chunk_blocks: int) -> None:
    audio = np.random.default_rng(n).standard_normal(n).astype(np.float32)
    hop = max(1, block // hop_div)
    got = block_powers(audio, block, hop, chunk_blocks)
    if n < block:
        assert len(got) == (1 if n else 0)
        return
    sq = np.concatenate([[0.0], np.cumsum(audio.astype(np.float64) ** 2)])
    starts = np.arange(1 + (n - block) // hop) * hop
    np.testing.assert_allclose(got, (sq[starts + block] - sq[starts]) / block, rtol=1e-9, atol=1e-12)


def test_loudness_of_a_long_recording_needs_no_copy_of_it() -> None:
    """Loudness normalisation runs on the whole recording: its running sum used to allocate
    about 4 float64 copies (8x the float32 audio); now a few MB whatever the length."""
    audio = (0.1 * np.sin(np.arange(16000 * 600) * 0.05)).astype(np.float32)  # 10 min, 38 MB
    tracemalloc.start()
    try:
        level = gated_loudness_db(audio, 16000)
        out = AudioCleaner(DenoiseConfig(enabled=False, loudness_target_lufs=-23.0)).clean(audio, 16000)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert level == pytest.approx(-0.691 + 10 * np.log10(0.005), abs=0.01)
    assert gated_loudness_db(out, 16000) == pytest.approx(-23.0, abs=0.05)
    assert peak < audio.nbytes * 1.3, (peak, audio.nbytes)  # the output itself, plus a little
