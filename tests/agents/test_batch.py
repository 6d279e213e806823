"""Batch mode (agents/batch.py) with the real ``openai`` and ``google-genai`` SDKs against local
scripted batch servers (tests/agents/batch_servers.py): submit, then collect in a later run
into the response cache; a partly failed batch; an expired one; and a run killed between the
provider creating the batch and the batch id being recorded, whose resume adopts that batch
instead of creating a second one."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from emoforge.agents.batch import BatchRunner
from emoforge.agents.cache import ResponseCache
from emoforge.agents.costs import CostLedger
from emoforge.agents.jury import make_backend
from emoforge.agents.labels import LabelNormalizer
from emoforge.agents.llm import BatchAsk, LLMAnnotator
from emoforge.configs.agents import AgentConfig, Price, TaxonomyConfig
from emoforge.storage.batches import BatchBook, pending_batches
from emoforge.storage.records import Annotation, ErrorKind, RunContext, Status
from tests.agents.batch_servers import GeminiBatchFake, OpenAIBatchFake
from tests.agents.conftest import make_features, make_segment

ROOT = Path(__file__).resolve().parents[2]
PRICE = Price(input_per_mtok=2.0, output_per_mtok=8.0)
# The scripted answers bill 1000 + 200 tokens (OpenAI) and 812 + 95 (Gemini): at half of PRICE.
OPENAI_BATCH_USD = (1000 * 1.0 + 200 * 4.0) / 1e6
GEMINI_BATCH_USD = (812 * 1.0 + 95 * 4.0) / 1e6


@pytest.fixture(autouse=True)
def api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EMOFORGE_TEST_KEY", "sk-test-SECRET-123")


@pytest.fixture()
def openai_fake() -> Iterator[OpenAIBatchFake]:
    fake = OpenAIBatchFake()
    yield fake
    fake.close()


@pytest.fixture()
def gemini_fake() -> Iterator[GeminiBatchFake]:
    fake = GeminiBatchFake()
    yield fake
    fake.close()


def agent(backend: str, base_url: str, cache: Path, run_id: str = "run-1") -> LLMAnnotator:
    config = AgentConfig(
        name="llm", backend=backend, model="m1", base_url=base_url, api_key_env="EMOFORGE_TEST_KEY",  # type: ignore[arg-type]
        mode="batch", price=PRICE, max_output_tokens=300,
    )  # fmt: skip
    taxonomy = TaxonomyConfig(embedding_model=None)
    ctx = RunContext(run_id=run_id, config_hash="0123456789abcdef", emoforge_version="0.1.0")
    return LLMAnnotator(
        config, make_backend(config), ctx, taxonomy, LabelNormalizer(taxonomy), CostLedger(), ResponseCache(cache)
    )


def asks_for(annotator: LLMAnnotator, n: int = 3) -> list[BatchAsk]:
    out = []
    for i in range(n):
        seg = make_segment(i, 1.0 + 3 * i, 3.5 + 3 * i)
        ask = annotator.deferred(seg, make_features(seg))
        assert isinstance(ask, BatchAsk)  # nothing cached yet
        out.append(ask)
    return out


def runner(annotator: LLMAnnotator, corpus: Path, run_id: str) -> BatchRunner:
    return BatchRunner(annotator, BatchBook(str(corpus)), run_id, CostLedger())


def by_status(answers: dict[str, Annotation]) -> dict[str, tuple[str, str | None]]:
    return {k: (a.status.value, a.failure.kind.value if a.failure else a.primary_label) for k, a in answers.items()}


def test_openai_batch_is_sent_once_and_a_later_run_collects_it_into_the_cache(
    openai_fake: OpenAIBatchFake, tmp_path: Path
) -> None:
    openai_fake.polls_before_end = 1  # still running when the first run looks again
    llm = agent("openai", openai_fake.base_url, tmp_path / "cache")
    asks = asks_for(llm)
    first = runner(llm, tmp_path / "corpus", "run-1")
    assert first.settle(asks) == {}  # submitted: nothing to hand back yet
    assert first.settle(asks) == {}  # polled: in progress; nothing sent again
    assert len(openai_fake.creates) == 1
    create = openai_fake.creates[0]
    assert create["endpoint"] == "/v1/chat/completions" and create["completion_window"] == "24h"
    lines = openai_fake.input_lines("batch_0")
    assert [x["custom_id"] for x in lines] == [a.custom_id for a in asks]
    assert lines[0]["url"] == "/v1/chat/completions" and lines[0]["body"]["model"] == "m1"
    assert lines[0]["body"]["response_format"]["type"] == "json_schema"
    (listed,) = pending_batches(str(tmp_path / "corpus"))
    assert listed["provider"] == "openai" and listed["id"] == "batch_0" and listed["requests"] == 3
    assert listed["state"] == "in_progress"
    assert "sk-test-SECRET-123" not in (tmp_path / "corpus" / "batches.json").read_text()

    # The next run (a fresh process would build all of this again) collects.
    later = agent("openai", openai_fake.base_url, tmp_path / "cache", run_id="run-2")
    answers = runner(later, tmp_path / "corpus", "run-2").settle(asks)
    assert by_status(answers) == {a.annotation_id: ("ok", "happy") for a in asks}
    assert all(a.usage.cost_usd == pytest.approx(OPENAI_BATCH_USD) and a.usage.calls == 1 for a in answers.values())
    assert pending_batches(str(tmp_path / "corpus")) == []
    assert len(openai_fake.creates) == 1

    # Answers are in the response cache: a rerun, batch or realtime, asks the provider nothing.
    seen = len(openai_fake.calls)
    for ask in asks:
        again = later.deferred(ask.segment, make_features(ask.segment))
        assert isinstance(again, Annotation) and again.usage.cached and again.primary_label == "happy"
        assert later.annotate(ask.segment, make_features(ask.segment)).usage.cached
    assert len(openai_fake.calls) == seen


def test_a_partly_failed_batch_commits_what_succeeded_and_resends_only_the_failed_line(
    openai_fake: OpenAIBatchFake, tmp_path: Path
) -> None:
    llm = agent("openai", openai_fake.base_url, tmp_path / "cache")
    asks = asks_for(llm)
    openai_fake.fail_lines = {asks[1].custom_id: 500}
    first = runner(llm, tmp_path / "corpus", "run-1")
    assert first.settle(asks) == {}
    answers = first.settle(asks)  # the same run looks again: the batch has ended
    assert by_status(answers) == {
        asks[0].annotation_id: ("ok", "happy"),
        asks[1].annotation_id: ("failed", ErrorKind.provider_error.value),  # transient: resume redoes it
        asks[2].annotation_id: ("ok", "happy"),
    }
    assert "500" in (answers[asks[1].annotation_id].failure.message or "")  # type: ignore[union-attr]
    assert pending_batches(str(tmp_path / "corpus")) == []

    # Resume (--retry transient) redoes the row: the two answers come from the cache, the
    # failed request goes out again, alone, in a new batch.
    openai_fake.fail_lines = {}
    second = runner(llm, tmp_path / "corpus", "run-2")
    again = second.settle(asks)
    assert by_status(again) == {asks[0].annotation_id: ("ok", "happy"), asks[2].annotation_id: ("ok", "happy")}
    assert [x["custom_id"] for x in openai_fake.input_lines("batch_1")] == [asks[1].custom_id]
    assert by_status(second.settle([asks[1]])) == {asks[1].annotation_id: ("ok", "happy")}
    assert len(openai_fake.creates) == 2


@pytest.mark.parametrize(("final", "kind"), [("expired", ErrorKind.timeout), ("cancelled", ErrorKind.provider_error)])
def test_an_expired_or_cancelled_batch_keeps_its_answers_and_fails_the_rest_typed(
    openai_fake: OpenAIBatchFake, tmp_path: Path, final: str, kind: ErrorKind
) -> None:
    openai_fake.final, openai_fake.answered_before_end = final, 1
    llm = agent("openai", openai_fake.base_url, tmp_path / "cache")
    asks = asks_for(llm)
    first = runner(llm, tmp_path / "corpus", "run-1")
    assert first.settle(asks) == {}
    answers = first.settle(asks)
    assert by_status(answers) == {
        asks[0].annotation_id: ("ok", "happy"),
        asks[1].annotation_id: ("failed", kind.value),  # transient: resume sends them again
        asks[2].annotation_id: ("failed", kind.value),
    }
    (record,) = BatchBook(str(tmp_path / "corpus")).batches()
    assert record.state == "ended" and record.provider_state == final and record.answered == 1


def test_gemini_batch_mode_submit_collect_and_a_failed_line(gemini_fake: GeminiBatchFake, tmp_path: Path) -> None:
    llm = agent("gemini", gemini_fake.url, tmp_path / "cache")
    asks = asks_for(llm)
    gemini_fake.fail_lines = {asks[2].custom_id: 503}
    first = runner(llm, tmp_path / "corpus", "run-1")
    assert first.settle(asks) == {}
    (create,) = gemini_fake.creates
    record = BatchBook(str(tmp_path / "corpus")).batches()[0]
    assert create["batch"]["displayName"] == record.key and record.batch_id == "batches/b0"
    sent = create["batch"]["inputConfig"]["requests"]["requests"]
    assert [r["metadata"]["custom_id"] for r in sent] == [a.custom_id for a in asks]
    assert sent[0]["request"]["generationConfig"]["responseMimeType"] == "application/json"
    assert "systemInstruction" in sent[0]["request"]

    answers = runner(llm, tmp_path / "corpus", "run-2").settle(asks)
    assert by_status(answers) == {
        asks[0].annotation_id: ("ok", "happy"),
        asks[1].annotation_id: ("ok", "happy"),
        asks[2].annotation_id: ("failed", ErrorKind.provider_error.value),
    }
    assert answers[asks[0].annotation_id].usage.cost_usd == pytest.approx(GEMINI_BATCH_USD)
    assert len(gemini_fake.creates) == 1


def test_gemini_expired_batch_fails_every_line_as_a_timeout(gemini_fake: GeminiBatchFake, tmp_path: Path) -> None:
    gemini_fake.final = "BATCH_STATE_EXPIRED"
    llm = agent("gemini", gemini_fake.url, tmp_path / "cache")
    asks = asks_for(llm, 2)
    first = runner(llm, tmp_path / "corpus", "run-1")
    assert first.settle(asks) == {}
    answers = first.settle(asks)
    assert by_status(answers) == {a.annotation_id: ("failed", ErrorKind.timeout.value) for a in asks}
    assert "expired" in (answers[asks[0].annotation_id].failure.message or "")  # type: ignore[union-attr]


_SUBMIT = """
import sys
sys.path.insert(0, {root!r})
from pathlib import Path
from tests.agents.test_batch import agent, asks_for, runner
llm = agent({backend!r}, {url!r}, Path({cache!r}))
runner(llm, Path({corpus!r}), "run-killed").settle(asks_for(llm))
print("returned")  # only if the kill came too late
"""


@pytest.mark.parametrize("backend", ["openai", "gemini"])
def test_a_run_killed_after_the_batch_was_created_resumes_without_creating_it_again(
    backend: str, tmp_path: Path
) -> None:
    fake: OpenAIBatchFake | GeminiBatchFake = OpenAIBatchFake() if backend == "openai" else GeminiBatchFake()
    try:
        fake.create_delay_s = 30.0  # the batch exists at the provider while its id is on its way
        url = fake.base_url if isinstance(fake, OpenAIBatchFake) else fake.url
        code = _SUBMIT.format(
            root=str(ROOT), backend=backend, url=url, cache=str(tmp_path / "cache"), corpus=str(tmp_path / "corpus")
        )
        child = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env=dict(os.environ), stdout=subprocess.PIPE)
        deadline = time.monotonic() + 60
        while not fake.creates and child.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert fake.creates, "the child never reached the provider"
        child.send_signal(signal.SIGKILL)  # the provider has the batch; the child never got its id
        child.wait(timeout=10)
        assert child.stdout is not None and b"returned" not in child.stdout.read()
        (record,) = BatchBook(str(tmp_path / "corpus")).batches()
        assert record.batch_id is None and record.state in ("preparing", "uploaded")

        fake.create_delay_s = 0.0
        llm = agent(backend, url, tmp_path / "cache", run_id="run-resume")
        answers = runner(llm, tmp_path / "corpus", "run-resume").settle(asks_for(llm))
        assert len(answers) == 3 and all(a.status == Status.ok for a in answers.values())
        assert len(fake.creates) == 1  # adopted by its key, never created twice
        (record,) = BatchBook(str(tmp_path / "corpus")).batches()
        assert record.state == "ended" and record.batch_id is not None
        if isinstance(fake, OpenAIBatchFake):
            uploads = [f for f in fake.files if not f.startswith(("file-output", "file-error"))]
            assert len(uploads) == 1  # the resumed run did not upload the requests again either
    finally:
        fake.close()


def test_one_round_of_one_agent_over_many_segments_is_one_batch(
    openai_fake: OpenAIBatchFake, gemini_fake: GeminiBatchFake, tmp_path: Path, ctx: RunContext
) -> None:
    """The unit an adaptive jury's round can use: ``annotate_deferred`` with ``agents=`` for
    each segment, then one ``settle`` for all of them (agents/jury.py)."""
    from emoforge.agents.jury import Jury
    from emoforge.configs.agents import AgentsConfig

    common = {"api_key_env": "EMOFORGE_TEST_KEY", "mode": "batch", "price": PRICE, "modalities": ["text", "voice"]}
    config = AgentsConfig(
        jury=[
            AgentConfig(name="voice", backend="voice_cues"),
            AgentConfig(name="gpt", backend="openai", model="m1", base_url=openai_fake.base_url, **common),  # type: ignore[arg-type]
            AgentConfig(name="gem", backend="gemini", model="g1", base_url=gemini_fake.url, **common),  # type: ignore[arg-type]
        ],
        taxonomy=TaxonomyConfig(embedding_model=None),
    )
    jury = Jury(config, ctx, cache_dir=tmp_path / "cache")
    try:
        jury.use_batches(str(tmp_path / "corpus"), "run-1")
        gpt = next(a for a in jury.agents if a.name == "gpt")
        segments = [make_segment(i, 1.0 + 3 * i, 3.5 + 3 * i) for i in range(3)]
        asks = []
        for seg in segments:
            done, mine = jury.annotate_deferred(seg, make_features(seg), agents=[gpt])
            assert done == [] and len(mine) == 1
            asks += mine
        assert jury.settle(asks) == {}  # the round is out as one batch
        assert len(openai_fake.creates) == 1 and len(openai_fake.input_lines("batch_0")) == 3
        assert gemini_fake.creates == []  # the round asked only gpt
        jury.use_batches(str(tmp_path / "corpus"), "run-2")
        answers = jury.settle(asks)
        assert sorted(answers) == sorted(a.annotation_id for a in asks)
        assert jury.ledger.by_agent["gpt"].calls == 3
    finally:
        jury.close()
