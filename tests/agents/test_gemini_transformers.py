"""Gemini and transformers backends, tested as far as possible offline.

Gemini: the real ``google-genai`` SDK talks HTTP to a scripted local server (base_url,
``tests/agents/gemini_server.py``), so request building (system instruction, JSON schema,
inline JPEG key frames), response parsing, refusals and error mapping run through the
SDK's own code. Inline and uploaded (File API) audio/video are tested against the same
server in ``test_clip_backends.py``. Not exercised: the real Gemini service (needs a key
and network), hence how it actually processes the clips.
Transformers: message building and JSON extraction, and the typed failure for a missing
model. Not exercised live: loading and generating with a real checkpoint (the only one
shipped, Gemma-3-270M GGUF via transformers+gguf, takes ~80 s to load: too slow here).
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from emoforge.agents.backends.gemini import GeminiBackend
from emoforge.agents.backends.retry import RetryPolicy
from emoforge.agents.backends.transformers_local import build_messages, first_json_object
from emoforge.agents.base import ImagePart, Prompt
from emoforge.agents.costs import CostLedger
from emoforge.agents.jury import Jury
from emoforge.agents.labels import LabelNormalizer
from emoforge.agents.llm import LLMAnnotator
from emoforge.configs.agents import AgentConfig, AgentsConfig, TaxonomyConfig
from emoforge.storage.records import ErrorKind, KeyFrame, RunContext, Status
from tests.agents.conftest import make_features, make_segment
from tests.agents.gemini_server import GeminiFake, gemini_reply
from tests.agents.test_llm_fakes import GOOD

TAXONOMY = TaxonomyConfig(embedding_model=None)
JPEG = b"\xff\xd8\xff\xe0fake-jpeg-bytes\xff\xd9"


def gemini_agent(fake: GeminiFake, ctx: RunContext, sleeps: list[float], **cfg: Any) -> LLMAnnotator:
    """A Gemini agent on the fake; ``cfg`` overrides AgentConfig fields (modalities, ...)."""
    fields: dict[str, Any] = {
        "name": "gem",
        "backend": "gemini",
        "model": "gemini-test",
        "base_url": fake.url,
        "api_key_env": "EMOFORGE_GEMINI_KEY",
        "modalities": ["face", "text", "visual"],
        "max_keyframes": 2,
        "max_retries": 2,
    }
    config = AgentConfig(**(fields | cfg))
    return LLMAnnotator(
        config,
        GeminiBackend(config),
        ctx,
        TAXONOMY,
        LabelNormalizer(TAXONOMY),
        CostLedger(),
        retry_policy=RetryPolicy(max_retries=config.max_retries, sleep=sleeps.append),
    )


def with_keyframes(seg: Any) -> Any:
    feats = make_features(seg)
    frames = [KeyFrame(t_s=seg.start_s + i, score=1.0, reason="diversity", jpeg=JPEG) for i in range(3)]
    return feats.model_copy(update={"keyframes": frames})


def test_gemini_request_and_response_through_the_sdk(gemini: GeminiFake, ctx: RunContext) -> None:
    gemini.replies.append((200, gemini_reply(json.dumps(GOOD))))
    seg = make_segment()
    ann = gemini_agent(gemini, ctx, []).annotate(seg, with_keyframes(seg))
    assert ann.status == Status.ok and ann.primary_label == "happy" and ann.backend == "gemini"
    assert (ann.usage.input_tokens, ann.usage.output_tokens) == (812, 95)
    assert ann.modalities_seen == ["face", "text", "visual"]
    path, body, headers = gemini.requests[0]
    assert path.endswith("/models/gemini-test:generateContent")
    assert headers["x-goog-api-key"] == "gemini-SECRET-key"
    assert "gemini-SECRET-key" not in ann.model_dump_json()
    config = body["generationConfig"]
    assert config["responseMimeType"] == "application/json"
    assert config["responseJsonSchema"]["properties"]["primary_label"]["enum"][:2] == ["neutral", "happy"]
    assert "DATA" in body["systemInstruction"]["parts"][0]["text"]
    parts = body["contents"][0]["parts"]
    images = [p["inlineData"] for p in parts if "inlineData" in p]
    assert len(images) == 2  # max_keyframes
    assert all(i.get("mimeType", i.get("mime_type")) == "image/jpeg" for i in images), images[0].keys()
    assert all(base64.urlsafe_b64decode(i["data"]) == JPEG for i in images)


def test_gemini_429_then_5xx_then_ok_and_error_mapping(gemini: GeminiFake, ctx: RunContext) -> None:
    err = {"error": {"code": 429, "message": "quota", "status": "RESOURCE_EXHAUSTED"}}
    gemini.replies += [
        (429, err),
        (500, {"error": {"code": 500, "message": "x", "status": "INTERNAL"}}),
        (200, gemini_reply(json.dumps(GOOD))),
    ]
    sleeps: list[float] = []
    seg = make_segment()
    ann = gemini_agent(gemini, ctx, sleeps).annotate(seg, with_keyframes(seg))
    assert ann.status == Status.ok and ann.usage.attempts == 3 and len(sleeps) == 2
    gemini.replies.append((404, {"error": {"code": 404, "message": "no such model", "status": "NOT_FOUND"}}))
    ann = gemini_agent(gemini, ctx, sleeps).annotate(seg, with_keyframes(seg))
    assert ann.failure is not None and ann.failure.kind == ErrorKind.model_unavailable


def test_gemini_safety_block_is_a_refusal(gemini: GeminiFake, ctx: RunContext) -> None:
    gemini.replies.append((200, gemini_reply("", finish="SAFETY")))
    gemini.replies.append((200, {"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"}}))
    seg = make_segment()
    for reason in ("SAFETY", "PROHIBITED_CONTENT"):
        ann = gemini_agent(gemini, ctx, []).annotate(seg, with_keyframes(seg))
        assert ann.failure is not None and ann.failure.kind == ErrorKind.refusal
        assert reason in ann.failure.message and not ann.labels


def test_transformers_messages_and_json_extraction() -> None:
    prompt = Prompt(
        system="SYS",
        user="USER",
        images=(ImagePart(JPEG, 1.5),),
        schema={"type": "object"},
        messages_after=(("bad", "fix it"),),
    )
    messages, images = build_messages(prompt, with_images=False)
    assert messages[0]["role"] == "system" and '{"type":"object"}' in messages[0]["content"]
    assert messages[1] == {"role": "user", "content": "USER"} and images == []
    assert messages[2:] == [{"role": "assistant", "content": "bad"}, {"role": "user", "content": "fix it"}]
    assert first_json_object('Sure! ```json\n{"a": {"b": 1}}\n``` done {"c": 2}') == '{"a": {"b": 1}}'
    assert first_json_object("no json {here") == "no json {here"


def test_transformers_missing_model_is_model_unavailable(ctx: RunContext, tmp_path: Path) -> None:
    agent = AgentConfig(name="local", backend="transformers", model=str(tmp_path / "absent"), max_retries=0)
    jury = Jury(AgentsConfig(jury=[agent], taxonomy=TAXONOMY), ctx)
    seg = make_segment()
    [ann] = jury.annotate(seg, make_features(seg))
    jury.close()
    assert ann.failure is not None and ann.failure.kind == ErrorKind.model_unavailable
    assert "absent" in ann.failure.message


def test_gemini_dropped_connection_is_a_provider_error(ctx: RunContext, monkeypatch: Any) -> None:
    """google-genai 3.x sends through httpx2, whose connection errors are not httpx's: the
    failure must still be a typed, retryable provider_error, not an unknown exception."""
    import socket

    monkeypatch.setenv("EMOFORGE_GEMINI_KEY", "gemini-SECRET-key")
    with socket.socket() as s:  # a port nobody listens on: the connection is refused
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    fake = GeminiFake.__new__(GeminiFake)
    fake.url = f"http://127.0.0.1:{port}"
    seg = make_segment()
    ann = gemini_agent(fake, ctx, [], max_retries=0).annotate(seg, with_keyframes(seg))
    assert ann.failure is not None and ann.failure.kind == ErrorKind.provider_error, ann.failure
    assert "connection error" in ann.failure.message
