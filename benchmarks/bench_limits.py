"""Decode memory against input length, and what the resource limits save.

For each ``--minutes`` length, a 16 kHz mono WAV (a quiet tone: what a long silent file
decodes like) is decoded in a fresh process twice: by ``MediaDecoder`` (frames written into
one preallocated buffer) and by the previous method (a list of frames, then one
concatenate). Each run reports the process's peak RSS, the RSS before decoding, and the
size of the decoded array; ``overhead_mb`` = peak - before - array is what decoding costs
beyond its output. Then an 8192x8192 video is probed with ``max_pixels`` at its default
(refused before any frame is decoded) and off. Writes benchmarks/results/limits.json.

    .venv/bin/python benchmarks/bench_limits.py --minutes 1 10 30 60
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "benchmarks" / "results" / "limits.json"

# Runs in a fresh interpreter so each peak RSS belongs to one decode only.
_DECODE = r"""
import json, resource, sys
import numpy as np
from emoforge.configs.sampling import MediaConfig
from emoforge.preprocess.media import MediaDecoder, MediaProber

def rss_mb():
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024

def list_concat(uri, rate):
    import av
    chunks = []
    with av.open(uri) as container:
        resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
        for frame in container.decode(container.streams.audio[0]):
            for out in resampler.resample(frame):
                chunks.append(out.to_ndarray().reshape(-1))
        for out in resampler.resample(None):
            chunks.append(out.to_ndarray().reshape(-1))
    return np.concatenate(chunks).astype(np.float32, copy=False)

path, method = sys.argv[1], sys.argv[2]
config = MediaConfig(max_duration_s=None)
rec = MediaProber(config).probe(path)
import av  # imported before the baseline so it is not counted as decode memory
before = rss_mb()
if method == "chunked":
    audio = MediaDecoder(config).decode(rec).audio
else:
    audio = list_concat(path, config.audio_sample_rate)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"before_mb": before, "peak_mb": peak, "array_mb": audio.nbytes / 2**20,
                  "seconds": len(audio) / config.audio_sample_rate}))
"""

_PROBE = r"""
import json, resource, sys
from emoforge.configs.sampling import MediaConfig
from emoforge.preprocess.media import MediaProber
import av
cap = None if sys.argv[2] == "off" else MediaConfig().max_pixels
rec = MediaProber(MediaConfig(max_pixels=cap)).probe(sys.argv[1])
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"peak_mb": peak, "status": rec.status.value,
                  "failure": rec.failure.kind.value if rec.failure else None}))
"""


def _ffmpeg(*args: str) -> None:
    exe = shutil.which("ffmpeg")
    if exe is None:
        raise SystemExit("ffmpeg not installed: run scripts/setup.sh")
    subprocess.run([exe, "-hide_banner", "-loglevel", "error", "-y", *args], check=True)


def _run(script: str, *args: str) -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, cwd=REPO, check=True)
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def bench_audio(minutes: list[float], tmp: Path) -> list[dict[str, Any]]:
    rows = []
    for m in minutes:
        wav = tmp / f"tone-{m:g}min.wav"
        _ffmpeg("-f", "lavfi", "-i", f"sine=frequency=100:sample_rate=16000:duration={m * 60}", "-af", "volume=0.01",
                "-ac", "1", str(wav))  # fmt: skip
        for method in ("chunked", "list_concat"):
            r = _run(_DECODE, str(wav), method)
            r["overhead_mb"] = r["peak_mb"] - r["before_mb"] - r["array_mb"]
            rows.append({"minutes": m, "method": method, **{k: round(v, 1) for k, v in r.items()}})
            print(rows[-1], flush=True)
        wav.unlink()
    return rows


def bench_pixels(tmp: Path) -> list[dict[str, Any]]:
    video = tmp / "huge-8192.mkv"
    _ffmpeg("-f", "lavfi", "-i", "testsrc2=size=8192x8192:rate=1:duration=1", "-frames:v", "1", "-c:v", "mjpeg",
            "-q:v", "10", str(video))  # fmt: skip
    rows = []
    for cap in ("default", "off"):
        r = _run(_PROBE, str(video), cap)
        rows.append({"video": "8192x8192", "max_pixels": cap, **r})
        print(rows[-1], flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, nargs="+", default=[1, 10, 30, 60])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-limits-") as d:
        audio = bench_audio(args.minutes, Path(d))
        pixels = bench_pixels(Path(d))
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(
        json.dumps(
            {
                "machine": {"python": platform.python_version(), "cpu": platform.processor() or platform.machine()},
                "audio_decode": audio,
                "probe_8192": pixels,
                "notes": "overhead_mb = peak RSS - RSS before decoding - decoded array size. The decoded array "
                "itself grows 3.66 MB per minute (float32, 16 kHz); sampling.media.max_duration_s bounds it.",
            },
            indent=2,
        )
        + "\n"
    )
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
