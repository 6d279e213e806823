"""Polling runs of ``annotate_corpus`` with a batch-mode agent (the scripted OpenAI Batch API,
real SDK, real media): while every batch a recording waits on is still running, a run leaves
the recording undecoded (no sampling, no preprocess) and reports it waiting; the run after the
batch ended processes it as before and commits every row; a rerun then makes no call."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from emoforge.flows.annotate import annotate_corpus
from emoforge.preprocess.extractor import FeatureExtractor
from emoforge.preprocess.media import MediaDecoder
from emoforge.storage.batches import pending_batches
from emoforge.storage.records import Status
from emoforge.storage.shards import read_rows
from tests.agents.batch_servers import OpenAIBatchFake
from tests.conftest import count_calls, espeak


@pytest.fixture()
def stage_calls(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Counts real decode and feature extraction calls (the wrapped methods still do the work)."""
    return count_calls(monkeypatch, {"decode": (MediaDecoder, "decode"), "extract": (FeatureExtractor, "extract")})


def _overrides(base_url: str) -> dict[str, Any]:
    llm = {
        "name": "gpt", "backend": "openai", "model": "m1", "base_url": base_url, "api_key_env": "EMOFORGE_TEST_KEY",
        "mode": "batch", "modalities": ["text", "voice"], "price": {"input_per_mtok": 2.0, "output_per_mtok": 8.0},
    }  # fmt: skip
    jury = [{"name": "voice", "backend": "voice_cues"}, llm]
    return {"agents": {"jury": jury, "taxonomy": {"embedding_model": None}}, "preprocess": {"face": {"enabled": False}}}


def _retrieves(fake: OpenAIBatchFake) -> int:
    return sum(1 for method, path in fake.calls if method == "GET" and path.startswith("/v1/batches/"))


@pytest.mark.parametrize("policy", ["full", "adaptive"])
def test_recordings_waiting_on_running_batches_are_not_decoded(
    fake: OpenAIBatchFake, stage_calls: Counter[str], tmp_path: Path, policy: str
) -> None:
    """With ``policy: adaptive`` the paid agent's round is the batch (a bar no jury reaches:
    the free voice cues never decide alone), and a recording waiting on it is held the same way."""
    (tmp_path / "in").mkdir()
    wav = espeak("I can not believe it. This is wonderful news, truly wonderful!", tmp_path / "in" / "talk.wav")
    out = str(tmp_path / "corpus")
    overrides = _overrides(fake.base_url)
    if policy == "adaptive":
        overrides["agents"].update(policy="adaptive", adaptive={"min_confidence": 1.0})
    fake.polls_before_end = 2

    def run() -> Any:
        return annotate_corpus(inputs=[str(wav)], out=out, overrides=overrides)

    first = run()  # decodes, extracts, submits one batch; rows held back
    assert stage_calls == Counter(decode=1, extract=1)
    assert first.rows_written == 0 and first.rows_pending >= 1 and first.recordings_waiting == 0
    assert len(fake.creates) == 1 and len(pending_batches(out)) == 1
    segments = first.rows_pending

    for polls in (1, 2):  # the batch is still running: the recording is left undecoded
        waiting = run()
        assert stage_calls == Counter(decode=1, extract=1), "a waiting recording was decoded or extracted"
        assert waiting.recordings == 1 and waiting.recordings_waiting == 1
        assert waiting.rows_pending == segments and waiting.rows_written == 0
        assert _retrieves(fake) == polls  # one retrieve per run for the one batch
        assert [b["state"] for b in pending_batches(out)] == ["in_progress"]

    done = run()  # ended: processed as before, the annotate phase collects
    assert stage_calls == Counter(decode=2, extract=2)
    assert done.recordings_waiting == 0 and done.rows_pending == 0 and done.rows_written == segments
    rows = list(read_rows(out))
    assert len(rows) == segments
    for row in rows:
        assert row.status == Status.ok
        assert [(a.agent, a.status) for a in row.annotations] == [("voice", Status.ok), ("gpt", Status.ok)]
        assert row.jury is not None and row.jury.policy == policy
    assert pending_batches(out) == [] and len(fake.creates) == 1

    calls = len(fake.calls)
    again = run()  # committed: skipped undecoded, nothing asked of the provider
    assert again.recordings_skipped == 1 and again.rows_written == 0
    assert len(fake.calls) == calls and stage_calls == Counter(decode=2, extract=2)
