"""Gemini through ``google-genai``: key frames, audio and video as parts, schema via response_json_schema.

Key frames go inline as JPEG parts. The segment's clip (``audio``: WAV, ``video``: MP4 with
its soundtrack) goes inline too (``Part.from_bytes``) while the whole request, base64
included, stays under ``inline_media_max_mb`` (Gemini's inline limit is ~20 MB); a larger
one uploads the clips with the File API (resumable upload, then ``files.get`` until the
file is ACTIVE), refers to them by URI (``Part.from_uri``) and deletes them after the call,
best effort. Each call owns its uploads, so a retried or re-asked call uploads again: no
file outlives the call that used it. An upload that ends FAILED is ``unsupported_media``
(final); one still processing after ``upload_timeout_s`` is a ``timeout`` (retried).

Structured output uses Gemini's native JSON mode (``response_mime_type=application/json``
with ``response_json_schema``). A blocked prompt (``prompt_feedback.block_reason``) or a
safety stop (``finish_reason`` SAFETY, PROHIBITED_CONTENT, ...) is a refusal. The SDK's own
retries are switched off (one attempt) so ``call_with_retry`` owns retry and backoff.
"""

from __future__ import annotations

import io
import json
import math
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from emoforge.agents.base import AnnotatorError, ModelReply, Prompt
from emoforge.agents.providers import ProviderSpec
from emoforge.configs.agents import AgentConfig
from emoforge.storage.records import ErrorKind
from emoforge.storage.secrets import register_secret_env, scrub, scrubbed_logger

# Provider error text can quote the key it was sent: scrubbed before any handler sees it.
log = scrubbed_logger(__name__)

AUDIO_MIME = "audio/wav"
VIDEO_MIME = "video/mp4"

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


def http_errors(base: bool = False) -> tuple[tuple[type[Exception], ...], tuple[type[Exception], ...]]:
    """(timeout, transport) exception classes of the HTTP clients google-genai may send
    through: since 3.x it prefers ``httpx2``, a fork whose classes are not ``httpx``'s, so
    catching only ``httpx.TransportError`` let a dropped connection through as an unknown
    error instead of a retryable ``provider_error``. With ``base``, the transport entry is
    each client's root ``HTTPError`` (any failure of the request itself)."""
    import httpx

    clients: list[Any] = [httpx]
    try:
        import httpx2  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        pass
    else:
        clients.append(httpx2)
    timeouts = tuple(c.TimeoutException for c in clients)
    transport = tuple(c.HTTPError if base else c.TransportError for c in clients)
    return timeouts, transport


@contextmanager
def mapped_errors() -> Iterator[None]:
    """Any google-genai call inside becomes a typed ``AnnotatorError``: API errors by their
    status (``map_gemini_error``), the HTTP clients' timeouts and transport errors as
    ``timeout`` / ``provider_error``. Shared by realtime calls and the batch client."""
    from google.genai import errors

    timeouts, transport = http_errors()
    try:
        yield
    except errors.APIError as exc:
        raise map_gemini_error(exc) from exc
    except timeouts as exc:
        raise AnnotatorError(ErrorKind.timeout, "request timed out") from exc
    except transport as exc:
        raise AnnotatorError(ErrorKind.provider_error, f"connection error: {type(exc).__name__}") from exc


