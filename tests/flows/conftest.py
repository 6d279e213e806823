"""Fixtures shared by the flow tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.agents.batch_servers import OpenAIBatchFake


@pytest.fixture()
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[OpenAIBatchFake]:
    """The scripted OpenAI Batch API, with the key its agents read from the environment."""
    monkeypatch.setenv("EMOFORGE_TEST_KEY", "sk-test-SECRET-123")
    server = OpenAIBatchFake()
    yield server
    server.close()
