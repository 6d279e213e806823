"""OpenAI's Batch API through the ``openai`` SDK: a JSONL file of chat completion requests.

Each line is ``{"custom_id", "method": "POST", "url": "/v1/chat/completions", "body"}`` with
the body the realtime backend would send (``OpenAIBackend.request``). The file is uploaded
with ``purpose="batch"`` under the batch key's name, the batch created with the key in its
``metadata`` (``emoforge_batch``), which is how a resumed run finds a batch whose id it
never got to record. Finished batches hand back an output file (answered lines) and an
error file (lines that failed); a line's ``response.status_code`` other than 200, or its
``error``, becomes a typed failure like the same status in real time.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from pydantic import ValidationError

from emoforge.agents.backends.batch_api import BatchStatus, Ended
from emoforge.agents.backends.openai import OpenAIBackend, map_openai_error, parse_completion
from emoforge.agents.base import AnnotatorError, ChatBackend, ModelReply, Prompt
from emoforge.agents.providers import BatchSpec
from emoforge.storage.batches import PendingBatch
from emoforge.storage.records import ErrorKind
from emoforge.storage.secrets import scrub

log = logging.getLogger(__name__)

ENDPOINT = "/v1/chat/completions"
METADATA_KEY = "emoforge_batch"
_ENDED: dict[str, Ended] = {
    "completed": "completed",
    "failed": "failed",
    "expired": "expired",
    "cancelled": "cancelled",
}
# How far back (seconds before the record was prepared) a resumed run looks for its batch.
_FIND_SLACK_S = 3600


def kind_of_status(status: int, message: str) -> ErrorKind:
    """The failure kind of an HTTP status, as ``map_openai_error`` types it in real time."""
    if status == 429:
        return ErrorKind.rate_limited
    if status >= 500:
        return ErrorKind.provider_error
    if status in (401, 403, 404):
        return ErrorKind.model_unavailable
    if "content_policy" in message or "content_filter" in message or "safety" in message.lower():
        return ErrorKind.refusal
    return ErrorKind.invalid_input


class OpenAIBatchClient:
    """Upload, create, find, poll and collect OpenAI batches for one agent's backend."""

    def __init__(self, backend: OpenAIBackend) -> None:
        self.backend = backend

    def line(self, custom_id: str, prompt: Prompt, max_output_tokens: int, temperature: float) -> dict[str, Any]:
        body = self.backend.request(prompt, max_output_tokens, temperature)
        return {"custom_id": custom_id, "method": "POST", "url": ENDPOINT, "body": body}

    def upload(self, batch: PendingBatch, lines: list[Any]) -> str | None:
        import openai

        data = "".join(json.dumps(line, separators=(",", ":")) + "\n" for line in lines).encode()
        try:
            file = self.backend.client().files.create(file=(f"{batch.key}.jsonl", data), purpose="batch")
        except openai.APIError as exc:
            raise map_openai_error(exc) from exc
        return str(file.id)

    def create(self, batch: PendingBatch, lines: list[Any]) -> str:
        import openai

        if batch.file_id is None:
            raise ValueError(f"batch {batch.key}: create before upload")
        try:
            created = self.backend.client().batches.create(
                input_file_id=batch.file_id,
                endpoint=ENDPOINT,
                completion_window="24h",
                metadata={METADATA_KEY: batch.key, "agent": batch.agent},
            )
        except openai.APIError as exc:
            raise map_openai_error(exc) from exc
        return str(created.id)

    def find(self, batch: PendingBatch) -> str | None:
        """The id of a batch already created with this key (newest first), or None."""
        import openai

        since = batch.prepared_at.timestamp() - _FIND_SLACK_S
        try:
            for found in self.backend.client().batches.list(limit=100):
                if (found.metadata or {}).get(METADATA_KEY) == batch.key:
                    return str(found.id)
                if found.created_at < since:
                    break  # listed newest first: older ones cannot be ours
        except openai.APIError as exc:
            raise map_openai_error(exc) from exc
        return None

    def poll(self, batch: PendingBatch) -> BatchStatus:
        import openai

        if batch.batch_id is None:
            raise ValueError(f"batch {batch.key}: poll before create")
        try:
            found = self.backend.client().batches.retrieve(batch.batch_id)
            ended = _ENDED.get(found.status)
            status = BatchStatus(state=found.status, ended=ended)
            if ended is None:
                return status
            errors = [e.message or e.code or "" for e in (found.errors.data or [])] if found.errors else []
            status.message = scrub("; ".join(str(e) for e in errors))[:300]
            for file_id in (found.output_file_id, found.error_file_id):
                if file_id:
                    self._read_lines(self.backend.client().files.content(file_id).text, status)
        except openai.APIError as exc:
            raise map_openai_error(exc) from exc
        return status

    def _read_lines(self, text: str, status: BatchStatus) -> None:
        """Each line on its own: one the provider (or a tampered file) garbled is skipped, or a
        typed failure of its own request when its custom id can be read; the batch still ends,
        and a request left without a line fails as unanswered (agents/batch.py)."""
        from openai.types.chat import ChatCompletion

        for n, raw in enumerate(text.splitlines(), 1):
            if not raw.strip():
                continue
            try:
                line = json.loads(raw)
            except json.JSONDecodeError as exc:
                log.warning("batch output line %d is not JSON (%s): skipped", n, exc)
                continue
            if not isinstance(line, dict) or not isinstance(line.get("custom_id"), str):
                log.warning("batch output line %d is not an object with a custom_id: skipped", n)
                continue
            custom_id = line["custom_id"]
            response, error = line.get("response") or {}, line.get("error")
            code = response.get("status_code") if isinstance(response, dict) else None
            if not isinstance(code, int) or isinstance(code, bool) or (error and not isinstance(error, dict)):
                if not error:
                    status.errors[custom_id] = AnnotatorError(
                        ErrorKind.malformed_output, f"batch line {n}: no status code in the provider's output"
                    )
                    continue
                code = 0
            if error or code != 200:
                body = response.get("body") if isinstance(response, dict) else None
                body = body if isinstance(body, dict) else {}
                detail = error or body.get("error") or {}
                detail = detail if isinstance(detail, dict) else {"message": str(detail)}
                message = scrub(str(detail.get("message") or detail or f"status {code}"))[:300]
                if error and str(detail.get("code")) == "batch_expired":
                    status.errors[custom_id] = AnnotatorError(ErrorKind.timeout, f"batch expired: {message}")
                else:
                    kind = kind_of_status(code, message) if code else ErrorKind.provider_error
                    status.errors[custom_id] = AnnotatorError(kind, f"batch line {code or 'error'}: {message}")
                continue
            try:
                reply: ModelReply = parse_completion(ChatCompletion.model_validate(response.get("body") or {}))
            except AnnotatorError as exc:
                status.errors[custom_id] = exc
                continue
            except ValidationError as exc:
                message = scrub(str(exc).splitlines()[0])[:300]
                status.errors[custom_id] = AnnotatorError(ErrorKind.malformed_output, f"batch line {n}: {message}")
                continue
            status.replies[custom_id] = reply


def _client(backend: ChatBackend) -> OpenAIBatchClient:
    if not isinstance(backend, OpenAIBackend):
        raise TypeError(f"OpenAIBatchClient needs an OpenAIBackend, not {type(backend).__name__}")
    return OpenAIBatchClient(backend)


# "Batch API ... 50% discount" on input and output (https://openai.com/api/pricing/,
# https://platform.openai.com/docs/guides/batch).
BATCH_API = BatchSpec(provider=OpenAIBackend.name, client=_client, price_factor=0.5)
