"""Wall time of a polling run (batch-mode votes still at the provider) -> benchmarks/results/batch_polling.json.

    .venv/bin/python benchmarks/bench_batch_polling.py

Two fixture clips, the default preprocess, a voice cue agent and an OpenAI agent in
``mode: batch`` against the scripted Batch API (tests/agents/batch_servers.py, served by this
process; its batches keep running). Per mode, in a fresh corpus: one run submits the batches,
then ``--polls`` polling runs follow, each in a fresh child process as a scheduled
``emoforge annotate`` would be (cold model loads and Prefect start included, as a real polling
run pays them). ``before`` is the path before the waiting check (``waiting_recordings``
patched to report nothing: every recording is decoded, segmented and preprocessed again
until the annotate phase finds its batch running); ``after`` is the shipped path.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
OUT = REPO / "benchmarks" / "results" / "batch_polling.json"
CLIPS = ("sample_00000694.mp4", "sample_00003358.mp4")


def _child(mode: str, inputs: list[str], out: str, base_url: str) -> None:
    """One annotate run; prints its wall time and summary as JSON on the last line."""
    import emoforge.flows.annotate as flow

    if mode == "before":
        flow.waiting_recordings = lambda *_: {}  # type: ignore[assignment]
    llm = {
        "name": "gpt", "backend": "openai", "model": "m1", "base_url": base_url, "api_key_env": "EMOFORGE_TEST_KEY",
        "mode": "batch", "modalities": ["text", "voice"], "price": {"input_per_mtok": 2.0, "output_per_mtok": 8.0},
    }  # fmt: skip
    agents = {"jury": [{"name": "voice", "backend": "voice_cues"}, llm], "taxonomy": {"embedding_model": None}}
    started = time.perf_counter()
    summary = flow.annotate_corpus(inputs=inputs, out=out, overrides={"agents": agents})
    wall = time.perf_counter() - started
    keep = ("recordings", "recordings_waiting", "rows_written", "rows_pending")
    print(json.dumps({"wall_s": round(wall, 1), **{k: getattr(summary, k) for k in keep}}))


def _run(mode: str, inputs: list[str], out: str, base_url: str) -> dict[str, Any]:
    env = {**os.environ, "EMOFORGE_TEST_KEY": "sk-bench", "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    env.setdefault("PREFECT_HOME", tempfile.mkdtemp(prefix="emoforge-bench-prefect-"))
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, __file__, "--child", mode, out, base_url, *inputs],
        env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    result["process_wall_s"] = round(time.perf_counter() - started, 1)
    return result


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] == "--child":
        _child(args[1], args[4:], args[2], args[3])
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--polls", type=int, default=2, help="polling runs per mode")
    parser.add_argument("--out", type=Path, default=OUT)
    opts = parser.parse_args(args)
    from tests.agents.batch_servers import OpenAIBatchFake

    fixtures = Path(os.environ.get("EMOFORGE_FIXTURES", REPO.parent / "shared" / "fixtures"))
    inputs = [str(fixtures / "media" / c) for c in CLIPS]
    fake = OpenAIBatchFake()
    fake.polls_before_end = 10_000  # the batches run for the whole benchmark
    modes: dict[str, Any] = {}
    try:
        with tempfile.TemporaryDirectory(prefix="emoforge-bench-polling-") as tmp:
            for mode in ("before", "after"):
                out = f"{tmp}/{mode}"
                submit = _run(mode, inputs, out, fake.base_url)
                polls = [_run(mode, inputs, out, fake.base_url) for _ in range(opts.polls)]
                modes[mode] = {"submit_run": submit, "polling_runs": polls}
                print(f"[batch_polling] {mode}: {[p['wall_s'] for p in polls]} s", file=sys.stderr, flush=True)
    finally:
        fake.close()
    result = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "command": "benchmarks/bench_batch_polling.py " + " ".join(args),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "load": os.getloadavg()},
        "clips": list(CLIPS),
        "protocol": " ".join(__doc__.split("\n\n")[2].split()),
        "modes": modes,
        "polling_run_wall_s": {m: min(p["wall_s"] for p in v["polling_runs"]) for m, v in modes.items()},
    }
    opts.out.parent.mkdir(parents=True, exist_ok=True)
    opts.out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result["polling_run_wall_s"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
