"""The corpus's provider batches: ``batches.json`` next to ``manifest.json``, written crash-safely.

A batch agent's requests go through four recorded states, each written (temp file, fsync,
rename, like the manifest) *before* the provider call that follows it:

``preparing``  the request list (custom ids, cache keys) and the batch key are recorded;
``uploaded``   the provider holds the request file (OpenAI ``file_id``); Gemini skips it;
``submitted``  the provider's batch id is known; ``provider_state`` is its last polled state;
``ended``      the batch finished (completed, failed, expired, cancelled) and its answers are in
               the response cache; ``failures`` holds the lines that did not answer.

A run killed between two of these finds the record on resume and goes on from it: a
``preparing``/``uploaded`` record first looks for a provider batch carrying its key (OpenAI
``metadata``, Gemini ``display_name``) and adopts it, so a kill right after the provider
created the batch but before its id was written never creates a second one. The key is a
hash of the agent and its requests' custom ids, which derive from the annotation id and
the cache key of the prompt, so the same request always maps to the same record.
"""

from __future__ import annotations

import fcntl
import json
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Literal

from pydantic import Field

from emoforge.storage.records import Failure, Record, utcnow
from emoforge.storage.safe_files import open_nofollow
from emoforge.storage.shards import _fs, _is_local, _write_atomic

BATCHES = "batches.json"
BATCHES_FORMAT = 1

BatchState = Literal["preparing", "uploaded", "submitted", "ended"]

_LOCKS: dict[str, threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()


class BatchRequest(Record):
    """One request of a batch: which annotation it answers and where its answer is cached."""

    custom_id: str = Field(description="Provider-side request id: '{annotation_id}:{cache_key[:16]}'.")
    annotation_id: str = Field(description="'{segment_id}-{agent}' of the annotation it answers.")
    cache_key: str = Field(description="Response-cache key of the prompt; the answer is stored under it.")
    # Which recording waits on this request, so a run can leave that recording undecoded while
    # its batches run (agents/batch_waiting.py). None in records written before
    # these fields: such a batch is "unknown recording" and never makes a run skip anything.
    segment_id: str | None = Field(default=None, description="Parent segment id of the annotation.")
    recording_id: str | None = Field(default=None, description="Recording id of that segment.")


class PendingBatch(Record):
    """One provider batch of one agent, as far as this corpus knows it."""

    key: str = Field(description="Deterministic batch key (agent + request ids); sent as metadata/display name.")
    agent: str
    provider: str = Field(description="Backend of the agent (one with a batch API, agents/providers.py).")
    model: str
    state: BatchState = "preparing"
    requests: list[BatchRequest]
    file_id: str | None = Field(default=None, description="OpenAI input file id, once uploaded.")
    batch_id: str | None = Field(
        default=None, description="Provider batch id (OpenAI 'batch_...', Gemini 'batches/...')."
    )
    provider_state: str | None = Field(default=None, description="Last polled provider state.")
    prepared_at: datetime = Field(default_factory=utcnow)
    submitted_at: datetime | None = None
    checked_at: datetime | None = None
    ended_at: datetime | None = None
    collected_run: str | None = Field(default=None, description="Run that collected the batch's answers.")
    answered: int = Field(default=0, description="Lines answered (their answers are in the response cache).")
    failures: dict[str, Failure] = Field(default_factory=dict, description="custom_id -> why that line failed.")


def _lock(path: str) -> threading.Lock:
    with _LOCKS_GUARD:
        return _LOCKS.setdefault(path, threading.Lock())


class BatchBook:
    """Read and update ``<root>/batches.json``; every update re-reads the file under a lock.

    Threads of one process share a lock per path; processes (a process task runner) also take
    an ``flock`` on ``.batches.lock`` for local corpora.
    """

    def __init__(self, root: str) -> None:
        self.root = str(root)
        self.fs, self.base = _fs(self.root)
        self.path = f"{self.base}/{BATCHES}"

    def batches(self) -> list[PendingBatch]:
        if not self.fs.exists(self.path):
            return []
        with self.fs.open(self.path, "rb") as fh:
            data = json.loads(fh.read())
        return [PendingBatch.model_validate(b) for b in data.get("batches", [])]

    def pending(self) -> list[PendingBatch]:
        return [b for b in self.batches() if b.state != "ended"]

    def get(self, key: str) -> PendingBatch | None:
        return next((b for b in self.batches() if b.key == key), None)

    @contextmanager
    def _locked(self) -> Iterator[None]:
        with _lock(self.path):
            if not _is_local(self.fs):
                yield
                return
            Path(self.base).mkdir(parents=True, exist_ok=True)
            # O_NOFOLLOW: a batches lock planted as a link is refused, never opened through.
            fd = open_nofollow(f"{self.base}/.batches.lock", os.O_WRONLY | os.O_CREAT | os.O_APPEND)
            with os.fdopen(fd, "a") as fh:
                fcntl.flock(fh, fcntl.LOCK_EX)
                try:
                    yield
                finally:
                    fcntl.flock(fh, fcntl.LOCK_UN)

    def put(self, batch: PendingBatch) -> None:
        """Insert or replace the record with ``batch.key``; durable when this returns."""
        self.update(batch.key, lambda _: batch)

    def update(self, key: str, change: Callable[[PendingBatch | None], PendingBatch]) -> PendingBatch:
        with self._locked():
            batches = {b.key: b for b in self.batches()}
            batches[key] = new = change(batches.get(key))
            self._write(list(batches.values()))
            return new

    def prune(self, drop: Callable[[PendingBatch], bool]) -> int:
        """Remove the records ``drop`` selects; rewrites the file only when one goes."""
        with self._locked():
            batches = self.batches()
            kept = [b for b in batches if not drop(b)]
            if len(kept) < len(batches):
                self._write(kept)
            return len(batches) - len(kept)

    def _write(self, batches: list[PendingBatch]) -> None:
        body = {"format": BATCHES_FORMAT, "batches": [b.model_dump(mode="json") for b in batches]}
        self.fs.makedirs(self.base, exist_ok=True)
        _write_atomic(self.fs, self.path, json.dumps(body, indent=1, sort_keys=True).encode())


def pending_batches(root: str) -> list[dict[str, object]]:
    """Unfinished batches for ``inspect``: provider, id, requests, age and last known state."""
    now = utcnow()
    out: list[dict[str, object]] = []
    for b in BatchBook(root).pending():
        since = b.submitted_at or b.prepared_at
        out.append(
            {
                "agent": b.agent,
                "provider": b.provider,
                "id": b.batch_id or f"({b.state}) {b.key}",
                "requests": len(b.requests),
                "age_s": round((now - since).total_seconds()),
                "state": b.provider_state or b.state,
                "checked_at": b.checked_at.isoformat() if b.checked_at else None,
            }
        )
    return out
