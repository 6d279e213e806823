"""OpenAI chat completions backend (also any server speaking the same API via ``base_url``).

Key frames go as ``image_url`` data URLs, the segment's sound (``audio`` modality) as an
``input_audio`` part (base64 WAV; audio-capable models such as gpt-4o-audio-preview, or an
OpenAI-compatible server with an omni model, e.g. vLLM), transcript and feature summaries
as text, the output schema through the provider's native structured-output mechanism:
``json_schema`` (OpenAI strict mode) or ``json_object`` + ``schema`` (llama.cpp's servers;
llama-cpp-python's rejects ``json_schema``). The SDK's own retries are off: ``call_with_retry`` owns
them, so attempts and waits are counted in one place.
"""

from __future__ import annotations

import base64
import os
from typing import Any, Literal

from emoforge.agents.base import AnnotatorError, ModelReply, Prompt
from emoforge.agents.providers import ProviderSpec
from emoforge.configs.agents import AgentConfig
from emoforge.storage.records import ErrorKind
from emoforge.storage.secrets import register_secret_env, scrub, scrubbed_logger

# Provider error text can quote the key it was sent: scrubbed before any handler sees it.
log = scrubbed_logger(__name__)

# Keywords OpenAI strict mode rejects; our own validation enforces them after the call.
_STRICT_UNSUPPORTED = ("maxLength", "minLength")


def _strip_keys(node: Any, keys: tuple[str, ...]) -> Any:
    if isinstance(node, dict):
        return {k: _strip_keys(v, keys) for k, v in node.items() if k not in keys}
    if isinstance(node, list):
        return [_strip_keys(v, keys) for v in node]
    return node


class OpenAIBackend:
    """Chat completions through the ``openai`` SDK."""

    name = "openai"
    default_format: Literal["json_schema", "json_object_schema"] = "json_schema"

    def __init__(self, config: AgentConfig, http_client: Any | None = None) -> None:
        self.config = config
        self._http_client = http_client  # tests inject an httpx client with a MockTransport
        self._client: Any | None = None
        fmt = config.response_format
        self.response_format: str = self.default_format if fmt == "auto" else fmt

    # ------------------------------------------------------------------ request building

    def _api_key(self) -> str:
        env = self.config.api_key_env
        register_secret_env(env)
        if env:
            key = os.environ.get(env)
            if not key:
                raise AnnotatorError(ErrorKind.model_unavailable, f"env var {env} is not set", sent=False)
            return key
        if self.config.base_url:
            return "no-key"  # local servers (llama.cpp, vLLM, Ollama) accept any key
        raise AnnotatorError(ErrorKind.model_unavailable, "no api_key_env configured for openai", sent=False)

    def client(self) -> Any:
        if self._client is None:
            import openai

            self._client = openai.OpenAI(
                api_key=self._api_key(),
                base_url=self.config.base_url,
                timeout=self.config.timeout_s,
                max_retries=0,
                http_client=self._http_client,
            )
        return self._client

    def messages(self, prompt: Prompt) -> list[dict[str, Any]]:
        if prompt.video is not None:
            # AgentConfig refuses 'video' for this backend; a hand-built prompt still fails typed.
            raise AnnotatorError(ErrorKind.invalid_input, f"{self.name} chat completions take no video input")
        user: Any = prompt.user
        if prompt.images or prompt.audio is not None:
            parts: list[dict[str, Any]] = [{"type": "text", "text": prompt.user}]
            for image in prompt.images:
                parts.append({"type": "text", "text": f"Key frame at t={image.t_s:.2f} s:"})
                url = "data:image/jpeg;base64," + base64.b64encode(image.jpeg).decode("ascii")
                parts.append({"type": "image_url", "image_url": {"url": url, "detail": "low"}})
            if prompt.audio is not None:
                label = f"Audio of the segment ({prompt.audio.duration_s:.2f} s, mono WAV):"
                data = base64.b64encode(prompt.audio.wav).decode("ascii")
                parts.append({"type": "text", "text": label})
                parts.append({"type": "input_audio", "input_audio": {"data": data, "format": "wav"}})
            user = parts
        msgs: list[dict[str, Any]] = [
            {"role": "system", "content": prompt.system},
            {"role": "user", "content": user},
        ]
        for assistant, follow_up in prompt.messages_after:
            msgs.append({"role": "assistant", "content": assistant})
            msgs.append({"role": "user", "content": follow_up})
        return msgs

    def response_format_param(self, prompt: Prompt) -> dict[str, Any]:
        if self.response_format == "json_object_schema":
            # llama.cpp's grammar engine (LLGuidance) allows any whitespace between JSON tokens by
            # default, and small models then indent until max_tokens runs out: ask for compact
            # JSON. Other JSON Schema consumers ignore the unknown x- keyword.
            return {"type": "json_object", "schema": {**prompt.schema, "x-guidance": {"whitespace_flexible": False}}}
        return {
            "type": "json_schema",
            "json_schema": {
                "name": prompt.schema_name,
                "schema": _strip_keys(prompt.schema, _STRICT_UNSUPPORTED),
                "strict": True,
            },
        }

    def request(self, prompt: Prompt, max_output_tokens: int, temperature: float) -> dict[str, Any]:
        return {
            "model": self.config.model or "",  # AgentConfig guarantees a model for this backend
            "messages": self.messages(prompt),
            "response_format": self.response_format_param(prompt),
            "max_tokens": max_output_tokens,
            "temperature": temperature,
        }

    # ------------------------------------------------------------------ call + parsing

    def complete(self, prompt: Prompt, max_output_tokens: int, temperature: float) -> ModelReply:
        import openai

        try:
            resp = self.client().chat.completions.create(**self.request(prompt, max_output_tokens, temperature))
        except openai.APIError as exc:
            raise map_openai_error(exc) from exc
        return parse_completion(resp)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


