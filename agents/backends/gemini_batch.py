"""Gemini batch mode through ``google-genai``: ``client.batches.create`` with inlined requests.

Each request is the ``generate_content`` request the realtime backend would send
(``GeminiBackend.request``: contents, system instruction, JSON schema), inlined with its
``custom_id`` in the request's ``metadata``; the batch's ``display_name`` is the batch key,
which is how a resumed run finds a batch whose name it never got to record. Clips always go
inline here (the File API uploads of real time are per call and deleted after it), so a
request over ``inline_media_max_mb`` fails as ``invalid_input`` without being sent: give
such agents ``mode: realtime``. Finished jobs hand back ``dest.inlined_responses``, each with
its metadata (else matched by order) and either a response or an error status.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from emoforge.agents.backends.batch_api import BatchStatus, Ended
from emoforge.agents.backends.gemini import GeminiBackend, map_gemini_error, mapped_errors, parse_response
from emoforge.agents.base import AnnotatorError, ChatBackend, Prompt
from emoforge.agents.providers import BatchSpec
from emoforge.storage.batches import PendingBatch
from emoforge.storage.records import ErrorKind

_ENDED: dict[str, Ended] = {
    "JOB_STATE_SUCCEEDED": "completed",
    "JOB_STATE_PARTIALLY_SUCCEEDED": "completed",
    "JOB_STATE_FAILED": "failed",
    "JOB_STATE_CANCELLED": "cancelled",
    "JOB_STATE_EXPIRED": "expired",
}


def _state(job: Any) -> str:
    state = getattr(job, "state", None)
    return str(getattr(state, "value", state) or "")


class GeminiBatchClient:
    """Create, find, poll and collect Gemini batch jobs for one agent's backend."""

    def __init__(self, backend: GeminiBackend) -> None:
        self.backend = backend

    def line(self, custom_id: str, prompt: Prompt, max_output_tokens: int, temperature: float) -> Any:
        from google.genai import types

        if self.backend.inline_bytes(prompt) > self.backend.config.inline_media_max_mb * 1_000_000:
            raise AnnotatorError(
                ErrorKind.invalid_input,
                f"request over inline_media_max_mb={self.backend.config.inline_media_max_mb}: batch mode sends "
                "clips inline; use mode: realtime for this agent",
            )
        request = self.backend.request(prompt, max_output_tokens, temperature)
        return types.InlinedRequest(
            contents=request["contents"], config=request["config"], metadata={"custom_id": custom_id}
        )

    def upload(self, batch: PendingBatch, lines: list[Any]) -> str | None:
        """Nothing to upload: the requests travel inline in ``create``."""
        return None

    def _call(self, fn: Any, **kwargs: Any) -> Any:
        with mapped_errors():
            return fn(**kwargs)

    def create(self, batch: PendingBatch, lines: list[Any]) -> str:
        from google.genai import types

        client = self.backend.client()
        job = self._call(
            client.batches.create,
            model=batch.model,
            src=lines,
            config=types.CreateBatchJobConfig(display_name=batch.key),
        )
        return str(job.name)

    def find(self, batch: PendingBatch) -> str | None:
        client = self.backend.client()

        def scan() -> str | None:
            for job in client.batches.list(config={"page_size": 100}):  # later pages load while iterating
                if getattr(job, "display_name", None) == batch.key:
                    return str(job.name)
            return None

        found: str | None = self._call(scan)
        return found

    def poll(self, batch: PendingBatch) -> BatchStatus:
        if batch.batch_id is None:
            raise ValueError(f"batch {batch.key}: poll before create")
        job = self._call(self.backend.client().batches.get, name=batch.batch_id)
        state = _state(job)
        status = BatchStatus(state=state, ended=_ENDED.get(state))
        if status.ended is None:
            return status
        error = getattr(job, "error", None)
        if error is not None:
            status.message = str(getattr(error, "message", error))[:300]
        dest = getattr(job, "dest", None)
        responses = list(getattr(dest, "inlined_responses", None) or [])
        for index, item in enumerate(responses):
            meta = getattr(item, "metadata", None) or {}
            custom_id = meta.get("custom_id") or (
                batch.requests[index].custom_id if index < len(batch.requests) else None
            )
            if custom_id is None:
                continue
            err = getattr(item, "error", None)
            if err is not None:
                code = err.get("code", 0) if isinstance(err, dict) else getattr(err, "code", 0)
                message = err.get("message", "") if isinstance(err, dict) else getattr(err, "message", "")
                status.errors[custom_id] = map_gemini_error(SimpleNamespace(code=code, message=message))
                continue
            try:
                status.replies[custom_id] = parse_response(item.response)
            except AnnotatorError as exc:
                status.errors[custom_id] = exc
        return status


def _client(backend: ChatBackend) -> GeminiBatchClient:
    if not isinstance(backend, GeminiBackend):
        raise TypeError(f"GeminiBatchClient needs a GeminiBackend, not {type(backend).__name__}")
    return GeminiBatchClient(backend)


# Batch mode "at 50% of the standard cost" (https://ai.google.dev/gemini-api/docs/batch-mode,
# https://ai.google.dev/gemini-api/docs/pricing).
BATCH_API = BatchSpec(provider=GeminiBackend.name, client=_client, price_factor=0.5)