class GeminiBackend:
    name = "gemini"

    def __init__(self, config: AgentConfig) -> None:
        self.config = config
        self._client: Any | None = None

    def client(self) -> Any:
        if self._client is None:
            from google import genai
            from google.genai import types

            env = self.config.api_key_env or PROVIDER.api_key_env or ""
            register_secret_env(env)
            key = os.environ.get(env)
            if not key:
                raise AnnotatorError(ErrorKind.model_unavailable, f"env var {env} is not set", sent=False)
            http = types.HttpOptions(
                base_url=self.config.base_url,
                timeout=int(self.config.timeout_s * 1000),
                retry_options=types.HttpRetryOptions(attempts=1),
            )
            self._client = genai.Client(api_key=key, http_options=http)
        return self._client

    def inline_bytes(self, prompt: Prompt) -> int:
        """Approximate size of the request with every part inline (base64 grows bytes by 4/3)."""
        raw = sum(len(i.jpeg) for i in prompt.images)
        raw += len(prompt.audio.wav) if prompt.audio is not None else 0
        raw += len(prompt.video.mp4) if prompt.video is not None else 0
        text = len(prompt.system) + len(prompt.user) + len(json.dumps(prompt.schema))
        text += sum(len(a) + len(b) for a, b in prompt.messages_after)
        return math.ceil(raw * 4 / 3) + text

    def request(
        self, prompt: Prompt, max_output_tokens: int, temperature: float, uploaded: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Keyword arguments of ``client.models.generate_content`` (typed SDK objects).

        ``uploaded`` maps a clip's mime type to its File API file; clips not in it go inline.
        """
        from google.genai import types

        uploaded = uploaded or {}

        def media(data: bytes, mime: str) -> Any:
            file = uploaded.get(mime)
            if file is not None:
                return types.Part.from_uri(file_uri=file.uri, mime_type=mime)
            return types.Part.from_bytes(data=data, mime_type=mime)

        parts = [types.Part.from_text(text=prompt.user)]
        for image in prompt.images:
            parts.append(types.Part.from_text(text=f"Key frame at t={image.t_s:.2f} s:"))
            parts.append(types.Part.from_bytes(data=image.jpeg, mime_type="image/jpeg"))
        if prompt.audio is not None:
            parts.append(types.Part.from_text(text=f"Audio of the segment ({prompt.audio.duration_s:.2f} s):"))
            parts.append(media(prompt.audio.wav, AUDIO_MIME))
        if prompt.video is not None:
            sound = "with its soundtrack" if prompt.video.has_audio else "no sound"
            label = f"Video of the segment ({prompt.video.duration_s:.2f} s, {prompt.video.frames} frames, {sound}):"
            parts.append(types.Part.from_text(text=label))
            parts.append(media(prompt.video.mp4, VIDEO_MIME))
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
        uploaded: dict[str, Any] = {}
        try:
            with mapped_errors():
                if self.inline_bytes(prompt) > self.config.inline_media_max_mb * 1_000_000:
                    if prompt.audio is not None:
                        self._upload(prompt.audio.wav, AUDIO_MIME, uploaded)
                    if prompt.video is not None:
                        self._upload(prompt.video.mp4, VIDEO_MIME, uploaded)
                request = self.request(prompt, max_output_tokens, temperature, uploaded)
                resp = self.client().models.generate_content(**request)
        finally:
            self._delete(uploaded)
        return parse_response(resp)

    def _upload(self, data: bytes, mime: str, uploaded: dict[str, Any]) -> None:
        """Upload one clip and wait until it is ACTIVE; it joins ``uploaded`` at once, so it is
        deleted even when processing fails or times out."""
        from google.genai import types

        client = self.client()
        try:
            file = client.files.upload(file=io.BytesIO(data), config=types.UploadFileConfig(mime_type=mime))
        except (KeyError, ValueError) as exc:  # the SDK's "no upload URL" / "upload not finalized"
            raise AnnotatorError(ErrorKind.provider_error, f"upload of {mime} failed: {exc}") from exc
        uploaded[mime] = file
        deadline = time.monotonic() + self.config.upload_timeout_s
        while _name(file.state) != "ACTIVE":
            if _name(file.state) == "FAILED":
                reason = getattr(file.error, "message", None) or "no reason given"
                raise AnnotatorError(ErrorKind.unsupported_media, f"uploaded {mime} failed processing: {reason}")
            if time.monotonic() >= deadline:
                raise AnnotatorError(
                    ErrorKind.timeout, f"uploaded {mime} not ACTIVE after {self.config.upload_timeout_s:.0f} s"
                )
            time.sleep(self.config.upload_poll_s)
            file = client.files.get(name=file.name)
            uploaded[mime] = file

    def _delete(self, uploaded: dict[str, Any]) -> None:
        """Best effort: a file left behind expires on Google's side after 48 hours anyway."""
        from google.genai import errors

        failures: tuple[type[Exception], ...] = (errors.APIError, AnnotatorError, *http_errors(base=True)[1])
        for file in uploaded.values():
            try:
                self.client().files.delete(name=file.name)
            except failures as exc:
                log.warning("could not delete uploaded file %s: %s", file.name, exc)

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
    details = getattr(usage, "prompt_tokens_details", None) or []
    audio_in = sum(int(d.token_count or 0) for d in details if _name(getattr(d, "modality", None)) == "AUDIO")
    feedback = getattr(resp, "prompt_feedback", None)
    if feedback is not None and getattr(feedback, "block_reason", None):
        return ModelReply(
            text="",
            input_tokens=tokens_in,
            output_tokens=tokens_out,
            audio_input_tokens=audio_in,
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
        audio_input_tokens=audio_in,
        refusal=f"finish_reason {finish}" if finish in REFUSAL_FINISH else None,
        finish_reason=finish or None,
        model=getattr(resp, "model_version", None),
    )


def map_gemini_error(exc: Any) -> AnnotatorError:
    code = int(getattr(exc, "code", 0) or 0)
    message = scrub(str(getattr(exc, "message", "") or ""))[:300]
    if code == 429:
        return AnnotatorError(ErrorKind.rate_limited, f"429 {message}")
    if code == 504 or code == 408:
        return AnnotatorError(ErrorKind.timeout, f"{code} {message}")
    if code >= 500:
        return AnnotatorError(ErrorKind.provider_error, f"{code} {message}")
    if code in (401, 403, 404):
        return AnnotatorError(ErrorKind.model_unavailable, f"{code} {message}")
    return AnnotatorError(ErrorKind.invalid_input, f"{code} {message}")


PROVIDER = ProviderSpec(
    name=GeminiBackend.name,
    kind="llm",
    chat=GeminiBackend,
    remote=True,
    api_key_env="GEMINI_API_KEY",
    needs_model=True,
    clip_modalities=frozenset({"audio", "video"}),  # inline, or through the File API
    # ~32 tokens per second of audio, ~258 per video frame sampled at 1 fps (Gemini's docs).
    audio_tokens_per_s=32.0,
    video_tokens_per_frame=258,
)
