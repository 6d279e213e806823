"""LLM annotator logic against scripted provider replies (httpx MockTransport under the real SDK).

Fakes are used only for what a real local server cannot be made to do on demand:
429s with Retry-After, 5xx, timeouts, refusals, malformed JSON, the budget cap.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from emoforge.agents.backends.openai import OpenAIBackend
from emoforge.agents.backends.retry import RetryPolicy
from emoforge.agents.cache import ResponseCache
from emoforge.agents.costs import CostLedger
from emoforge.agents.labels import LabelNormalizer
from emoforge.agents.llm import LLMAnnotator
from emoforge.configs.agents import AgentConfig, Price, TaxonomyConfig
from emoforge.storage.records import ErrorKind, RunContext, Status
from tests.agents.conftest import make_features, make_segment

GOOD = {
    "steps": ["AU12 is 0.60 and AU6 is 0.45 at 2.5 s", "The speaker says 'wonderful news'", "Label happy"],
    "evidence": [{"modality": "face", "cue": "AU12 lip corner pull", "start_s": 2.5, "end_s": 2.5}],
    "confidence": 0.7,
    "intensity": 0.6,
    "valence": 0.7,
    "arousal": 0.5,
    "refusal": None,
    "primary_label": "happy",
    "labels": ["happy", "surprised"],
}


def completion(content: str | None, refusal: str | None = None, finish: str = "stop") -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 0,
        "model": "fake-model",
        "choices": [
            {
                "index": 0,
                "finish_reason": finish,
                "message": {"role": "assistant", "content": content, "refusal": refusal},
            }
        ],
        "usage": {"prompt_tokens": 1000, "completion_tokens": 200, "total_tokens": 1200},
    }


class Script:
    """Replies in order; records every request body it saw."""

    def __init__(self, replies: list[Any]) -> None:
        self.replies = list(replies)
        self.requests: list[dict[str, Any]] = []
        self.headers: list[httpx.Headers] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(json.loads(request.content))
        self.headers.append(request.headers)
        reply = self.replies.pop(0)
        if isinstance(reply, Exception):
            raise reply
        status, body, headers = reply if len(reply) == 3 else (*reply, {})
        return httpx.Response(status, json=body, headers=headers)


def annotator(
    script: Script,
    ctx: RunContext,
    tmp_path: Path | None = None,
    budget: float | None = None,
    sleeps: list[float] | None = None,
    **cfg: Any,
) -> LLMAnnotator:
    config = AgentConfig(
        name="gpt",
        backend="openai",
        model="fake-model",
        api_key_env="EMOFORGE_TEST_KEY",
        price=Price(input_per_mtok=2.0, output_per_mtok=8.0),
        max_output_tokens=300,
        **cfg,
    )
    backend = OpenAIBackend(config, http_client=httpx.Client(transport=httpx.MockTransport(script)))
    taxonomy = TaxonomyConfig(embedding_model=None)
    record = sleeps if sleeps is not None else []
    return LLMAnnotator(
        config,
        backend,
        ctx,
        taxonomy,
        LabelNormalizer(taxonomy),
        CostLedger(budget),
        cache=ResponseCache(tmp_path) if tmp_path else None,
        retry_policy=RetryPolicy(max_retries=config.max_retries, base_s=1.0, max_s=30.0, sleep=record.append),
    )


@pytest.fixture(autouse=True)
def api_key(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("EMOFORGE_TEST_KEY", "sk-test-SECRET-123")
    return "sk-test-SECRET-123"


def test_valid_reply_becomes_annotation_with_usage_and_cost(ctx: RunContext) -> None:
    script = Script([(200, completion(json.dumps(GOOD)))])
    seg = make_segment()
    ann = annotator(script, ctx).annotate(seg, make_features(seg))
    assert ann.status == Status.ok and ann.id == f"{seg.id}-gpt"
    assert ann.primary_label == "happy" and ann.labels == ["happy", "surprised"]
    assert ann.rationale[0].startswith("Step 1: AU12 is 0.60") and ann.rationale[-1] == "Step 3: Label happy"
    assert ann.usage.input_tokens == 1000 and ann.usage.output_tokens == 200 and ann.usage.calls == 1
    assert ann.usage.cost_usd == pytest.approx((1000 * 2.0 + 200 * 8.0) / 1e6)
    assert ann.provenance.model == "fake-model" and ann.provenance.prompt_version == "emo-cot-v1"
    assert ann.modalities_seen == ["face", "voice", "text"]
    assert [(c.modality, c.feature, c.start_s) for c in ann.evidence] == [("face", "AU12", 2.5)]
    body = script.requests[0]
    assert body["response_format"]["type"] == "json_schema"
    assert body["response_format"]["json_schema"]["strict"] is True
    enum = body["response_format"]["json_schema"]["schema"]["properties"]["primary_label"]["enum"]
    assert enum == ["neutral", "happy", "sad", "angry", "fearful", "disgusted", "surprised"]
    assert body["max_tokens"] == 300 and body["temperature"] == 0.0


def test_429_with_retry_after_then_success(ctx: RunContext) -> None:
    sleeps: list[float] = []
    script = Script(
        [
            (429, {"error": {"message": "slow down"}}, {"retry-after": "7"}),
            (503, {"error": {"message": "overloaded"}}),
            (200, completion(json.dumps(GOOD))),
        ]
    )
    seg = make_segment()
    ann = annotator(script, ctx, sleeps=sleeps).annotate(seg, make_features(seg))
    assert ann.status == Status.ok
    assert ann.usage.attempts == 3 and len(script.requests) == 3
    assert sleeps[0] == pytest.approx(7.0)  # the provider's Retry-After wins over our jitter
    assert 0 <= sleeps[1] <= 2.0  # second retry: U(0, base * 2**1)


def test_persistent_5xx_fails_as_provider_error_after_max_retries(ctx: RunContext) -> None:
    script = Script([(500, {"error": {"message": "boom"}})] * 4)
    seg = make_segment()
    ann = annotator(script, ctx, max_retries=3).annotate(seg, make_features(seg))
    assert ann.status == Status.failed and ann.failure is not None
    assert ann.failure.kind == ErrorKind.provider_error and ann.failure.transient
    assert len(script.requests) == 4 and not ann.labels and ann.primary_label is None


def test_timeout_is_retried_then_typed(ctx: RunContext) -> None:
    script = Script([httpx.ReadTimeout("slow"), httpx.ReadTimeout("slow")])
    seg = make_segment()
    ann = annotator(script, ctx, max_retries=1).annotate(seg, make_features(seg))
    assert ann.failure is not None and ann.failure.kind == ErrorKind.timeout
    assert len(script.requests) == 2


def test_bad_request_is_not_retried(ctx: RunContext) -> None:
    script = Script([(400, {"error": {"message": "bad image"}})])
    seg = make_segment()
    ann = annotator(script, ctx).annotate(seg, make_features(seg))
    assert ann.failure is not None and ann.failure.kind == ErrorKind.invalid_input
    assert len(script.requests) == 1


def test_refusal_is_a_value_not_a_label(ctx: RunContext) -> None:
    script = Script([(200, completion(None, refusal="I can't help with that."))])
    seg = make_segment()
    ann = annotator(script, ctx).annotate(seg, make_features(seg))
    assert ann.status == Status.failed and ann.failure is not None
    assert ann.failure.kind == ErrorKind.refusal and "can't help" in ann.failure.message
    assert ann.labels == [] and ann.primary_label is None
    # a refusal written into the JSON itself is a refusal too
    script = Script([(200, completion(json.dumps({"refusal": "not a person"})))])
    ann = annotator(script, ctx).annotate(seg, make_features(seg))
    assert ann.failure is not None and ann.failure.kind == ErrorKind.refusal


def test_malformed_json_is_reasked_with_the_validation_error(ctx: RunContext) -> None:
    bad_label = dict(GOOD, primary_label="ecstatic")
    script = Script(
        [
            (200, completion('{"steps": ["cut off')),
            (200, completion(json.dumps(bad_label))),
            (200, completion(json.dumps(GOOD))),
        ]
    )
    seg = make_segment()
    ann = annotator(script, ctx, max_reasks=2).annotate(seg, make_features(seg))
    assert ann.status == Status.ok and ann.primary_label == "happy"
    assert ann.usage.calls == 3
    second = script.requests[1]["messages"]
    assert second[-2] == {"role": "assistant", "content": '{"steps": ["cut off'}
    assert "not valid JSON" in second[-1]["content"]
    third = script.requests[2]["messages"]
    assert "primary_label" in third[-1]["content"] and "ecstatic" not in third[-1]["content"].split("error")[0]


def test_persistent_malformed_output_fails_after_bounded_reasks(ctx: RunContext) -> None:
    script = Script([(200, completion("not json at all"))] * 3)
    seg = make_segment()
    ann = annotator(script, ctx, max_reasks=2).annotate(seg, make_features(seg))
    assert ann.failure is not None and ann.failure.kind == ErrorKind.malformed_output
    assert len(script.requests) == 3 and ann.raw_rationale == "not json at all"


def test_budget_cap_stops_new_calls_cleanly(ctx: RunContext) -> None:
    # one call is estimated at ~(prompt chars/4 * 2 + 300 * 8) / 1e6 USD: about 0.005
    script = Script([(200, completion(json.dumps(GOOD)))] * 5)
    agent = annotator(script, ctx, budget=0.008)
    results = [agent.annotate(s, make_features(s)) for s in (make_segment(i) for i in range(3))]
    assert results[0].status == Status.ok
    assert [r.failure.kind for r in results[1:] if r.failure] == [ErrorKind.budget_exceeded] * 2
    assert len(script.requests) == 1  # the refused calls were never sent
    assert agent.ledger.spent_usd == pytest.approx(results[0].usage.cost_usd)
    assert agent.ledger.spent_usd <= 0.008


def test_api_key_never_reaches_records_or_cache(ctx: RunContext, tmp_path: Path, api_key: str) -> None:
    script = Script([(200, completion(json.dumps(GOOD)))])
    seg = make_segment()
    ann = annotator(script, ctx, tmp_path=tmp_path).annotate(seg, make_features(seg))
    assert script.headers[0]["authorization"] == f"Bearer {api_key}"  # it was used ...
    assert api_key not in ann.model_dump_json()  # ... but is stored nowhere
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert api_key not in path.read_text()


def test_missing_key_env_is_model_unavailable(ctx: RunContext, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EMOFORGE_TEST_KEY")
    script = Script([])
    seg = make_segment()
    ann = annotator(script, ctx).annotate(seg, make_features(seg))
    assert ann.failure is not None and ann.failure.kind == ErrorKind.model_unavailable
    assert "EMOFORGE_TEST_KEY" in ann.failure.message and not script.requests


def test_cache_hit_makes_no_call_and_rerun_is_identical(ctx: RunContext, tmp_path: Path) -> None:
    script = Script([(200, completion(json.dumps(GOOD)))])
    seg = make_segment()
    first = annotator(script, ctx, tmp_path=tmp_path).annotate(seg, make_features(seg))
    second_agent = annotator(script, ctx, tmp_path=tmp_path)
    assert second_agent.estimate(seg, make_features(seg)).calls == 0
    second = second_agent.annotate(seg, make_features(seg))
    assert len(script.requests) == 1
    assert second.usage.cached and second.usage.calls == 0
    assert second.labels == first.labels and second.rationale == first.rationale
    # a different temperature is a different request: it misses the cache
    script.replies.append((200, completion(json.dumps(GOOD))))
    annotator(script, ctx, tmp_path=tmp_path, temperature=0.7).annotate(seg, make_features(seg))
    assert len(script.requests) == 2


def test_no_usable_modality_is_invalid_input_without_a_call(ctx: RunContext) -> None:
    script = Script([])
    seg = make_segment()
    feats = make_features(seg, text=None, face=False, voice=False)
    ann = annotator(script, ctx).annotate(seg, feats)
    assert ann.failure is not None and ann.failure.kind == ErrorKind.invalid_input and not script.requests
