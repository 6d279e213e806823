"""API keys never reach a shard or a log, even when the provider echoes them back.

The provider here is a real local HTTP server whose 500 body quotes the request's
``Authorization`` header and a ``?key=`` URL; the key travels through the real openai SDK,
the retry loop (which logs), the annotation's failure, a committed shard and the logs.
"""

from __future__ import annotations

import json
import logging
import secrets as pysecrets
import string
from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from emoforge.agents.backends.openai_compatible import OpenAICompatibleBackend
from emoforge.agents.backends.retry import RetryPolicy
from emoforge.agents.costs import CostLedger
from emoforge.agents.jury import Jury
from emoforge.agents.labels import LabelNormalizer
from emoforge.agents.llm import LLMAnnotator
from emoforge.configs.agents import AgentConfig, AgentsConfig, TaxonomyConfig
from emoforge.configs.storage import StorageConfig
from emoforge.flows.work import finished, segment_row
from emoforge.storage.records import ErrorKind, Failure, Recording, RunContext, Status
from emoforge.storage.secrets import REDACTED, register_secret_env, scrub
from emoforge.storage.shards import CorpusWriter, read_rows, shard_paths
from tests.agents.conftest import make_features, make_segment
from tests.agents.provider_server import ScriptedProvider

KEY_ENV = "EMOFORGE_ECHO_PROVIDER_KEY"


@pytest.fixture()
def key(monkeypatch: pytest.MonkeyPatch) -> str:
    value = f"sk-proj-{pysecrets.token_hex(16)}"
    monkeypatch.setenv(KEY_ENV, value)
    return value


@pytest.fixture()
def provider() -> Iterator[ScriptedProvider]:
    p = ScriptedProvider(behaviour={"echo-model": "500"})
    yield p
    p.stop()


def scripted_agent(provider: ScriptedProvider, ctx: RunContext, retries: int = 1) -> LLMAnnotator:
    """An OpenAI-compatible agent on the scripted local provider, its key read from ``KEY_ENV``."""
    config = AgentConfig(
        name="gw",
        backend="openai_compatible",
        model="echo-model",
        base_url=provider.base_url,
        api_key_env=KEY_ENV,
        max_retries=retries,
        timeout_s=10,
    )
    taxonomy = TaxonomyConfig(embedding_model=None)
    return LLMAnnotator(
        config,
        OpenAICompatibleBackend(config),
        ctx,
        taxonomy,
        LabelNormalizer(taxonomy),
        CostLedger(None),
        retry_policy=RetryPolicy(max_retries=retries, sleep=lambda s: None),
    )


