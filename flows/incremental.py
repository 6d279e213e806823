"""Incremental runs: which inputs a (scheduled) rerun over a growing folder must process.

A recording's id is derived from its content hash, so an unchanged file maps to the same
id and a changed one to a new id. Before any task is submitted, every local input is
hashed and looked up in the committed rows: a recording whose rows are all committed and
final is dropped from the run, so a rerun over unchanged files does no phase work at all
(no probe, no decode, no model load). Hashes are cached in ``<out>/.cache/hashes.json``
keyed by path, size and modification time, so a rerun reads only new or touched files.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import fsspec

from emoforge.flows.work import RetryPolicy, recording_done, segment_needs_redo
from emoforge.storage.records import FileHash, MediaInput, file_sha256, recording_id_for, segment_id_for
from emoforge.storage.shards import CorpusState

log = logging.getLogger(__name__)

HASH_INDEX = ".cache/hashes.json"


class HashIndex:
    """sha256 of local files, reused while a file's size and mtime are unchanged.

    Args:
        root: corpus directory or fsspec URL; the index lives at ``<root>/.cache/hashes.json``.
    """

    def __init__(self, root: str) -> None:
        self.fs, base = fsspec.core.url_to_fs(str(root))
        self.path = f"{base.rstrip('/')}/{HASH_INDEX}"
        self._entries: dict[str, list[object]] = {}
        self._dirty = False
        if self.fs.exists(self.path):
            try:
                with self.fs.open(self.path, "rb") as fh:
                    self._entries = json.loads(fh.read())
            except (OSError, ValueError) as exc:
                # A damaged index only costs rehashing.
                log.warning("ignoring unreadable hash index %s: %s", self.path, exc)

    def sha256(self, path: str) -> str | None:
        """Content hash of a local file; None when it cannot be read (probing will say why)."""
        known = self.file_hash(path)
        return known.sha256 if known is not None else None

    def file_hash(self, path: str) -> FileHash | None:
        """The hash with the size/mtime it belongs to, so probing can reuse it instead of rehashing."""
        try:
            st = os.stat(path)
        except OSError:
            return None
        entry = self._entries.get(path)
        if entry is not None and entry[0] == st.st_size and entry[1] == st.st_mtime_ns:
            return FileHash(sha256=str(entry[2]), size_bytes=st.st_size, mtime_ns=st.st_mtime_ns)
        try:
            sha = file_sha256(path)
        except OSError:
            return None
        self._entries[path] = [st.st_size, st.st_mtime_ns, sha]
        self._dirty = True
        return FileHash(sha256=sha, size_bytes=st.st_size, mtime_ns=st.st_mtime_ns)

    def save(self) -> None:
        if not self._dirty:
            return
        parent = self.path.rsplit("/", 1)[0]
        self.fs.makedirs(parent, exist_ok=True)
        tmp = f"{self.path}.tmp-{os.getpid()}"
        with self.fs.open(tmp, "wb") as fh:
            fh.write(json.dumps(self._entries, sort_keys=True).encode())
        self.fs.mv(tmp, self.path)
        self._dirty = False


@dataclass
class IncrementalPlan:
    """Inputs to process now, and the recordings left alone because they are committed."""

    todo: list[MediaInput]
    skipped_recordings: list[str] = field(default_factory=list)
    skipped_segments: int = 0
    waiting_recordings: list[str] = field(default_factory=list)  # left for a run after their batches end
    waiting_segments: int = 0


def plan_inputs(
    items: list[MediaInput], state: CorpusState, retry: RetryPolicy, index: HashIndex | None
) -> IncrementalPlan:
    """Drop inputs whose recording (content hash -> id) is fully committed and final.

    Remote URLs and unreadable paths are always kept: their tasks produce the rows (or the
    failure rows) that say what happened. With no index (non-incremental run) or an empty
    corpus nothing is hashed here.
    """
    if index is None or not state.rows:
        return IncrementalPlan(todo=list(items))
    plan = IncrementalPlan(todo=[])
    for item in items:
        known = None if "://" in item.uri else index.file_hash(item.uri)
        if known is None:
            plan.todo.append(item)
            continue
        rec_id = recording_id_for(Path(item.uri), known.sha256)
        if recording_done(rec_id, state, retry):
            plan.skipped_recordings.append(rec_id)
            plan.skipped_segments += state.segment_counts.get(rec_id, 0)
        else:
            # Probing reuses this hash (while the file is unchanged): a new multi-GB video is read once.
            plan.todo.append(item.model_copy(update={"known_hash": known}))
    return plan


def hold_waiting(
    plan: IncrementalPlan, waiting: dict[str, set[str]], state: CorpusState, retry: RetryPolicy, index: HashIndex
) -> None:
    """Take out of ``plan.todo`` the inputs whose recording only waits on provider batches that
    are all still running (``agents/batch_waiting.py``): decoding, sampling and preprocessing
    them now would only lead the annotate phase to the same running batch.

    A recording with other work left (a committed segment ``retry`` redoes, or a segment
    neither committed nor pending) is kept: that work is not put off until its batch ends.
    The second is seen only once a committed row gives the recording's segment count; with
    none committed (a run killed before its commit), such a segment waits for the batch.

    Args:
        waiting: recording id -> its segment ids pending in batches still running.
        index: hashes the inputs to their recording ids (reused by probing).
    """
    if not waiting:
        return
    todo: list[MediaInput] = []
    for item in plan.todo:
        known = item.known_hash or (None if "://" in item.uri else index.file_hash(item.uri))
        if known is None:
            todo.append(item)
            continue
        rec_id = recording_id_for(Path(item.uri), known.sha256)
        pending = waiting.get(rec_id)
        ids = [segment_id_for(rec_id, i) for i in range(state.segment_counts.get(rec_id, 0))]
        if pending is None or any(segment_needs_redo(s, state, retry) for s in ids if s not in pending):
            todo.append(item.model_copy(update={"known_hash": known}))
            continue
        log.info("%s: %d segments wait on provider batches still running: not decoded this run", item.uri, len(pending))
        plan.waiting_recordings.append(rec_id)
        plan.waiting_segments += len(pending)
    plan.todo = todo


def response_cache_dir(out: str, configured: str | None) -> str:
    """Where agent responses are cached: the configured path, ``<out>/.cache/responses``
    for a local corpus, or a local folder keyed by the URL for remote corpora (the cache
    writes with ``os.replace``, which object stores do not offer)."""
    if configured:
        return configured
    if "://" not in out:
        return str(Path(out) / ".cache" / "responses")
    if out.startswith("file://"):
        return str(Path(out[len("file://") :]) / ".cache" / "responses")
    key = hashlib.sha256(out.encode()).hexdigest()[:16]
    return str(Path.home() / ".cache" / "emoforge" / "responses" / key)
