"""Provider limits are enforced while LLM agents run: two runs' worth of recordings in parallel
never talk to one provider at once when its Prefect global concurrency limit has one slot.

The provider is a local OpenAI-compatible HTTP server that holds each request until a second
request is in flight (once) or ``hold_s`` passes, and records how many were in flight at once. With
a long hold, any two recordings annotated at the same time must meet there, so the unlimited
control run shows the check can fail (2 in flight); with the limit, requests never overlap.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from emoforge.configs import load_config
from emoforge.flows.annotate import annotate_corpus
from emoforge.flows.runners import task_runner
from emoforge.storage.shards import read_rows
from tests.agents.test_llm_fakes import GOOD, completion
from tests.integration.orchestration.conftest import copy_clips


class HoldingProvider:
    """Chat completions on 127.0.0.1 that hold each request to expose concurrency."""

    def __init__(self) -> None:
        self.hold_s = 0.0
        self.in_flight = 0
        self.max_in_flight = 0
        self.requests = 0
        self._cond = threading.Condition()
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers["content-length"]))
                provider._enter()
                data = json.dumps(completion(json.dumps(GOOD))).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def _enter(self) -> None:
        with self._cond:
            self.requests += 1
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            self._cond.notify_all()
            deadline = time.monotonic() + self.hold_s
            # Held until a peer arrives (then both go, and nothing is held again) or the hold runs out.
            while self.max_in_flight < 2 and (left := deadline - time.monotonic()) > 0:
                self._cond.wait(left)
            self.in_flight -= 1

    def reset(self, hold_s: float) -> None:
        with self._cond:
            self.hold_s, self.max_in_flight, self.requests = hold_s, 0, 0


@pytest.fixture(scope="module")
def provider() -> Iterator[HoldingProvider]:
    p = HoldingProvider()
    yield p
    p.server.shutdown()


def _run(provider: HoldingProvider, inputs: list[str], out: Path, limits: dict[str, int]) -> None:
    overrides: dict[str, Any] = {
        "agents": {
            "jury": [
                {
                    "name": "llm",
                    "backend": "openai_compatible",
                    "model": "m",
                    "base_url": provider.base_url,
                    "modalities": ["text", "voice"],
                    "concurrency": 4,
                    "max_retries": 0,
                    "timeout_s": 120,
                },
                {"name": "voice", "backend": "voice_cues"},
            ],
            "cache": {"enabled": False},
        },
        "run": {"task_runner": "thread", "workers": 2, "provider_limits": limits},
    }
    runner = task_runner(load_config(None, overrides).run)
    summary = annotate_corpus.with_options(task_runner=runner)(inputs=inputs, out=str(out), overrides=overrides)
    assert summary.recordings == len(inputs)
    rows = read_rows(str(out))
    llm = [a for r in rows for a in r.annotations if a.agent == "llm"]
    assert llm and all(a.status.value == "ok" for a in llm), [a.failure for a in llm]


def test_one_slot_keeps_parallel_recordings_off_the_provider_at_once(
    provider: HoldingProvider, clips: list[Path], tmp_path: Path
) -> None:
    folder = copy_clips(clips, tmp_path / "media", n=2)
    inputs = [str(p) for p in sorted(folder.iterdir())]

    # Control, no limit: the two recordings' requests meet at the provider.
    provider.reset(hold_s=60.0)
    _run(provider, inputs, tmp_path / "free", limits={})
    assert provider.max_in_flight == 2

    # One slot for openai_compatible: a request waits out its hold alone every time.
    provider.reset(hold_s=3.0)
    _run(provider, inputs, tmp_path / "limited", limits={"openai_compatible": 1})
    assert provider.requests >= 2
    assert provider.max_in_flight == 1