def test_a_key_echoed_by_the_provider_is_in_no_shard_and_no_log(
    provider: ScriptedProvider, ctx: RunContext, key: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    seg = make_segment()
    with caplog.at_level(logging.DEBUG):
        ann = scripted_agent(provider, ctx).annotate(seg, make_features(seg))
    # The server really saw the key and really echoed it: the test can fail.
    assert provider.requests["echo-model"] == 2
    assert provider.seen[0].headers["authorization"] == f"Bearer {key}"
    assert ann.status == Status.failed and ann.failure is not None
    assert ann.failure.kind == ErrorKind.provider_error and ann.failure.message.startswith("500 server error")
    assert "upstream rejected headers" in ann.failure.message and REDACTED in ann.failure.message
    assert key not in ann.failure.message and key[8:20] not in ann.failure.message
    assert "retrying after" in caplog.text and key not in caplog.text

    # Committed to a shard and read back: nothing of the key in the file's bytes either.
    rec = Recording(id=seg.recording_id, uri="x.wav", sha256="0" * 64, size_bytes=1)
    writer = CorpusWriter(str(tmp_path), StorageConfig(compression="none"), "run-1")
    writer.write([finished(segment_row(rec, seg, 1, "run-1", "cfg").model_copy(update={"annotations": [ann]}))])
    writer.close()
    (path,) = shard_paths(str(tmp_path))
    assert key.encode() not in Path(path).read_bytes()
    (row,) = read_rows(str(tmp_path))
    assert row.failure is not None and key not in row.failure.message
    assert key not in json.dumps(pq.read_table(path).to_pylist(), default=str)


def test_a_crashing_agent_whose_exception_holds_the_key_is_logged_and_stored_scrubbed(
    ctx: RunContext, key: str, caplog: pytest.LogCaptureFixture
) -> None:
    class Leaky:
        name = "leaky"
        backend = "openai"

        def annotate(self, *args: object, **kwargs: object) -> None:
            raise RuntimeError(f"client built with api_key={key} failed")

        def close(self) -> None:
            pass

    jury = Jury(AgentsConfig(jury=[], taxonomy=TaxonomyConfig(embedding_model=None), cache={"enabled": False}), ctx)
    jury.agents = [Leaky()]  # type: ignore[list-item]
    seg = make_segment()
    with caplog.at_level(logging.ERROR):
        (ann,) = jury.annotate(seg, make_features(seg))
    jury.close()
    assert ann.failure is not None and ann.failure.kind == ErrorKind.internal
    assert "RuntimeError: client built with api_key=" in ann.failure.message and key not in ann.failure.message
    assert "agent leaky crashed" in caplog.text and "Traceback" in caplog.text
    assert key not in caplog.text


def test_patterns_are_scrubbed_and_ordinary_messages_kept() -> None:
    text = (
        "401: Authorization: Bearer abc.def-ghi_123 rejected; key sk-live-0123456789abcdef; "
        "GET /v1/models?key=AIzaSyA-0123456789abcdefghijklmno&alt=json; token: tok_987654321"
    )
    out = scrub(text)
    for secret in ("abc.def-ghi_123", "0123456789abcdef", "AIzaSyA-0123456789", "tok_987654321"):
        assert secret not in out
    assert out.startswith("401: Authorization: Bearer [redacted] rejected") and "&alt=json" in out
    for ordinary in (
        "429 rate limited",
        "500 server error: upstream timeout after 30 s",
        "invalid after 2 re-asks: primary_label: Input should be 'happy'",
        "max_output_tokens=300 exceeded; input_tokens: 1200",
        "env var OPENAI_API_KEY is not set",
    ):
        assert scrub(ordinary) == ordinary
    assert scrub(scrub(text)) == scrub(text)  # idempotent: stored messages are scrubbed again on read


@settings(max_examples=60, deadline=None)
@given(
    value=st.text(alphabet=string.ascii_letters + string.digits + "-_.", min_size=8, max_size=64),
    before=st.text(max_size=40),
    after=st.text(max_size=40),
)
def test_a_configured_key_value_never_survives_a_failure_record(value: str, before: str, after: str) -> None:
    import os

    assume(value not in REDACTED)  # a "key" spelled like the placeholder cannot be told apart
    register_secret_env("EMOFORGE_PROPERTY_KEY")
    old = os.environ.get("EMOFORGE_PROPERTY_KEY")
    os.environ["EMOFORGE_PROPERTY_KEY"] = value
    try:
        failure = Failure(stage="annotate", kind=ErrorKind.provider_error, message=f"{before}{value}{after}")
        assert value not in failure.message
    finally:
        if old is None:
            os.environ.pop("EMOFORGE_PROPERTY_KEY", None)
        else:
            os.environ["EMOFORGE_PROPERTY_KEY"] = old


def test_the_cli_scrubs_third_party_log_lines_too() -> None:
    import subprocess
    import sys

    code = (
        "import logging; from emoforge.cli import _main; _main(verbose=True); "
        "logging.getLogger('httpx').warning('POST /v1 headers Authorization: Bearer sk-live-SECRET123456789abcdef')"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "httpx" in done.stderr and "POST /v1" in done.stderr
    assert "SECRET123456789abcdef" not in done.stderr
