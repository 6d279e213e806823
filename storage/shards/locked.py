"""A corpus opened under its lock: recovery from a killed writer, quarantine, committing a shard."""

from __future__ import annotations

import logging
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from emoforge.configs.storage import StorageConfig
from emoforge.storage import lock as corpus_lock
from emoforge.storage.records import utcnow
from emoforge.storage.shards.checks import _check_shard, _sizes
from emoforge.storage.shards.files import (
    COMPACTING,
    MANIFEST,
    QUARANTINE,
    TMP_MARK,
    CorpusWriteError,
    _fs,
    _fsync_dir,
    _shard_index,
    _write_atomic,
    shard_name,
)
from emoforge.storage.shards.manifest import (
    _describe_bytes,
    _set_aside_corrupt_manifest,
    read_manifest,
    retired_shards,
    write_manifest,
)

log = logging.getLogger(__name__)


class LockedCorpus:
    """A corpus opened under its lock, recovered from a killed writer's leftovers: what
    writing and maintenance (compaction, repair) share. Records no run.

    Args:
        root: corpus directory (local path or fsspec URL).
        config: shard size and compression settings.
        holder: what holds the lock (shown to a second writer).
        lock_wait_s: how long to wait for another writer to finish (None: as long as it
            takes; 0: refuse at once with ``CorpusLocked``).
        full_check: on open, hash every shard against the manifest before trusting it
            (``emoforge verify --repair``) instead of the cheap size-and-footer check.
    """

    def __init__(
        self,
        root: str,
        config: StorageConfig,
        holder: str,
        lock_wait_s: float | None = 0.0,
        full_check: bool = False,
    ) -> None:
        self.root = str(root)
        self.config = config
        self.full_check = full_check
        self.fs, self.base = _fs(self.root)
        self.fs.makedirs(self.base, exist_ok=True)
        self._release = corpus_lock.acquire(self.root, holder, lock_wait_s)
        self._locked = True
        try:
            self.manifest = read_manifest(self.root)
            self._recover()
            self._opened()
            write_manifest(self.root, self.manifest)
        except BaseException:
            self._unlock()
            raise

    def _opened(self) -> None:
        """What a subclass adds to the manifest on open, before it is saved."""

    def _unlock(self) -> None:
        if self._locked:
            self._locked = False
            self._release()

    def release(self) -> None:
        """Save the manifest and release the lock."""
        try:
            write_manifest(self.root, self.manifest)
        finally:
            self._unlock()

    # -- recovery (under the lock: no other run is live) ------------------------------
    def _recover(self) -> None:
        if self.manifest.get("_unsaved_rebuild"):
            _set_aside_corrupt_manifest(self.root)
        pending = self.manifest.pop(COMPACTING, None)
        checked = []
        sizes = _sizes(self.fs, self.base)
        for entry in self.manifest["shards"]:
            problem = _check_shard(self.fs, self.base, entry, sizes, full=self.full_check)
            if problem is None:
                checked.append(entry)
            else:
                self._quarantine(entry["name"], problem, entry)
        self.manifest["shards"] = checked
        listed = {s["name"] for s in checked}
        retired = retired_shards(self.manifest)
        for info in self.fs.ls(self.base, detail=False):
            name = str(info).rsplit("/", 1)[-1]
            index = _shard_index(name)
            if TMP_MARK in name:
                # Safe only because we hold the lock: no live run owns a temporary file now.
                log.info("removing unfinished file %s from an interrupted run", name)
                self.fs.rm(f"{self.base}/{name}")
            elif index is None or name in listed:
                continue
            elif name in retired:
                # Replaced by a compaction whose manifest switch is committed: finish its cleanup.
                log.info("removing %s, replaced by a compaction", name)
                self.fs.rm(f"{self.base}/{name}")
            elif pending is not None and index >= pending["first_index"]:
                # Written by a compaction killed before its switch: the shards it would have
                # replaced are still listed, so roll it back.
                log.info("removing %s, written by an interrupted compaction", name)
                self.fs.rm(f"{self.base}/{name}")
            else:
                # Renamed into place but the manifest update was lost: the shard is
                # complete (the rename is the commit point), so adopt it.
                try:
                    entry = self._describe(name)
                except (pa.ArrowInvalid, OSError) as exc:
                    self._quarantine(name, f"unreadable: {exc}", None)
                    continue
                log.info("adopting committed shard %s missing from the manifest", name)
                self.manifest["shards"].append(entry)
        self.manifest["shards"].sort(key=lambda s: _shard_index(s["name"]) or 0)
        for run in self.manifest["runs"]:
            if run.get("status") == "running":
                run["status"] = "interrupted"

    def _quarantine(self, name: str, reason: str, entry: dict[str, Any] | None) -> None:
        """Move a bad shard aside; its rows then count as missing and this run redoes them."""
        src = f"{self.base}/{name}"
        moved_to = None
        if self.fs.exists(src):
            moved_to = f"{QUARANTINE}/{name}.{utcnow().strftime('%Y%m%dT%H%M%S%f')}"
            self.fs.makedirs(f"{self.base}/{QUARANTINE}", exist_ok=True)
            self.fs.mv(src, f"{self.base}/{moved_to}")
            _fsync_dir(self.fs, self.base)
        log.warning("shard %s: %s; its rows will be redone (moved to %s)", name, reason, moved_to)
        self.manifest.setdefault("quarantined", []).append(
            {
                "name": name,
                "reason": reason,
                "rows": (entry or {}).get("rows"),
                "run_id": (entry or {}).get("run_id"),
                "moved_to": moved_to,
                "at": utcnow().isoformat(),
                "redone_by": None,
            }
        )

    def _describe(self, name: str, run_id: str | None = None) -> dict[str, Any]:
        with self.fs.open(f"{self.base}/{name}", "rb") as fh:
            return _describe_bytes(name, fh.read(), run_id)

    def next_index(self) -> int:
        """Next shard number: past every name in the manifest, on disk, quarantined or
        replaced by a compaction, so a new shard never overwrites or reuses another's name."""
        names = [s["name"] for s in self.manifest["shards"]]
        names += [q["name"] for q in self.manifest.get("quarantined", [])]
        names += list(retired_shards(self.manifest))
        names += [str(p).rsplit("/", 1)[-1] for p in self.fs.ls(self.base, detail=False)]
        return max((i for n in names if (i := _shard_index(n)) is not None), default=-1) + 1

    # -- committing -------------------------------------------------------------------
    def write_shard(self, table: pa.Table, run_id: str) -> dict[str, Any]:
        """Write ``table`` as the next shard (renamed into place when complete) and return its
        manifest entry; the caller lists it and saves the manifest. Raises ``CorpusWriteError``
        when it cannot be written (nothing is left behind)."""
        if not self._locked:
            raise RuntimeError(f"writer of {self.root} is closed")
        table = table.replace_schema_metadata({**(table.schema.metadata or {}), b"emoforge.run_id": run_id.encode()})
        sink = pa.BufferOutputStream()
        compression = None if self.config.compression == "none" else self.config.compression
        # Page CRCs let a reader check the pages it reads without hashing the whole shard.
        pq.write_table(table, sink, compression=compression, write_page_checksum=True)
        data = sink.getvalue().to_pybytes()
        name = shard_name(self.next_index())
        entry = _describe_bytes(name, data, run_id)
        try:
            _write_atomic(self.fs, f"{self.base}/{name}", data)
        except OSError as exc:
            raise CorpusWriteError(
                exc.errno,
                f"could not commit {table.num_rows} rows to {self.root} ({exc.strerror or exc}); rows committed "
                "earlier are intact: free space and rerun the same command to redo the rest",
            ) from exc
        return entry

    def save_manifest(self, committed: str) -> None:
        """Save the manifest after ``committed`` (a shard name) was renamed into place."""
        try:
            write_manifest(self.root, self.manifest)
        except OSError as exc:
            raise CorpusWriteError(
                exc.errno,
                f"{committed} is committed but {MANIFEST} of {self.root} could not be updated "
                f"({exc.strerror or exc}); the next run adopts the shard",
            ) from exc
