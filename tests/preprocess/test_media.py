"""Probing and decoding: real fixtures, generated containers, broken and partial inputs."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import numpy as np
import pytest

from emoforge.configs.sampling import MediaConfig
from emoforge.preprocess.media import MediaDecoder, MediaError, MediaProber
from emoforge.storage.records import ErrorKind, Status, file_sha256, recording_id_for
from tests.conftest import run_ffmpeg

CFG = MediaConfig()


def probe(path: Path):
    return MediaProber(CFG).probe(path)


def test_probe_real_fixtures(media_dir: Path) -> None:
    jfk = probe(media_dir / "jfk.flac")
    assert jfk.status == Status.ok and jfk.has_audio and not jfk.has_video
    assert jfk.duration_s == pytest.approx(11.0, abs=0.01)
    (a,) = jfk.streams
    assert (a.codec, a.sample_rate, a.channels) == ("flac", 44100, 2)
    assert jfk.id == recording_id_for(media_dir / "jfk.flac", file_sha256(media_dir / "jfk.flac"))

    two = probe(media_dir / "two_speakers.wav")
    assert two.duration_s == pytest.approx(30.0, abs=0.01)
    assert [(s.kind, s.sample_rate, s.channels) for s in two.streams] == [("audio", 16000, 1)]

    clip = probe(media_dir / "sample_00000694.mp4")
    assert clip.has_audio and clip.has_video and clip.duration_s == pytest.approx(13.56, abs=0.01)
    video = next(s for s in clip.streams if s.kind == "video")
    assert (video.codec, video.width, video.height, video.fps, video.rotation) == ("h264", 672, 378, 25.0, 0)


def test_decode_real_clip_once(media_dir: Path) -> None:
    rec = probe(media_dir / "sample_00000694.mp4")
    media = MediaDecoder(CFG).decode(rec)
    assert media.audio is not None and media.audio.dtype == np.float32
    assert len(media.audio) / media.sample_rate == pytest.approx(13.5, abs=0.1)
    frames = media.frames
    assert frames is not None
    # a fixed 2 fps grid: 0.0, 0.52, 1.0, ... (first 25 fps frame at or after each k/2 s)
    assert len(frames) == 28
    assert np.all(np.diff(frames.times) == pytest.approx(0.5, abs=0.041))
    assert max(frames.width, frames.height) <= CFG.frame_max_side
    assert frames.frame(0).shape == (frames.height, frames.width, 3)
    assert list(frames.indices_between(1.0, 2.0)) == [2, 3]
    assert len(media.audio_between(1.0, 2.5)) == int(1.5 * media.sample_rate)
    assert media.duration_s == pytest.approx(13.56, abs=0.01)


def _tone_and_bars(out: Path, vcodec: list[str], acodec: list[str], seconds: float = 2.0) -> Path:
    run_ffmpeg(
        "-f",
        "lavfi",
        "-i",
        f"testsrc2=size=160x120:rate=25:duration={seconds}",
        "-f",
        "lavfi",
        "-i",
        f"sine=frequency=440:sample_rate=48000:duration={seconds}",
        *vcodec,
        *acodec,
        "-shortest",
        str(out),
    )
    return out


@pytest.mark.parametrize(
    ("name", "vcodec", "acodec", "vname", "aname"),
    [
        ("c.mkv", ["-c:v", "libx264", "-pix_fmt", "yuv420p"], ["-c:a", "libvorbis"], "h264", "vorbis"),
        ("c.webm", ["-c:v", "libvpx", "-b:v", "200k"], ["-c:a", "libopus"], "vp8", "opus"),
        ("c.avi", ["-c:v", "mpeg4"], ["-c:a", "libmp3lame"], "mpeg4", "mp3"),
        ("c.mov", ["-c:v", "mjpeg"], ["-c:a", "pcm_s16le"], "mjpeg", "pcm_s16le"),
    ],
)
def test_probe_and_decode_containers(
    generated_dir: Path, name: str, vcodec: list[str], acodec: list[str], vname: str, aname: str
) -> None:
    path = _tone_and_bars(generated_dir / name, vcodec, acodec)
    rec = probe(path)
    assert rec.status == Status.ok and rec.has_audio and rec.has_video
    assert rec.duration_s == pytest.approx(2.0, abs=0.1)
    kinds = {s.kind: s for s in rec.streams}
    assert kinds["video"].codec == vname and kinds["audio"].codec == aname
    assert (kinds["video"].width, kinds["video"].height) == (160, 120)
    assert kinds["video"].fps == pytest.approx(25.0, abs=0.01)
    assert all(s.duration_s for s in rec.streams)  # mkv/webm streams get the container duration
    media = MediaDecoder(CFG).decode(rec)
    assert media.audio is not None and len(media.audio) == pytest.approx(32000, abs=1200)
    # a 440 Hz tone survives resampling to 16 kHz: its spectral peak stays at 440 Hz
    spectrum = np.abs(np.fft.rfft(media.audio[:16000]))
    assert np.argmax(spectrum) == pytest.approx(440, abs=2)
    assert media.frames is not None and len(media.frames) in (4, 5)  # avi keeps a frame at 2.0 s
    assert np.all(np.diff(media.frames.times) == pytest.approx(0.5, abs=0.041))


def test_mp3_with_cover_art_is_audio_only(generated_dir: Path) -> None:
    cover = generated_dir / "cover.png"
    run_ffmpeg("-f", "lavfi", "-i", "color=c=red:size=64x64", "-frames:v", "1", str(cover))
    out = generated_dir / "song.mp3"
    run_ffmpeg(
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=300:duration=1.5",
        "-i",
        str(cover),
        "-map",
        "0:a",
        "-map",
        "1:v",
        "-c:a",
        "libmp3lame",
        "-c:v",
        "png",
        "-disposition:v",
        "attached_pic",
        str(out),
    )
    rec = probe(out)
    assert rec.status == Status.ok and rec.has_audio and not rec.has_video
    assert [s.kind for s in rec.streams] == ["audio"]
    assert rec.duration_s == pytest.approx(1.5, abs=0.1)
    media = MediaDecoder(CFG).decode(rec)
    assert media.frames is None and media.audio is not None


def test_video_without_audio(silent_video: Path) -> None:
    rec = probe(silent_video)
    assert rec.status == Status.ok and rec.has_video and not rec.has_audio
    media = MediaDecoder(CFG).decode(rec)
    assert media.audio is None and media.frames is not None and len(media.frames) == 6
    assert len(media.audio_between(0, 1)) == 0
    assert media.duration_s == pytest.approx(3.0, abs=0.05)


def test_audio_without_video(speech_wav: Path) -> None:
    rec = probe(speech_wav)
    assert rec.has_audio and not rec.has_video
    media = MediaDecoder(CFG).decode(rec)
    assert media.frames is None and media.audio is not None


@pytest.mark.parametrize(
    ("content", "kind"),
    [
        (b"", ErrorKind.corrupt_media),
        (b"this is not media at all\n" * 50, ErrorKind.corrupt_media),
    ],
)
def test_unreadable_files_are_failure_rows(generated_dir: Path, content: bytes, kind: ErrorKind) -> None:
    path = generated_dir / f"bad{len(content)}.mp4"
    path.write_bytes(content)
    rec = probe(path)
    assert rec.status == Status.failed and rec.failure is not None
    assert rec.failure.kind == kind and rec.failure.stage == "probe"
    with pytest.raises(MediaError) as err:
        MediaDecoder(CFG).decode(rec)
    assert err.value.kind == ErrorKind.invalid_input


def test_corrupt_and_missing(corrupt_media: Path, tmp_path: Path) -> None:
    rec = probe(corrupt_media)
    assert rec.status == Status.failed and rec.failure is not None
    assert rec.failure.kind == ErrorKind.corrupt_media
    missing = probe(tmp_path / "nope.mp4")
    assert missing.status == Status.failed and missing.failure is not None
    assert missing.failure.kind == ErrorKind.invalid_input


def test_truncated_video_is_partial_media(media_dir: Path, tmp_path: Path) -> None:
    """A file cut off mid-stream (a failed download) claims 13.56 s but decodes to far less:
    a typed partial_media failure, not a shorter recording marked ok. With the check off
    (min_decoded_fraction=0) it decodes up to the damage."""
    src = tmp_path / "whole.mkv"
    run_ffmpeg("-i", str(media_dir / "sample_00000694.mp4"), "-c", "copy", str(src))
    data = src.read_bytes()
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(data[: len(data) // 2])
    rec = probe(cut)
    assert rec.status == Status.ok and rec.duration_s == pytest.approx(13.56, abs=0.05)
    with pytest.raises(MediaError) as err:
        MediaDecoder(CFG).decode(rec)
    assert err.value.kind == ErrorKind.partial_media
    assert re.search(r"decoded to [\d.]+s of the 13.5\ds the container claims", str(err.value))
    media = MediaDecoder(MediaConfig(min_decoded_fraction=0)).decode(rec)
    assert media.frames is not None and 3 < len(media.frames) < 28
    assert media.audio is not None and 1.0 < len(media.audio) / 16000 < 13.0
    # the whole file passes the same check
    whole = MediaDecoder(CFG).decode(probe(src))
    assert whole.audio is not None and whole.frames is not None and not whole.failures


@pytest.mark.parametrize("rotate", [90, 270])
def test_rotation_is_probed_and_frames_are_upright(generated_dir: Path, rotate: int) -> None:
    src = generated_dir / "landscape.mp4"
    if not src.exists():
        run_ffmpeg(
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x180:rate=25:duration=1",
            "-c:v",
            "libx264",
            "-pix_fmt",
            "yuv420p",
            str(src),
        )
    rotated = generated_dir / f"rot{rotate}.mp4"
    run_ffmpeg("-i", str(src), "-c", "copy", "-metadata:s:v:0", f"rotate={rotate}", str(rotated))
    rec = probe(rotated)
    (video,) = rec.streams
    # the reference is ffprobe's display-matrix rotation (counter-clockwise degrees)
    reported = subprocess.run(
        [
            "ffprobe",
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-show_entries",
            "stream_side_data=rotation",
            "-of",
            "csv=p=0",
            str(rotated),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert video.rotation == int(float(reported[0])) % 360 != 0
    assert (video.width, video.height) == (320, 180)
    media = MediaDecoder(CFG).decode(rec)
    assert media.frames is not None and (media.frames.width, media.frames.height) == (180, 320)
    # ffmpeg's own autorotation is the reference picture
    ref = generated_dir / f"rot{rotate}.png"
    run_ffmpeg("-i", str(rotated), "-frames:v", "1", str(ref))
    import cv2

    expected = cv2.imread(str(ref))
    assert expected is not None
    ours = media.frames.frame(0)
    assert expected.shape == ours.shape
    assert float(np.mean(np.abs(expected.astype(int) - ours.astype(int)))) < 6.0
    unrotated = MediaDecoder(MediaConfig(apply_rotation=False)).decode(rec)
    assert unrotated.frames is not None and unrotated.frames.frame(0).shape == (180, 320, 3)
