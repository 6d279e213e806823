"""LLM annotation throughput against the local llama.cpp server, and cached-rerun call count.

Starts llama.cpp serving the packaged Gemma-3-270M (tests/llm_server.py), annotates
``--segments`` fixture-like segments with an openai_compatible agent at each
``--concurrency`` level (the jury's per-provider limit; segments submitted from that
many threads), then reruns the same segments on the same cache and counts the requests
that reached the server (expected: 0). Writes benchmarks/results/llm.json.

    .venv/bin/python benchmarks/bench_llm.py --segments 4 --concurrency 1 2
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from emoforge.agents.jury import Jury  # noqa: E402
from emoforge.configs.agents import AgentConfig, AgentsConfig, CacheConfig, TaxonomyConfig  # noqa: E402
from emoforge.storage.records import Annotation, RunContext  # noqa: E402
from tests.agents.conftest import make_features, make_segment  # noqa: E402
from tests.llm_server import MODEL_ALIAS, LlamaServer, start_llama_server  # noqa: E402

log = logging.getLogger("bench_llm")

LINES = [
    "None of you are good people. I'm so old, but I've been kicked around by you guys.",
    "It doesn't really matter anymore, what about the future?",
    "But no matter how beautiful or rotten the memories are, they will not change.",
    "I can not believe it. This is wonderful news!",
]


def run_level(server: LlamaServer, concurrency: int, n: int, cache: Path, max_tokens: int) -> dict[str, object]:
    agent = AgentConfig(
        name="gemma",
        backend="openai_compatible",
        model=MODEL_ALIAS,
        base_url=server.base_url,
        max_output_tokens=max_tokens,
        max_reasks=1,
        max_retries=0,
        timeout_s=600,
        concurrency=concurrency,
    )
    config = AgentsConfig(
        jury=[agent], taxonomy=TaxonomyConfig(embedding_model=None), cache=CacheConfig(path=str(cache))
    )
    ctx = RunContext(run_id=f"bench-c{concurrency}", config_hash="bench", emoforge_version="0.1.0")
    items = []
    for i in range(n):
        seg = make_segment(i, rec=f"bench-c{concurrency}")
        items.append((seg, make_features(seg, text=LINES[i % len(LINES)])))

    def annotate_all(jury: Jury) -> tuple[list[Annotation], float]:
        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            out = list(pool.map(lambda sf: jury.annotate(*sf)[0], items))
        return out, time.perf_counter() - started

    load_before = os.getloadavg()[0]
    before = server.request_count()
    jury = Jury(config, ctx)
    first, wall = annotate_all(jury)
    load_after = os.getloadavg()[0]
    jury.close()
    calls = server.request_count() - before
    before = server.request_count()
    jury = Jury(config, ctx)
    again, wall_cached = annotate_all(jury)
    jury.close()
    out_tokens = sum(a.usage.output_tokens for a in first)
    return {
        "concurrency": concurrency,
        # other processes share these CPUs: compare levels only at similar load
        "load_avg_1min_before_after": [round(load_before, 2), round(load_after, 2)],
        "segments": n,
        "ok": sum(a.status == "ok" for a in first),
        "failed_by_kind": {
            k: sum(1 for a in first if a.failure and a.failure.kind == k)
            for k in {a.failure.kind for a in first if a.failure}
        },
        "provider_calls": calls,
        "wall_s": round(wall, 2),
        "segments_per_s": round(n / wall, 4),
        "output_tokens": out_tokens,
        "output_tokens_per_s": round(out_tokens / wall, 2),
        "mean_latency_s": round(sum(a.usage.latency_s for a in first) / n, 2),
        "cached_rerun_provider_calls": server.request_count() - before,
        "cached_rerun_all_cached": all(a.usage.cached for a in again),
        "cached_rerun_wall_s": round(wall_cached, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--segments", type=int, default=4)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--max-tokens", type=int, default=200)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "llm.json")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    with tempfile.TemporaryDirectory() as tmp:
        server = start_llama_server(Path(tmp))
        try:
            levels = []
            for c in args.concurrency:
                levels.append(run_level(server, c, args.segments, Path(tmp) / f"cache-{c}", args.max_tokens))
                log.info("%s", levels[-1])
        finally:
            server.stop()
    result = {
        "benchmark": "llm",
        "model": "gemma-3-270m Q4_K_M (llama-cpp-python server, --chat_format gemma, json_object+schema)",
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "load_avg": os.getloadavg()},
        "max_output_tokens": args.max_tokens,
        "levels": levels,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    log.info("wrote %s", args.out)


if __name__ == "__main__":
    main()
