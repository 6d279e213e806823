"""Unset API keys and dead servers are found before the first call; a call never sent is not counted.

Before: a paid jury without its key ran, exited 0 and reported "calls 27 made", every vote a
``model_unavailable`` row whose reason ("OPENAI_API_KEY is not set") was only in the Parquet file.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from emoforge.agents.preflight import provider_problems
from emoforge.cli import app
from emoforge.configs import load_config
from emoforge.storage.records import ErrorKind, RunContext, Status
from tests.agents.conftest import make_features, make_segment
from tests.agents.provider_server import ScriptedProvider
from tests.agents.test_secrets import KEY_ENV as AGENT_KEY_ENV
from tests.agents.test_secrets import scripted_agent

REPO = Path(__file__).resolve().parents[2]
KEY_ENV = "EMOFORGE_PREFLIGHT_KEY"


@pytest.fixture()
def provider() -> Iterator[ScriptedProvider]:
    p = ScriptedProvider(behaviour={})
    yield p
    p.stop()


def _dead_url() -> str:
    with socket.socket() as s:  # a port nobody listens on once closed
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}/v1"


def _jury(*agents: str) -> dict[str, object]:
    return {"agents": {"jury": [json.loads(a) for a in agents]}}


def test_an_agent_without_its_key_sends_and_counts_no_call(
    provider: ScriptedProvider, ctx: RunContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(AGENT_KEY_ENV, raising=False)
    annotator = scripted_agent(provider, ctx, retries=2)
    seg = make_segment()
    ann = annotator.annotate(seg, make_features(seg))
    assert ann.status == Status.failed and ann.failure is not None
    assert (ann.failure.kind, ann.failure.message) == (
        ErrorKind.model_unavailable,
        f"env var {AGENT_KEY_ENV} is not set",
    )
    assert sum(provider.requests.values()) == 0
    assert (ann.usage.calls, ann.usage.attempts) == (0, 0)  # was 1 and 1: "calls 27 made", none sent


def test_unset_keys_and_dead_base_urls_are_each_named(
    provider: ScriptedProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(KEY_ENV, raising=False)
    dead = _dead_url()
    cfg = load_config(
        None,
        _jury(
            json.dumps({"name": "paid", "backend": "openai", "model": "m", "api_key_env": KEY_ENV}),
            json.dumps({"name": "local", "backend": "openai_compatible", "model": "m", "base_url": dead}),
            json.dumps({"name": "up", "backend": "openai_compatible", "model": "m", "base_url": provider.base_url}),
            json.dumps({"name": "face", "backend": "face_cues"}),
        ),
    )
    problems = provider_problems(cfg, timeout_s=2)
    assert [(p.agent, p.kind) for p in problems] == [("paid", "api_key_unset"), ("local", "base_url_unreachable")]
    assert problems[0].line() == f"agent paid: {KEY_ENV} is not set"
    assert problems[1].line().startswith(f"agent local: base_url {dead} does not answer")
    monkeypatch.setenv(KEY_ENV, "sk-test")
    assert [p.agent for p in provider_problems(cfg, timeout_s=2)] == ["local"]


def test_annotate_refuses_and_dry_run_warns(media_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for env in ("OPENAI_API_KEY", "GEMINI_API_KEY"):
        monkeypatch.delenv(env, raising=False)
    config = REPO / "configs" / "examples" / "llm-jury.yaml"
    args = [str(media_dir / "jfk.flac"), "--out", str(tmp_path / "corpus"), "--config", str(config)]
    res = CliRunner().invoke(app, ["annotate", *args])
    assert res.exit_code == 2, res.output
    lines = res.output.strip().splitlines()
    assert lines[:3] == [
        "error: agent gpt: OPENAI_API_KEY is not set",
        "error: agent gpt-audio: OPENAI_API_KEY is not set",
        "error: agent gemini: GEMINI_API_KEY is not set",
    ]
    assert lines[3].startswith("error: agent local: base_url http://127.0.0.1:8000/v1 does not answer")
    assert not (tmp_path / "corpus").exists()

    res = CliRunner().invoke(app, ["annotate", *args, "--dry-run"])
    assert res.exit_code == 0, res.output
    assert "warning: agent gpt: OPENAI_API_KEY is not set (annotate refuses to run until it is fixed)" in res.output
    estimate = json.loads(res.output[res.output.index("{") : res.output.rindex("}") + 1])
    assert estimate["provider_problems"][:3] == [line.removeprefix("error: ") for line in lines[:3]]
    assert estimate["calls"] > 0 and not estimate["ceiling"]
