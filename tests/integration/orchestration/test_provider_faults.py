"""Fault injection: providers that answer 429, 500 and timeouts, then recover.

The corpus is annotated for real (espeak clips, the full flow on the session's Prefect
server) by a jury of a cue agent and four LLM agents on one scripted local server, each
agent on its own model name so its provider can be broken alone; the LLM judge is on the
same server. First run: three agents and the judge fail (rate limit, server error,
timeout), one agent answers; the rows are ok (an agent answered) and every failure is
typed. After the provider recovers, a resume redoes exactly the failed agents (the cache
answers the one that had answered: zero requests for it), re-judges and re-aggregates
those segments, and the corpus equals one written by an uninterrupted run with a healthy
provider: no row lost, none duplicated. A third run has nothing left to do.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from emoforge.flows.annotate import annotate_corpus
from emoforge.storage.records import TRANSIENT_ERRORS, ErrorKind, SegmentRow, Status
from emoforge.storage.shards import read_rows
from tests.agents.provider_server import ScriptedProvider
from tests.integration.orchestration.conftest import copy_clips, raw_row_ids, row_digest

AGENT_MODELS = {"llm-429": "m-429", "llm-500": "m-500", "llm-slow": "m-slow", "llm-ok": "m-ok"}
JUDGE_MODEL = "m-judge"
BROKEN = {"m-429": "429", "m-500": "500", "m-slow": "timeout", JUDGE_MODEL: "429"}
EXPECTED_KIND = {
    "llm-429": ErrorKind.rate_limited,
    "llm-500": ErrorKind.provider_error,
    "llm-slow": ErrorKind.timeout,
}


@pytest.fixture()
def provider() -> Iterator[ScriptedProvider]:
    p = ScriptedProvider(hold_s=3.0)
    yield p
    p.stop()


def _llm(name: str, model: str, base_url: str) -> dict[str, Any]:
    return {
        "name": name,
        "backend": "openai_compatible",
        "model": model,
        "base_url": base_url,
        "modalities": ["text", "voice"],
        "max_retries": 0,  # in-run retries are tested elsewhere; here every fault must reach the corpus
        "timeout_s": 1.0,
    }


def _overrides(base_url: str) -> dict[str, Any]:
    return {
        "agents": {
            "jury": [
                {"name": "voice", "backend": "voice_cues"},
                *(_llm(name, model, base_url) for name, model in AGENT_MODELS.items()),
            ],
        },
        "judge": {"backend": "llm", "llm": _llm("judge-llm", JUDGE_MODEL, base_url)},
        "run": {"task_runner": "thread", "workers": 2},
    }


def _annotations(rows: list[SegmentRow]) -> dict[tuple[str, str], tuple[str, str | None, tuple[str, ...]]]:
    """(row, agent) -> (status, failure kind, labels)."""
    return {
        (r.row_id, a.agent): (a.status.value, a.failure.kind.value if a.failure else None, tuple(a.labels))
        for r in rows
        for a in r.annotations
    }


def test_failed_agents_are_redone_after_the_provider_recovers_and_nothing_else_is_asked_again(
    provider: ScriptedProvider, clips: list[Path], tmp_path: Path
) -> None:
    folder = copy_clips(clips, tmp_path / "media", n=2)
    overrides = _overrides(provider.base_url)

    # Reference: one uninterrupted run against a healthy provider.
    reference = str(tmp_path / "reference")
    annotate_corpus(inputs=[str(folder)], out=reference, overrides=overrides)
    ref_rows = list(read_rows(reference))
    segments = len(ref_rows)
    assert segments >= 2 and all(r.status == Status.ok for r in ref_rows)

    # Run 1: three agents and the judge fail; the cue agent and llm-ok answer.
    provider.set(**BROKEN)  # type: ignore[arg-type]
    provider.reset_counts()
    out = str(tmp_path / "corpus")
    first = annotate_corpus(inputs=[str(folder)], out=out, overrides=overrides)
    assert first.rows_written == segments
    rows = list(read_rows(out))
    assert all(r.status == Status.ok for r in rows)  # an agent answered: the row status hides the faults
    for (_, agent), (status, kind, _) in _annotations(rows).items():
        if agent in EXPECTED_KIND:
            assert (status, kind) == ("failed", EXPECTED_KIND[agent].value)
        else:
            assert status == "ok"
    judge_kinds = Counter(v.failure.kind for r in rows for v in r.verdicts if v.failure is not None)
    assert judge_kinds[ErrorKind.rate_limited] == 2 * segments  # the two answers could not be judged
    all_kinds = {k for r in rows for a in r.annotations if a.failure for k in [a.failure.kind]} | set(judge_kinds)
    assert ErrorKind.internal not in all_kinds  # every failure typed
    assert all(k in TRANSIENT_ERRORS or k == ErrorKind.invalid_input for k in all_kinds)

    # Still broken, --retry none: nothing is redone and nothing asked.
    provider.reset_counts()
    none = annotate_corpus(inputs=[str(folder)], out=out, overrides=overrides, retry="none")
    assert none.rows_written == 0 and sum(provider.requests.values()) == 0

    # The provider recovers. Resume redoes exactly the failed agents, and the judge.
    provider.set(**{m: "ok" for m in BROKEN})  # type: ignore[arg-type]
    provider.reset_counts()
    resumed = annotate_corpus(inputs=[str(folder)], out=out, overrides=overrides)
    assert resumed.rows_written == segments
    assert provider.requests == Counter(
        {"m-429": segments, "m-500": segments, "m-slow": segments, JUDGE_MODEL: 5 * segments}
    )  # m-ok: 0 requests, the response cache answered it; the judge scores all five answers anew

    rows = list(read_rows(out))
    ids = [r.row_id for r in rows]
    assert len(ids) == len(set(ids)) == segments  # none lost, none duplicated
    assert set(raw_row_ids(out)) == {r.row_id for r in ref_rows}
    assert _annotations(rows) == _annotations(ref_rows)
    assert row_digest(out) == row_digest(reference)  # re-aggregated: same consensus as the clean run
    for r in rows:
        assert len(r.verdicts) == 5 and all(v.status == Status.ok for v in r.verdicts)

    # Nothing left: a further run asks nothing and writes nothing.
    provider.reset_counts()
    again = annotate_corpus(inputs=[str(folder)], out=out, overrides=overrides)
    assert again.rows_written == 0 and sum(provider.requests.values()) == 0


def test_a_timeout_inside_a_stage_is_typed_transient_and_redone_on_resume(
    clips: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from emoforge.flows.phase import failure_kind
    from emoforge.preprocess.extractor import FeatureExtractor

    assert failure_kind(TimeoutError("read timed out")) == ErrorKind.timeout
    assert failure_kind(ConnectionResetError(104, "reset by peer")) == ErrorKind.provider_error
    assert failure_kind(ValueError("bad shape")) == ErrorKind.internal  # a bug: not retried by default

    folder = copy_clips(clips, tmp_path / "media", n=1)
    out = str(tmp_path / "corpus")
    overrides: dict[str, Any] = {"agents": {"jury": [{"name": "voice", "backend": "voice_cues"}]}}
    reference = str(tmp_path / "reference")
    annotate_corpus(inputs=[str(folder)], out=reference, overrides=overrides)

    real = FeatureExtractor.extract

    def stalled(self: FeatureExtractor, *args: Any, **kwargs: Any) -> Any:
        raise TimeoutError("model server did not answer within 30 s")

    monkeypatch.setattr(FeatureExtractor, "extract", stalled)
    annotate_corpus(inputs=[str(folder)], out=out, overrides=overrides)
    rows = list(read_rows(out))
    assert rows and all(r.status == Status.failed for r in rows)
    assert {(r.failure.stage, r.failure.kind) for r in rows if r.failure} == {("preprocess", ErrorKind.timeout)}

    monkeypatch.setattr(FeatureExtractor, "extract", real)
    resumed = annotate_corpus(inputs=[str(folder)], out=out, overrides=overrides)
    assert resumed.rows_written == len(rows)
    assert row_digest(out) == row_digest(reference)


def test_a_stage_task_that_passes_its_prefect_timeout_is_typed_timeout() -> None:
    """What ``annotate_corpus`` records for a task Prefect stopped: the state Prefect really
    produces for a timed-out task maps to the transient ``timeout``, a crash to ``internal``."""
    import time

    from prefect import flow, task

    from emoforge.flows.tasks import escaped_kind

    @task(timeout_seconds=0.5, retries=0)
    def stall() -> None:
        for _ in range(200):  # short sleeps: Prefect raises the timeout between them
            time.sleep(0.05)

    @task(retries=0)
    def crash() -> None:
        raise RuntimeError("bug")

    @flow
    def run_both() -> tuple[str | None, str | None]:
        futures = [stall.submit(), crash.submit()]
        for fut in futures:
            fut.wait()
        return futures[0].state.name, futures[1].state.name

    stalled, crashed = run_both()
    assert escaped_kind(stalled) == ErrorKind.timeout and ErrorKind.timeout in TRANSIENT_ERRORS
    assert escaped_kind(crashed) == ErrorKind.internal
    assert escaped_kind(None) == ErrorKind.internal  # a lost worker: no state to read
