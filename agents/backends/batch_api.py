"""What a provider's batch API client offers agents/batch.py: the ``BatchClient`` protocol and
the ``BatchStatus`` a poll returns. Its own module so the clients (openai_batch.py,
gemini_batch.py) and the runner that builds them do not import each other."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from emoforge.agents.base import AnnotatorError, ModelReply, Prompt
from emoforge.storage.batches import PendingBatch

Ended = Literal["completed", "failed", "expired", "cancelled"]


@dataclass
class BatchStatus:
    """A polled batch: the provider's state and, once ``ended``, its answers and line errors."""

    state: str
    ended: Ended | None = None
    message: str = ""
    replies: dict[str, ModelReply] = field(default_factory=dict)
    errors: dict[str, AnnotatorError] = field(default_factory=dict)


class BatchClient(Protocol):
    """One provider's batch API (agents/backends/openai_batch.py, gemini_batch.py)."""

    def line(self, custom_id: str, prompt: Prompt, max_output_tokens: int, temperature: float) -> Any: ...

    def upload(self, batch: PendingBatch, lines: list[Any]) -> str | None: ...

    def create(self, batch: PendingBatch, lines: list[Any]) -> str: ...

    def find(self, batch: PendingBatch) -> str | None: ...

    def poll(self, batch: PendingBatch) -> BatchStatus: ...
