"""The run's writer: buffers rows and commits them as shards under the corpus lock."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from emoforge.configs.storage import StorageConfig
from emoforge.storage.records import SegmentRow, utcnow
from emoforge.storage.schema import rows_to_table
from emoforge.storage.shards.locked import LockedCorpus
from emoforge.storage.shards.manifest import write_manifest
from emoforge.storage.shards.state import CorpusState, done_rows


class CorpusWriter(LockedCorpus):
    """Buffers rows and commits them as shards; recovers a killed run's leftovers on open.

    Holds the corpus lock from construction to :meth:`close` (see storage/lock.py).

    Args:
        root: corpus directory (local path or fsspec URL).
        config: shard size and compression settings.
        run_id: id of the run writing; recorded per shard.
        resolved_config: the run's resolved pipeline config (stored in the manifest).
        config_hash: hash of ``resolved_config``.
        lock_wait_s: how long to wait for another writer to finish (None: as long as it
            takes; 0: refuse at once with ``CorpusLocked``).
    """

    def __init__(
        self,
        root: str,
        config: StorageConfig,
        run_id: str,
        resolved_config: dict[str, Any] | None = None,
        config_hash: str = "",
        lock_wait_s: float | None = 0.0,
    ) -> None:
        self.run_id = run_id
        self._buffer: list[SegmentRow] = []
        self._buffer_bytes = 0
        self._last_flush = time.monotonic()
        self._run = {
            "run_id": run_id,
            "started_at": utcnow().isoformat(),
            "finished_at": None,
            "status": "running",
            "config_hash": config_hash,
            "config": resolved_config or {},
            "counts": {},
        }
        super().__init__(root, config, f"run {run_id}", lock_wait_s)

    def _opened(self) -> None:
        self.manifest["runs"].append(self._run)

    # -- state ----------------------------------------------------------------------
    def done(self) -> CorpusState:
        """Committed rows (newest copy of each id): what resume can skip."""
        return done_rows(self.root)

    # -- writing --------------------------------------------------------------------
    def write(self, rows: Iterable[SegmentRow]) -> None:
        for row in rows:
            self._buffer.append(row)
            self._buffer_bytes += len(row.model_dump_json())
        if (
            len(self._buffer) >= self.config.max_rows_per_shard
            or self._buffer_bytes >= self.config.max_bytes_per_shard
            or time.monotonic() - self._last_flush >= self.config.flush_interval_s
        ):
            self.flush()

    def flush(self) -> str | None:
        """Commit buffered rows as one shard; returns its name.

        A failed write (disk full) raises and leaves the buffer, the manifest and the
        directory as they were: the rows are uncommitted and the next run redoes them.
        """
        self._last_flush = time.monotonic()
        if not self._buffer:
            return None
        # Keep only the last copy of an id inside one shard; across shards newer wins.
        latest: dict[str, SegmentRow] = {}
        for row in self._buffer:
            latest[row.row_id] = row
        entry = self.write_shard(rows_to_table(list(latest.values())), self.run_id)
        # Renamed into place = committed (a lost manifest update is adopted on the next open).
        self.manifest["shards"].append(entry)
        self._buffer.clear()
        self._buffer_bytes = 0
        self.save_manifest(entry["name"])
        return str(entry["name"])

    def close(self, counts: dict[str, Any] | None = None, status: str = "finished") -> None:
        """Commit what is buffered, record the run's outcome and release the lock."""
        try:
            self.flush()
            self._run["finished_at"] = utcnow().isoformat()
            self._run["status"] = status
            self._run["counts"] = counts or {}
            if status == "finished":
                for q in self.manifest.get("quarantined", []):
                    q["redone_by"] = q.get("redone_by") or self.run_id
            write_manifest(self.root, self.manifest)
        finally:
            self._unlock()
