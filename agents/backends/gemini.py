"""Gemini through ``google-genai``: key frames inline as JPEG parts, schema via response_json_schema.

Structured output uses Gemini's native JSON mode (``response_mime_type=application/json``
with ``response_json_schema``). A blocked prompt (``prompt_feedback.block_reason``) or a
safety stop (``finish_reason`` SAFETY, PROHIBITED_CONTENT, ...) is a refusal. The SDK's own
retries are switched off (one attempt) so ``call_with_retry`` owns retry and backoff.
"""

from __future__ import annotations

import os
from typing import Any

from emoforge.agents.base import AnnotatorError, ModelReply, Prompt
from emoforge.configs.agents import AgentConfig
from emoforge.storage.records import ErrorKind

REFUSAL_FINISH = frozenset(
    {
        "SAFETY",
        "RECITATION",
        "BLOCKLIST",
        "PROHIBITED_CONTENT",
        "SPII",
        "IMAGE_SAFETY",
        "IMAGE_PROHIBITED_CONTENT",
        "MODEL_ARMOR",
    }
)


class GeminiBackend:
    name = "gemini"

    def __init__(self, config: AgentConfig) -> None:
        self.config = config
        self._client: Any | None = None

    def client(self) -> Any:
        if self._client is None:
            from google import genai
            from google.genai import types

            env = self.config.api_key_env or "GEMINI_API_KEY"
            key = os.environ.get(env)
            if not key:
                raise AnnotatorError(ErrorKind.model_unavailable, f"env var {env} is not set")
            http = types.HttpOptions(
                base_url=self.config.base_url,
                timeout=int(self.config.timeout_s * 1000),
                retry_options=types.HttpRetryOptions(attempts=1),
            )
            self._client = genai.Client(api_key=key, http_options=http)
        return self._client

    def request(self, prompt: Prompt, max_output_tokens: int, temperature: float) -> dict[str, Any]:
        """Keyword arguments of ``client.models.generate_content`` (typed SDK objects)."""
        from google.genai import types

        parts = [types.Part.from_text(text=prompt.user)]
        for image in prompt.images:
            parts.append(types.Part.from_text(text=f"Key frame at t={image.t_s:.2f} s:"))
            parts.append(types.Part.from_bytes(data=image.jpeg, mime_type="image/jpeg"))
        contents = [types.Content(role="user", parts=parts)]
        for assistant, follow_up in prompt.messages_after:
            contents.append(types.Content(role="model", parts=[types.Part.from_text(text=assistant)]))
            contents.append(types.Content(role="user", parts=[types.Part.from_text(text=follow_up)]))
        config = types.GenerateContentConfig(
            system_instruction=prompt.system,
            temperature=temperature,
            max_output_tokens=max_output_tokens,
            response_mime_type="application/json",
            response_json_schema=prompt.schema,
        )
        return {"model": self.config.model, "contents": contents, "config": config}

    def complete(self, prompt: Prompt, max_output_tokens: int, temperature: float) -> ModelReply:
        import httpx
        from google.genai import errors

        try:
            resp = self.client().models.generate_content(**self.request(prompt, max_output_tokens, temperature))
        except errors.APIError as exc:
            raise map_gemini_error(exc) from exc
        except httpx.TimeoutException as exc:
            raise AnnotatorError(ErrorKind.timeout, "request timed out") from exc
        except httpx.TransportError as exc:
            raise AnnotatorError(ErrorKind.provider_error, f"connection error: {type(exc).__name__}") from exc
        return parse_response(resp)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


def _name(value: Any) -> str:
    return str(getattr(value, "name", value) or "")


def parse_response(resp: Any) -> ModelReply:
    usage = getattr(resp, "usage_metadata", None)
    tokens_in = int(getattr(usage, "prompt_token_count", 0) or 0)
    tokens_out = int(getattr(usage, "candidates_token_count", 0) or 0)
    feedback = getattr(resp, "prompt_feedback", None)
    if feedback is not None and getattr(feedback, "block_reason", None):
        return ModelReply(
            text="",
            input_tokens=tokens_in,
            output_tokens=tokens_out,
            refusal=f"prompt blocked: {_name(feedback.block_reason)}",
        )
    if not resp.candidates:
        raise AnnotatorError(ErrorKind.malformed_output, "response has no candidates")
    candidate = resp.candidates[0]
    finish = _name(getattr(candidate, "finish_reason", None))
    content = getattr(candidate, "content", None)
    text = "".join(p.text or "" for p in (getattr(content, "parts", None) or []) if not getattr(p, "thought", False))
    return ModelReply(
        text=text,
        input_tokens=tokens_in,
        output_tokens=tokens_out,
        refusal=f"finish_reason {finish}" if finish in REFUSAL_FINISH else None,
        finish_reason=finish or None,
        model=getattr(resp, "model_version", None),
    )


def map_gemini_error(exc: Any) -> AnnotatorError:
    code = int(getattr(exc, "code", 0) or 0)
    message = str(getattr(exc, "message", "") or "")[:300]
    if code == 429:
        return AnnotatorError(ErrorKind.rate_limited, f"429 {message}")
    if code == 504 or code == 408:
        return AnnotatorError(ErrorKind.timeout, f"{code} {message}")
    if code >= 500:
        return AnnotatorError(ErrorKind.provider_error, f"{code} {message}")
    if code in (401, 403, 404):
        return AnnotatorError(ErrorKind.model_unavailable, f"{code} {message}")
    return AnnotatorError(ErrorKind.invalid_input, f"{code} {message}")
