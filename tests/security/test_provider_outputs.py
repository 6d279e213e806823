"""Rows 6 and 8 of docs/security.md: batch files that are not what the project wrote.

Row 6: ``<out>/batches.json`` is a file anyone could edit. A request's ``cache_key`` decides
where its answer is cached, so a key that is a path (``////abs/path/x``) must never become
one, and a key swapped with another request's must not attach one segment's answer to
another: such requests fail as ``invalid_input``, the rest are collected.

Row 8: a provider's batch output with a truncated line, a line that is not an object and a
line whose body is not a chat completion: each fails only its own request (or leaves it
unanswered, a typed failure), the other answers are collected and the batch ends.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from emoforge.agents.cache import CacheKeyError, ResponseCache
from emoforge.storage.batches import pending_batches
from emoforge.storage.records import ErrorKind
from tests.agents.batch_servers import OpenAIBatchFake
from tests.agents.test_batch import agent, api_key, asks_for, by_status, openai_fake, runner

__all__ = ["api_key", "openai_fake"]  # the batch tests' fixtures: the key in the environment, the fake API

PRECIOUS = '{"the": "user\'s own file"}'


def _tamper(corpus: Path, change: dict[int, dict[str, str]]) -> None:
    path = corpus / "batches.json"
    book = json.loads(path.read_text())
    for i, fields in change.items():
        book["batches"][0]["requests"][i].update(fields)
    path.write_text(json.dumps(book))


def test_row6_a_tampered_cache_key_is_never_a_path_and_swapped_keys_attach_nothing(
    openai_fake: OpenAIBatchFake, tmp_path: Path
) -> None:
    victim = tmp_path / "home" / "manifest.json"
    victim.parent.mkdir()
    victim.write_text(PRECIOUS)
    llm = agent("openai", openai_fake.base_url, tmp_path / "cache")
    asks = asks_for(llm, n=4)
    corpus = tmp_path / "corpus"
    assert runner(llm, corpus, "run-1").settle(asks) == {}  # submitted
    as_path = "////" + str(victim)[: -len(".json")]
    _tamper(
        corpus,
        {
            0: {"cache_key": as_path},
            1: {"cache_key": asks[2].cache_key},  # swapped with request 2
            2: {"cache_key": asks[1].cache_key},
        },
    )
    answers = runner(llm, corpus, "run-2").settle(asks)
    assert victim.read_text() == PRECIOUS
    assert list((tmp_path / "home").iterdir()) == [victim]
    assert by_status(answers) == {
        asks[0].annotation_id: ("failed", ErrorKind.invalid_input.value),
        asks[1].annotation_id: ("failed", ErrorKind.invalid_input.value),
        asks[2].annotation_id: ("failed", ErrorKind.invalid_input.value),
        asks[3].annotation_id: ("ok", "happy"),
    }
    assert "batches.json" in (answers[asks[1].annotation_id].failure.message or "")  # type: ignore[union-attr]
    assert pending_batches(str(corpus)) == []
    # The swapped keys' prompts were never answered under the other's key.
    cache = ResponseCache(tmp_path / "cache")
    assert cache.get(asks[1].cache_key) is None and cache.get(asks[2].cache_key) is None


def test_row6_the_response_cache_refuses_a_key_that_is_a_path(tmp_path: Path) -> None:
    cache = ResponseCache(tmp_path / "cache")
    for bad in ("////etc/passwd", "../" * 3 + "x", "A" * 64, "0" * 63):
        with pytest.raises(CacheKeyError):
            cache.put(bad, {"x": 1})
    assert not (tmp_path / "cache").exists()


def _garble(kind: str, text: str) -> str:
    if kind != "output":
        return text
    lines = text.splitlines()
    lines[0] = lines[0][: len(lines[0]) // 2]  # truncated mid-line
    lines[1] = "[1, 2, 3]"  # not an object
    bad = json.loads(lines[2])
    bad["response"]["body"] = {"choices": "not a list", "id": 7}  # not a chat completion
    lines[2] = json.dumps(bad)
    return "\n".join(lines) + "\n"


def test_row8_bad_lines_fail_only_their_requests_and_the_batch_ends(
    openai_fake: OpenAIBatchFake, tmp_path: Path
) -> None:
    openai_fake.mangle = _garble
    llm = agent("openai", openai_fake.base_url, tmp_path / "cache")
    asks = asks_for(llm, n=4)
    first = runner(llm, tmp_path / "corpus", "run-1")
    assert first.settle(asks) == {}
    answers = first.settle(asks)
    assert by_status(answers) == {
        asks[0].annotation_id: ("failed", ErrorKind.provider_error.value),  # no readable line: unanswered
        asks[1].annotation_id: ("failed", ErrorKind.provider_error.value),
        asks[2].annotation_id: ("failed", ErrorKind.malformed_output.value),
        asks[3].annotation_id: ("ok", "happy"),
    }
    assert "without an answer" in (answers[asks[0].annotation_id].failure.message or "")  # type: ignore[union-attr]
    assert pending_batches(str(tmp_path / "corpus")) == []  # ended, not submitted forever
    # The answered line is in the cache: the next run asks nothing for it.
    assert ResponseCache(tmp_path / "cache").get(asks[3].cache_key) is not None
