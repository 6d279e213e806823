"""Stage-2 benchmark: realtime factor per sub-stage on the fixtures, ASR accuracy raw vs denoised,
and a 10-minute looped video through the whole FeatureExtractor in bounded memory.

    python benchmarks/bench_preprocess.py [--fixtures ../shared/fixtures] [--minutes 10]

Runs the offline default (configs/default.yaml); ASR accuracy also with Whisper's own decoding (beam 5,
windows padded to 30 s). Writes ``benchmarks/results/preprocess.json``. RTF = processing seconds / media seconds,
measured after a warm-up call so model loading is reported separately (``load_s``).
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import os
import platform
import re
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("OMP_NUM_THREADS", str(os.cpu_count() or 1))

import jiwer
import numpy as np

from emoforge.configs import load_config
from emoforge.configs.preprocess import AsrConfig
from emoforge.configs.sampling import MediaConfig
from emoforge.preprocess.extractor import FeatureExtractor
from emoforge.preprocess.keyframes import KeyframeSelector
from emoforge.preprocess.media import Media, MediaDecoder, MediaProber
from emoforge.storage.records import RunContext, Segment, Span, segment_id_for

log = logging.getLogger("bench_preprocess")
T = TypeVar("T")
REPO = Path(__file__).resolve().parents[1]
JFK = "And so my fellow Americans, ask not what your country can do for you, ask what you can do for your country."
_PUNCT = re.compile(r"[^\w\s]|_", re.UNICODE)


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def decode(path: Path) -> Media:
    return MediaDecoder(MediaConfig()).decode(MediaProber(MediaConfig()).probe(path))


def timed(fn: Callable[[], T]) -> tuple[T, float]:
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def stage_rtf(fx: FeatureExtractor, media: Media) -> dict[str, float]:
    """Seconds per media second for each sub-stage, models already warm."""
    dur = media.duration_s
    out: dict[str, float] = {"duration_s": round(dur, 2)}
    spans = [Span(start_s=0.0, end_s=dur)]
    if media.audio is not None:
        clean, t = timed(lambda: fx.cleaner.clean(media.audio, media.sample_rate))
        out["denoise"] = t / dur
        _, t = timed(lambda: fx.speakers.analyze(media.audio, media.sample_rate))
        out["speakers_overlap"] = t / dur
        _, t = timed(lambda: fx.asr.transcribe(media.audio, media.sample_rate, spans))
        out["asr"] = t / dur
        _, t = timed(lambda: fx.prosody.analyze(clean, media.sample_rate, 0.0))
        out["prosody"] = t / dur
    if media.frames is not None and len(media.frames):
        frames = list(media.frames.iter_between(0.0, dur + 1))
        tracked, t = timed(lambda: fx.faces.track(frames))
        out["face_landmarks"] = t / dur
        out["face_ms_per_frame"] = 1000 * t / len(frames)
        desc, t1 = timed(lambda: [fx.geometry.describe(f.landmarks)[0] for f in tracked if f.landmarks is not None])
        _, t2 = timed(lambda: fx.aus.estimate(desc) if fx.aus is not None else None)
        out["geometry_aus"] = (t1 + t2) / dur
        seg = Segment(id="b-00000", recording_id="b", index=0, start_s=0.0, end_s=dur, kind="full")
        selector = KeyframeSelector(fx.settings.keyframes)
        _, t = timed(lambda: selector.select(seg, media.frames, []))
        out["keyframes"] = t / dur
    return {k: round(v, 4) for k, v in out.items()}


def asr_accuracy(fixtures: Path, config: AsrConfig) -> dict[str, float]:
    """WER (jfk, tiny.en) and pooled CER (MER, base + detection), raw vs denoised audio."""
    from emoforge.configs.preprocess import DenoiseConfig
    from emoforge.preprocess.asr import SpeechTranscriber
    from emoforge.preprocess.denoise import AudioCleaner

    cleaner = AudioCleaner(DenoiseConfig())
    asr = SpeechTranscriber(config)
    out: dict[str, float] = {}
    jfk = decode(fixtures / "media" / "jfk.flac")
    with open(fixtures / "labels" / "mer2023_clips.csv", encoding="utf-8") as fh:
        labels = list(csv.DictReader(fh))
    mer = {r["sample_id"]: decode(fixtures / "media" / f"{r['sample_id']}.mp4") for r in labels}
    for variant in ("raw", "denoised"):

        def audio(m: Media, variant: str = variant) -> np.ndarray:
            if m.audio is None:
                raise ValueError(f"{m.recording.uri} has no audio")
            return m.audio if variant == "raw" else cleaner.clean(m.audio, m.sample_rate)

        rt = asr.transcribe(audio(jfk), 16000, [Span(start_s=0, end_s=jfk.duration_s)])
        hyp = asr.slice(rt, 0, 1e9).text
        norm = lambda s: " ".join(_PUNCT.sub(" ", s.lower()).split())  # noqa: E731
        out[f"jfk_wer_{variant}"] = round(jiwer.wer(norm(JFK), norm(hyp)), 4)
        refs, hyps = [], []
        for r in labels:
            m = mer[r["sample_id"]]
            rt = asr.transcribe(audio(m), 16000, [Span(start_s=0, end_s=m.duration_s)])
            refs.append(re.sub(r"\s+", "", _PUNCT.sub("", r["transcript_zh"])))
            hyps.append(re.sub(r"\s+", "", _PUNCT.sub("", asr.slice(rt, 0, 1e9).text)))
        out[f"mer_cer_{variant}"] = round(jiwer.cer(refs, hyps), 4)
    return out


def long_video(fixtures: Path, minutes: float, fx: FeatureExtractor) -> dict[str, float]:
    """Loop a MER clip to ``minutes`` and run the whole extractor on 5 s speech segments."""
    src = fixtures / "media" / "sample_00000694.mp4"
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "long.mp4"
        subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-stream_loop", "-1", "-i", str(src),
                        "-t", str(60 * minutes), "-c", "copy", str(out)], check=True)  # fmt: skip
        rss0 = rss_mb()
        media, t_decode = timed(lambda: decode(out))
        dur = media.duration_s
        rid = media.recording.id
        n = int(dur // 5)
        segs = [Segment(id=segment_id_for(rid, i), recording_id=rid, index=i, start_s=5.0 * i,
                        end_s=min(dur, 5.0 * i + 5.0), kind="speech") for i in range(n)]  # fmt: skip
        feats, t_extract = timed(lambda: fx.extract(media, segs))
        rows = sum(len(f.model_dump_json()) for f in feats)
        return {
            "duration_s": round(dur, 1),
            "segments": n,
            "decode_rtf": round(t_decode / dur, 4),
            "extract_rtf": round(t_extract / dur, 4),
            "frames_jpeg_mb": round((media.frames.nbytes if media.frames else 0) / 2**20, 1),
            "features_json_mb": round(rows / 2**20, 2),
            "peak_rss_mb_before": round(rss0, 1),
            "peak_rss_mb_after": round(rss_mb(), 1),
            "segments_with_failures": sum(1 for f in feats if f.failures),
        }


def main() -> None:
    ap = argparse.ArgumentParser()
    default_fixtures = os.environ.get("EMOFORGE_FIXTURES", str(REPO.parent / "shared" / "fixtures"))
    ap.add_argument("--fixtures", type=Path, default=Path(default_fixtures))
    ap.add_argument(
        "--minutes", default="2.5,10", help="Looped-video lengths, ascending: peak RSS after each shows the growth."
    )
    ap.add_argument("--skip-fixtures", action="store_true", help="Only the looped-video part.")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "preprocess.json")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO)
    ctx = RunContext(run_id="bench", config_hash="bench", emoforge_version="0.1.0")
    cfg = load_config()  # the offline default (configs/default.yaml), as users run it
    fx = FeatureExtractor(cfg.preprocess, cfg.sampling.keyframes, ctx)
    media = {p.name: decode(p) for p in sorted((args.fixtures / "media").iterdir())}
    _, load_s = timed(lambda: stage_rtf(fx, media["sample_00004735.mp4"]))  # loads every model once
    result: dict[str, object] = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "load_avg_1m": os.getloadavg()[0]},
        "first_call_with_model_loads_s": round(load_s, 1),
    }
    if not args.skip_fixtures:
        result["rtf_per_stage"] = {name: stage_rtf(fx, m) for name, m in media.items()}
        result["asr_accuracy"] = {
            "offline_default": asr_accuracy(args.fixtures, cfg.preprocess.asr),
            # Whisper's own decoding: beam 5, every window padded to 30 s.
            "beam5_padded": asr_accuracy(args.fixtures, AsrConfig()),
        }
    media.clear()  # the fixtures are not needed for the long run
    minutes = sorted(float(m) for m in str(args.minutes).split(","))
    result["long_video"] = [long_video(args.fixtures, m, fx) for m in minutes]
    result["load_avg_1m_end"] = os.getloadavg()[0]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    log.info("wrote %s", args.out)
    sys.stdout.write(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
