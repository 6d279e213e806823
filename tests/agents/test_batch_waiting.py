"""``waiting_recordings`` (agents/batch_waiting.py) against the scripted OpenAI Batch API and the
real SDK: one poll per pending batch names the recordings whose batches all still run; a batch
that ended, a poll that fails (unreachable provider, missing key), a batch recorded before
requests carried their recording, or one whose agent left the batch-mode jury skips nothing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from emoforge.agents.batch_waiting import waiting_recordings
from emoforge.configs.agents import AgentConfig
from emoforge.storage.batches import BatchBook
from tests.agents.batch_servers import OpenAIBatchFake
from tests.agents.test_batch import (
    agent,
    api_key,  # noqa: F401 - autouse: sets the key the backend reads
    asks_for,
    runner,
)


@pytest.fixture()
def fake() -> Iterator[OpenAIBatchFake]:
    server = OpenAIBatchFake()
    yield server
    server.close()


def _submit(fake: OpenAIBatchFake, corpus: Path, polls_before_end: int = 1) -> AgentConfig:
    """One batch of 3 requests (segments 0-2 of recording ``clip-abc``), sent by run-1."""
    fake.polls_before_end = polls_before_end
    annotator = agent("openai", fake.base_url, corpus / "cache")
    assert runner(annotator, corpus, "run-1").settle(asks_for(annotator)) == {}  # all pending
    assert len(fake.creates) == 1
    return annotator.config


def _retrieves(fake: OpenAIBatchFake) -> int:
    return sum(1 for method, path in fake.calls if method == "GET" and path.startswith("/v1/batches/"))


def test_running_batch_holds_its_recording_until_it_ends(fake: OpenAIBatchFake, tmp_path: Path) -> None:
    config = _submit(fake, tmp_path)
    ids = {f"clip-abc-{i:05d}" for i in range(3)}
    assert waiting_recordings(str(tmp_path), [config]) == {"clip-abc": ids}
    assert _retrieves(fake) == 1  # one retrieve for the batch, not one per request or segment
    [record] = BatchBook(str(tmp_path)).pending()
    assert record.provider_state == "in_progress" and record.checked_at is not None  # `inspect` shows it

    # Ended at the provider: nothing waits, the annotate phase collects (it polls again itself).
    assert waiting_recordings(str(tmp_path), [config]) == {}
    assert _retrieves(fake) == 2
    # Not collected here: the record stays pending for the annotate phase to collect.
    assert [b.state for b in BatchBook(str(tmp_path)).pending()] == ["submitted"]


def test_a_failing_poll_skips_nothing(fake: OpenAIBatchFake, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = _submit(fake, tmp_path, polls_before_end=5)
    assert waiting_recordings(str(tmp_path), [config]) != {}  # the batch is running

    monkeypatch.delenv("EMOFORGE_TEST_KEY")  # auth: the backend has no key to send
    assert waiting_recordings(str(tmp_path), [config]) == {}
    monkeypatch.setenv("EMOFORGE_TEST_KEY", "sk-test-SECRET-123")

    fake.close()  # network: the provider does not answer (connection refused)
    assert waiting_recordings(str(tmp_path), [config]) == {}
    [record] = BatchBook(str(tmp_path)).pending()
    assert record.state == "submitted"  # a failed poll changes nothing in the book


def test_batches_that_cannot_be_attributed_or_collected_skip_nothing(fake: OpenAIBatchFake, tmp_path: Path) -> None:
    config = _submit(fake, tmp_path, polls_before_end=5)
    root = str(tmp_path)
    # The agent is no longer in mode: batch (or gone): no run would collect the batch.
    assert waiting_recordings(root, [config.model_copy(update={"mode": "realtime"})]) == {}
    assert waiting_recordings(root, []) == {}
    assert _retrieves(fake) == 0

    book = BatchBook(root)
    [record] = book.pending()
    old = [r.model_copy(update={"recording_id": None, "segment_id": None}) for r in record.requests]
    book.put(record.model_copy(update={"requests": old}))  # as written before requests named their recording
    assert waiting_recordings(root, [config]) == {}
    assert _retrieves(fake) == 0