def parse_completion(resp: Any) -> ModelReply:
    """ModelReply from a ChatCompletion; a refusal or content filter becomes ``refusal``."""
    if not resp.choices:
        raise AnnotatorError(ErrorKind.malformed_output, "response has no choices")
    choice = resp.choices[0]
    message = choice.message
    usage = getattr(resp, "usage", None)
    details = getattr(usage, "prompt_tokens_details", None)
    refusal = getattr(message, "refusal", None)
    if not refusal and choice.finish_reason == "content_filter":
        refusal = "provider content filter"
    return ModelReply(
        text=message.content or "",
        input_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),
        output_tokens=int(getattr(usage, "completion_tokens", 0) or 0),
        audio_input_tokens=int(getattr(details, "audio_tokens", 0) or 0),
        refusal=refusal,
        finish_reason=choice.finish_reason,
        model=getattr(resp, "model", None),
    )


def _retry_after(exc: Any) -> float | None:
    response = getattr(exc, "response", None)
    header = response.headers.get("retry-after") if response is not None else None
    try:
        return float(header) if header is not None else None
    except ValueError:
        return None


def map_openai_error(exc: Exception) -> AnnotatorError:
    """Typed failure for an ``openai`` SDK exception; the body is scrubbed (servers echo headers)."""
    import openai

    if isinstance(exc, openai.APITimeoutError):
        return AnnotatorError(ErrorKind.timeout, "request timed out")
    if isinstance(exc, openai.APIConnectionError):
        return AnnotatorError(ErrorKind.provider_error, f"connection error: {type(exc).__name__}")
    if isinstance(exc, openai.RateLimitError):
        return AnnotatorError(ErrorKind.rate_limited, "429 rate limited", _retry_after(exc))
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        # Scrubbed before cutting: a key cut in half at the limit would no longer be recognised.
        body = scrub(str(getattr(exc, "message", "")))[:300]
        if status >= 500:
            return AnnotatorError(ErrorKind.provider_error, f"{status} server error: {body}")
        if status in (401, 403, 404):
            return AnnotatorError(ErrorKind.model_unavailable, f"{status}: {body}")
        if "content_policy" in body or "content_filter" in body or "safety" in body.lower():
            return AnnotatorError(ErrorKind.refusal, f"{status} content policy: {body}")
        return AnnotatorError(ErrorKind.invalid_input, f"{status} bad request: {body}")
    return AnnotatorError(ErrorKind.provider_error, f"{type(exc).__name__}")


PROVIDER = ProviderSpec(
    name=OpenAIBackend.name,
    kind="llm",
    chat=OpenAIBackend,
    remote=True,  # its client takes no default key variable: api_key_env or a base_url
    needs_model=True,
    # Chat completions take an ``input_audio`` part but no video.
    clip_modalities=frozenset({"audio"}),
    audio_tokens_per_s=10.0,
)
