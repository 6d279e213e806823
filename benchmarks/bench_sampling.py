"""Throughput of the sampling front end: seconds of media processed per wall second.

Stages: probe, decode (audio + 2 fps frame store + per-frame cut scores; also without the
scores), shots (PySceneDetect over the decode-time scores, over the file decoded again, over
the sampled frame store), VAD (silero, pyannote incl. overlaps), the whole segmenter, and
key frames for every segment. Inputs: the fixtures, and a 10-minute video made by looping the
three MER clips (re-encoded to one size/fps, generated into a temp dir). Models are loaded
and warmed up before timing; load times are reported separately.

    .venv/bin/python benchmarks/bench_sampling.py [--minutes 10] [--out benchmarks/results/sampling.json]
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
MER_CLIPS = ("sample_00000694.mp4", "sample_00003358.mp4", "sample_00004735.mp4")
log = logging.getLogger("bench_sampling")


def _ffmpeg(*args: str) -> None:
    exe = shutil.which("ffmpeg")
    if exe is None:
        raise RuntimeError("ffmpeg not installed")
    subprocess.run([exe, "-hide_banner", "-loglevel", "error", "-y", *args], check=True)


def make_long_video(media_dir: Path, out: Path, minutes: float) -> Path:
    """Loop the three MER clips (672x378, 25 fps, 16 kHz mono) to ``minutes`` of video."""
    block = out.with_name("mer_block.mp4")
    inputs: list[str] = []
    chains: list[str] = []
    for i, clip in enumerate(MER_CLIPS):
        inputs += ["-i", str(media_dir / clip)]
        chains.append(
            f"[{i}:v]scale=672:378,fps=25,setsar=1[v{i}];[{i}:a]aresample=16000,aformat=channel_layouts=mono[a{i}]"
        )
    graph = ";".join(chains) + ";[v0][a0][v1][a1][v2][a2]concat=n=3:v=1:a=1[v][a]"
    _ffmpeg(
        *inputs,
        "-filter_complex",
        graph,
        "-map",
        "[v]",
        "-map",
        "[a]",
        "-c:v",
        "libx264",
        "-preset",
        "veryfast",
        "-pix_fmt",
        "yuv420p",
        "-c:a",
        "aac",
        str(block),
    )
    _ffmpeg("-stream_loop", "-1", "-i", str(block), "-t", str(minutes * 60), "-c", "copy", str(out))
    return out


def _timed(fn: Callable[[], Any], repeat: int = 1) -> tuple[float, Any]:
    best, result = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t0)
    return best, result


def bench_file(path: Path, repeat: int) -> dict[str, Any]:
    from emoforge.configs.sampling import KeyframeConfig, SamplingConfig, ShotConfig, VadConfig
    from emoforge.preprocess.keyframes import KeyframeSelector
    from emoforge.preprocess.media import MediaDecoder, MediaProber
    from emoforge.preprocess.sampling.segmenter import Segmenter
    from emoforge.preprocess.sampling.shots import ShotDetector
    from emoforge.preprocess.sampling.vad_pyannote import PyannoteSegmentation
    from emoforge.preprocess.sampling.vad_silero import SileroVad

    cfg = SamplingConfig()
    t_probe, rec = _timed(lambda: MediaProber(cfg.media).probe(path), repeat)
    t_decode, media = _timed(lambda: MediaDecoder(cfg.media).decode(rec), repeat)
    seconds = media.duration_s
    out: dict[str, Any] = {"file": path.name, "media_s": round(seconds, 2), "has_video": rec.has_video}
    stages: dict[str, float] = {"probe": t_probe, "decode": t_decode}
    if rec.has_video:
        no_scan = cfg.media.model_copy(update={"scan_side": 0})
        stages["decode_without_scan"], _ = _timed(lambda: MediaDecoder(no_scan).decode(rec), repeat)
        for source in ("scan", "file", "frames"):
            detect = partial(ShotDetector(ShotConfig(source=source)).detect, media)
            stages[f"shots_{source}"], _ = _timed(detect, repeat)
    if media.audio is not None:
        silero = SileroVad(VadConfig())
        stages["vad_silero"], _ = _timed(lambda: silero.detect(media.audio, media.sample_rate), repeat)

        def pyannote_pass() -> Any:
            seg = PyannoteSegmentation(VadConfig(backend="pyannote"))  # fresh: no per-audio cache hit
            return seg.detect(media.audio, media.sample_rate), seg.overlaps(media.audio, media.sample_rate)

        stages["vad_pyannote_with_overlaps"], _ = _timed(pyannote_pass, repeat)
    t_seg, segments = _timed(lambda: Segmenter(cfg).segment(media), repeat)
    stages["segmenter_total"] = t_seg
    out["segments"] = len(segments)
    if media.frames is not None and segments:
        selector = KeyframeSelector(KeyframeConfig())
        stages["keyframes"], _ = _timed(lambda: [selector.select(s, media.frames) for s in segments], repeat)
        out["frame_store_mb"] = round(media.frames.nbytes / 2**20, 2)
    if media.audio is not None:
        out["audio_mb"] = round(media.audio.nbytes / 2**20, 2)
    out["wall_s"] = {k: round(v, 4) for k, v in stages.items()}
    out["media_s_per_wall_s"] = {k: round(seconds / v, 1) if v > 0 else None for k, v in stages.items()}
    return out


def warm_up(media_dir: Path) -> dict[str, float]:
    """Load the models once (they are cached per process) and report how long that took."""
    import numpy as np

    from emoforge.configs.sampling import VadConfig
    from emoforge.preprocess.sampling.vad_pyannote import PyannoteSegmentation
    from emoforge.preprocess.sampling.vad_silero import SileroVad

    noise = np.random.default_rng(0).normal(0, 0.01, 16000).astype(np.float32)
    t_scenedetect, _ = _timed(lambda: importlib.import_module("scenedetect"))
    t_silero, _ = _timed(lambda: SileroVad(VadConfig()).detect(noise, 16000))
    t_pyannote, _ = _timed(lambda: PyannoteSegmentation(VadConfig(backend="pyannote")).detect(noise, 16000))
    return {
        "scenedetect_import_s": round(t_scenedetect, 2),
        "silero_load_s": round(t_silero, 2),
        "pyannote_load_s": round(t_pyannote, 2),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_fixtures = Path(os.environ.get("EMOFORGE_FIXTURES", REPO.parent / "shared" / "fixtures"))
    parser.add_argument("--fixtures", type=Path, default=default_fixtures)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--repeat", type=int, default=1, help="best of N for the fixtures")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "sampling.json")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    media_dir = args.fixtures / "media"
    result: dict[str, Any] = {
        "benchmark": "sampling",
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "host": {
            "python": sys.version.split()[0],
            "machine": platform.machine(),
            "cpus": os.cpu_count(),
            "loadavg_before": os.getloadavg(),
        },
        "unit": "seconds of media per wall second (higher is faster)",
    }
    result["model_load"] = warm_up(media_dir)
    fixtures = ["jfk.flac", "two_speakers.wav", *MER_CLIPS]
    result["fixtures"] = [bench_file(media_dir / f, args.repeat) for f in fixtures]
    for row in result["fixtures"]:
        log.info("%s: %s", row["file"], row["media_s_per_wall_s"])
    with tempfile.TemporaryDirectory() as tmp:
        long_video = make_long_video(media_dir, Path(tmp) / "mer_loop.mp4", args.minutes)
        row = bench_file(long_video, 1)
        log.info("%s: %s", row["file"], row["media_s_per_wall_s"])
        result["long_video"] = row
    result["host"]["loadavg_after"] = os.getloadavg()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    log.info("wrote %s", args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
