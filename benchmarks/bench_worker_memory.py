"""Where a worker's memory goes: each library and model of the offline default, loaded in turn.

    .venv/bin/python benchmarks/bench_worker_memory.py   # writes benchmarks/results/worker_memory.json

One fresh process imports and loads what a worker of the offline default does, in the
order its phases first need them, and reads ``/proc/self/smaps_rollup`` after each step.
Each row is that step's increase: PSS (what this process adds to the machine), of which
anonymous (heap: private to the process, paid again by every worker that loads it) and
file-backed (libraries and mapped files: shared with every process mapping the same file).
A step's anonymous memory is what a second worker pays again, unless it inherits it from the
process it forked from (``flows/worker_preload.py`` imports the libraries there).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "worker_memory.json"
FIELDS = ("Rss", "Pss", "Pss_Anon", "Pss_File")


def rollup() -> dict[str, float]:
    """This process's memory from ``/proc/self/smaps_rollup``, in MB."""
    out: dict[str, float] = {}
    for line in Path("/proc/self/smaps_rollup").read_text().splitlines()[1:]:
        key, value = line.split(":")
        out[key.strip()] = int(value.split()[0]) / 1024
    return out


def steps() -> list[tuple[str, Callable[[], Any]]]:
    """(name, load) in the order a worker of the offline default first needs them."""
    from emoforge.configs import load_config

    cfg = load_config()
    asr, vad = cfg.preprocess.asr, cfg.sampling.vad

    def imports() -> Any:
        import emoforge.agents.jury
        import emoforge.preprocess.extractor
        import emoforge.preprocess.sampling.segmenter

        return emoforge.agents.jury, emoforge.preprocess.extractor, emoforge.preprocess.sampling.segmenter

    def silero() -> Any:
        from emoforge.preprocess.sampling.vad_silero import _load_model

        return _load_model(vad.silero_model)

    def whisper(spec: str) -> Callable[[], Any]:
        def load() -> Any:
            from emoforge.preprocess.asr_loading import load_asr_model
            from emoforge.preprocess.models import resolve_model

            return load_asr_model(str(resolve_model(spec)), asr)

        return load

    def pyannote() -> Any:
        from emoforge.preprocess.sampling.vad_pyannote import _load_inference, resolve_checkpoint

        checkpoint = str(resolve_checkpoint(vad.pyannote_model))
        return _load_inference(checkpoint, vad.pyannote_step_s, vad.pyannote_batch_size)

    def face_mesh() -> Any:
        from emoforge.preprocess.faces import FaceTracker

        tracker = FaceTracker(cfg.preprocess.face)
        tracker._load()
        return tracker

    def face_model() -> Any:
        from emoforge.agents.recognizers.face import default_weights, load_params

        return load_params(default_weights())

    def voice_model() -> Any:
        from emoforge.agents.recognizers.base import weights_path
        from emoforge.agents.recognizers.voice import WEIGHTS, shared_model

        return shared_model(weights_path(None, WEIGHTS))

    def text_model() -> Any:
        from emoforge.agents.recognizers.text import load_encoder

        encoder = load_encoder()
        encoder.encode(["the weights load on the first sentence"])
        return encoder

    return [
        ("emoforge's config and tool modules", imports),
        ("torch (import)", lambda: __import__("torch")),
        ("pyannote.audio + lightning (import)", lambda: __import__("pyannote.audio")),
        ("silero VAD model", silero),
        ("ASR tiny.en (CTranslate2 int8)", whisper(asr.english_model)),
        ("ASR Whisper base (CTranslate2 int8, language detection)", whisper(str(asr.multilingual_model))),
        ("voice recognizer (Whisper base encoder + head)", voice_model),
        ("pyannote segmentation model (overlap)", pyannote),
        ("mediapipe face mesh x2 + detection", face_mesh),
        ("face recognizer mini-Xception (numpy)", face_model),
        ("text recognizer USE (numpy)", text_model),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    load_before = os.getloadavg()
    start = rollup()
    rows: list[dict[str, Any]] = []
    keep: list[Any] = []  # what each step loaded stays alive, as in a worker
    previous = start
    for name, load in steps():
        t0 = time.perf_counter()
        keep.append(load())
        now = rollup()
        added = {k: round(now[k] - previous[k], 1) for k in FIELDS}
        rows.append({"step": name, "s": round(time.perf_counter() - t0, 2), **added})
        previous = now
    report = {
        "machine": {"cpus": os.cpu_count(), "loadavg_before": [round(x, 2) for x in load_before]},
        "date": time.strftime("%Y-%m-%d"),
        "units": "MB; each row is what its step added to one fresh process",
        "python_start": {k: round(start[k], 1) for k in FIELDS},
        "steps": rows,
        "total": {k: round(previous[k], 1) for k in FIELDS},
        "loadavg_after": [round(x, 2) for x in os.getloadavg()],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    for row in rows:
        sys.stdout.write(f"{row['Pss']:8.1f} MB PSS {row['Pss_Anon']:8.1f} anon  {row['step']}\n")
    sys.stdout.write(f"{report['total']['Pss']:8.1f} MB PSS in all\n")


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    main()
