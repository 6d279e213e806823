"""Parquet shards + a JSON manifest: crash-safe writing, resume, last-write-wins reading.

Layout of a corpus directory (local path or any fsspec URL)::

    manifest.json              runs (resolved config, counts), shards (rows, bytes, sha256), stats
    shard-00000.parquet ...    SegmentRow rows with the explicit schema of storage/schema.py

    quarantine/                shards that failed their checksum or could not be read
    batches.json               provider batches of batch-mode agents (storage/batches.py)
    .emoforge.lock             held by the one writer (storage/lock.py)

Crash safety: a shard is written to a temporary name and renamed into place only when
complete (then the directory is fsynced, so the rename survives a power cut); the manifest
is rewritten the same way after every shard. A run killed at any point leaves either a
finished shard (adopted into the manifest on the next open if the kill came between rename
and manifest update) or a temporary file (deleted). Rows that never reached a finished
shard are redone on resume; a row id written twice (a retried transient failure, an
``--overwrite`` rerun) resolves to the newest shard's copy, so readers never see duplicates.

One writer at a time: ``CorpusWriter`` holds the corpus lock from open to close, so
recovery (deleting temporary files, marking runs interrupted) and shard numbering happen
under the lock and cannot touch a live run's files.

Reads cost what they return: a reader checks each shard by what the manifest recorded
without reading its bytes (present, same size, a Parquet footer with the recorded row
count) and then reads only the columns asked for; shards carry page CRCs, which the reader
checks on the pages it reads. A bad or missing shard is skipped (``verify`` names it, so
``inspect`` shows it). The sha256 of every byte is checked by ``verify(root, full=True)``
(``emoforge verify``, which a schedule can run). A writer (the cheap check, on open) and
``emoforge verify --repair`` (the full one) move a bad shard to ``quarantine/`` and list
it under ``quarantined`` in the manifest, so its rows count as missing and the next run
redoes them. An unreadable ``manifest.json`` is rebuilt from the shards (run history is
lost, rows are not); the bad file is kept as ``manifest.json.corrupt-*``.

Compaction (storage/compaction.py) rewrites small shards and drops superseded copies; its
journal (``compacting``) and history (``compactions``) live in the manifest, and recovery
on open rolls an interrupted one back or finishes its cleanup.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import fsspec
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from emoforge.configs.storage import StorageConfig
from emoforge.storage import lock as corpus_lock
from emoforge.storage.records import SCHEMA_VERSION, TRANSIENT_ERRORS, ErrorKind, SegmentRow, Status, utcnow
from emoforge.storage.schema import ROW_SCHEMA, rows_to_table, table_to_rows

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
SHARD_PREFIX = "shard-"
SHARD_SUFFIX = ".parquet"
TMP_MARK = ".tmp-"
FORMAT = "emoforge-corpus"
QUARANTINE = "quarantine"
COMPACTING = "compacting"  # manifest key: a compaction in progress (storage/compaction.py)
CORRUPT_MARK = ".corrupt-"


class CorpusWriteError(OSError):
    """A shard or the manifest could not be written (disk full, permissions): the rows of
    that commit are not in the corpus, everything committed before is intact, and a rerun
    redoes exactly the missing rows."""


def _fs(root: str) -> tuple[fsspec.AbstractFileSystem, str]:
    fs, path = fsspec.core.url_to_fs(str(root))
    return fs, path.rstrip("/")


def shard_name(index: int) -> str:
    return f"{SHARD_PREFIX}{index:05d}{SHARD_SUFFIX}"


def _shard_index(name: str) -> int | None:
    base = name.rsplit("/", 1)[-1]
    if base.startswith(SHARD_PREFIX) and base.endswith(SHARD_SUFFIX) and TMP_MARK not in base:
        digits = base[len(SHARD_PREFIX) : -len(SHARD_SUFFIX)]
        return int(digits) if digits.isdigit() else None
    return None


def _is_local(fs: fsspec.AbstractFileSystem) -> bool:
    protocols = fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,)
    return "file" in protocols


def _fsync_dir(fs: fsspec.AbstractFileSystem, directory: str) -> None:
    """Make a rename in ``directory`` durable (local filesystems; object stores commit on upload)."""
    if not _is_local(fs):
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_atomic(fs: fsspec.AbstractFileSystem, path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` all or nothing; a failed write (disk full) leaves no temp file."""
    # pid + random: two processes (or two writers in one) never share a temporary name.
    tmp = f"{path}{TMP_MARK}{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        with fs.open(tmp, "wb") as fh:
            fh.write(data)
            if hasattr(fh, "flush"):
                fh.flush()
            fileno = getattr(fh, "fileno", None)
            if callable(fileno):
                # Remote filesystems have no real descriptor; their upload is the commit.
                with contextlib.suppress(OSError, ValueError):
                    os.fsync(fileno())
        # Locally a plain rename: it replaces a symlink at ``path`` itself, where fs.mv
        # (shutil.move) would move the file into a directory the link points to.
        os.replace(tmp, path) if _is_local(fs) else fs.mv(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            if fs.exists(tmp):
                fs.rm(tmp)
        raise
    _fsync_dir(fs, path.rsplit("/", 1)[0] or "/")


write_atomic = _write_atomic  # for writers outside storage (the aggregation sidecar)


def _empty_manifest() -> dict[str, Any]:
    now = utcnow().isoformat()
    return {
        "format": FORMAT,
        "schema_version": SCHEMA_VERSION,
        "created_at": now,
        "updated_at": now,
        "shards": [],
        "runs": [],
        "stats": {},
    }


def retired_shards(manifest: dict[str, Any]) -> set[str]:
    """Names of shards a committed compaction replaced: never adopted again, never reused."""
    return {e["name"] for c in manifest.get("compactions", []) for e in c.get("replaced", [])}


def _describe_bytes(name: str, data: bytes, run_id: str | None = None) -> dict[str, Any]:
    """Manifest entry of a shard from its bytes (raises ArrowInvalid/OSError if unreadable)."""
    meta = pq.read_metadata(pa.BufferReader(data))
    return {
        "name": name,
        "rows": meta.num_rows,
        "bytes": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "run_id": run_id or (meta.metadata or {}).get(b"emoforge.run_id", b"").decode(),
        "schema_version": SCHEMA_VERSION,
        "created_at": utcnow().isoformat(),
    }


def rebuild_manifest(root: str, reason: str) -> dict[str, Any]:
    """A manifest made from the readable shards on disk, in index (= commit) order.

    Unreadable shards are left out here; a writer quarantines them on open.
    """
    fs, base = _fs(root)
    manifest = _empty_manifest()
    names = sorted(
        (n for p in fs.ls(base, detail=False) if _shard_index(n := str(p).rsplit("/", 1)[-1]) is not None),
        key=lambda n: _shard_index(n) or 0,
    )
    for name in names:
        try:
            with fs.open(f"{base}/{name}", "rb") as fh:
                manifest["shards"].append(_describe_bytes(name, fh.read()))
        except (pa.ArrowInvalid, OSError) as exc:
            log.warning("shard %s is unreadable while rebuilding the manifest: %s", name, exc)
    manifest["rebuilt"] = {"reason": reason, "at": utcnow().isoformat(), "shards": len(manifest["shards"])}
    # Not yet on disk: readers report it (verify); a writer saves it and drops the mark.
    manifest["_unsaved_rebuild"] = True
    return manifest


def read_manifest(root: str) -> dict[str, Any]:
    """The corpus manifest; an unreadable one is rebuilt from the shards (in memory)."""
    fs, base = _fs(root)
    path = f"{base}/{MANIFEST}"
    if not fs.exists(path):
        return _empty_manifest()
    with fs.open(path, "rb") as fh:
        raw = fh.read()
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        log.warning("%s is unreadable (%s); rebuilding it from the shards", path, exc)
        return rebuild_manifest(root, f"manifest.json unreadable: {exc}")
    if not isinstance(data, dict) or not isinstance(data.get("shards"), list):
        if isinstance(data, dict) and "format" in data and data["format"] != FORMAT:
            raise ValueError(f"{path}: not an emoforge corpus manifest")
        log.warning("%s has no shard list; rebuilding it from the shards", path)
        return rebuild_manifest(root, "manifest.json has no shard list")
    if data.get("format") != FORMAT:
        raise ValueError(f"{path}: not an emoforge corpus manifest")
    data.setdefault("runs", [])
    data.setdefault("stats", {})
    return data


def _set_aside_corrupt_manifest(root: str) -> None:
    """Keep an unreadable manifest as ``manifest.json.corrupt-<time>`` before a rebuilt one replaces it."""
    fs, base = _fs(root)
    path = f"{base}/{MANIFEST}"
    if fs.exists(path):
        stamp = utcnow().strftime("%Y%m%dT%H%M%S%f")
        fs.mv(path, f"{path}{CORRUPT_MARK}{stamp}")
        log.warning("kept the unreadable manifest as %s%s%s", MANIFEST, CORRUPT_MARK, stamp)


def write_manifest(root: str, manifest: dict[str, Any]) -> None:
    fs, base = _fs(root)
    fs.makedirs(base, exist_ok=True)
    manifest.pop("_unsaved_rebuild", None)
    manifest["updated_at"] = utcnow().isoformat()
    _write_atomic(fs, f"{base}/{MANIFEST}", json.dumps(manifest, indent=2, sort_keys=True, default=str).encode())


def update_manifest_stats(root: str, key: str, value: Any) -> None:
    """Store a JSON-able statistics block (agreement, aggregation...) under ``stats[key]``.

    Takes the corpus lock (re-entered if the caller holds it): raises ``CorpusLocked`` while
    another run writes, instead of overwriting the manifest that run is updating.
    """
    with corpus_lock.corpus_lock(root, f"update stats.{key}"):
        manifest = read_manifest(root)
        if manifest.get("_unsaved_rebuild"):
            _set_aside_corrupt_manifest(root)
        manifest.setdefault("stats", {})[key] = value
        write_manifest(root, manifest)


@dataclass(frozen=True)
class DoneRow:
    status: Status
    failure_kind: ErrorKind | None

    @property
    def final(self) -> bool:
        """True when resume must not redo the row (ok, or a deterministic failure)."""
        return self.status != Status.failed or self.failure_kind not in TRANSIENT_ERRORS


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


# --------------------------------------------------------------------------- reading


HASH_CHUNK = 8 << 20


def _sha256(fs: fsspec.AbstractFileSystem, path: str) -> str:
    """sha256 of a file, streamed: a shard is never held in memory whole to hash it."""
    digest = hashlib.sha256()
    with fs.open(path, "rb") as fh:
        while chunk := fh.read(HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _sizes(fs: fsspec.AbstractFileSystem, base: str) -> dict[str, int]:
    """Size of every file in the corpus folder from one listing (one LIST on an object store,
    not a HEAD per shard)."""
    return {str(info["name"]).rsplit("/", 1)[-1]: int(info.get("size") or 0) for info in fs.ls(base, detail=True)}


def _check_shard(
    fs: fsspec.AbstractFileSystem,
    base: str,
    entry: dict[str, Any],
    sizes: dict[str, int],
    full: bool = False,
    footer: bool = True,
) -> str | None:
    """Why a listed shard cannot be trusted (None: it can). Writers, readers and ``verify``
    all check a shard through here.

    The cheap check reads no row: the shard is present, has the size the manifest recorded,
    and its Parquet footer (read by range) holds the recorded row count. That catches a
    missing, truncated, replaced or rewritten file. ``full`` also streams every byte through
    sha256 against the manifest, which catches a flipped bit anywhere (the page CRCs only
    catch one in the pages a reader reads).
    """
    name = entry["name"]
    path = f"{base}/{name}"
    if name not in sizes:
        return "missing"
    if full and entry.get("sha256") and _sha256(fs, path) != entry["sha256"]:
        return "sha256 mismatch"
    if entry.get("bytes") is not None and sizes[name] != entry["bytes"]:
        return f"size mismatch ({sizes[name]} bytes, the manifest recorded {entry['bytes']})"
    if not footer:  # the caller opens the shard next and checks the footer itself
        return None
    try:
        with fs.open(path, "rb") as fh:
            rows = pq.ParquetFile(fh).metadata.num_rows
    except (pa.ArrowInvalid, OSError) as exc:
        return f"unreadable: {exc}"
    if entry.get("rows") is not None and rows != entry["rows"]:
        return f"row count mismatch ({rows} rows, the manifest recorded {entry['rows']})"
    return None


def shard_paths(root: str) -> list[str]:
    """Committed shards in commit order (manifest order, plus adopted strays)."""
    fs, base = _fs(root)
    manifest = read_manifest(root)
    names = [s["name"] for s in manifest["shards"]]
    return [f"{base}/{n}" for n in names if fs.exists(f"{base}/{n}")]


def _good_shards(root: str, columns: list[str] | None) -> Iterator[pa.Table]:
    """Each listed shard that passes the cheap check (``_check_shard``), in commit order,
    reading only ``columns`` (with their page CRCs checked where the shard has them).

    A missing, altered or unreadable shard is skipped with a warning (its rows read as
    missing, so a rerun redoes them); ``verify`` names it for ``inspect``.
    """
    fs, base = _fs(root)
    entries = read_manifest(root)["shards"]
    sizes = _sizes(fs, base) if entries else {}
    for entry in entries:
        problem = _check_shard(fs, base, entry, sizes, footer=False)
        if problem is not None:
            log.warning("shard %s is %s; its rows are skipped", entry["name"], problem)
            continue
        try:
            with fs.open(f"{base}/{entry['name']}", "rb") as fh:
                shard = pq.ParquetFile(fh, page_checksum_verification=True)
                if entry.get("rows") is not None and shard.metadata.num_rows != entry["rows"]:
                    log.warning("shard %s holds %d rows, not %d; its rows are skipped", entry["name"],
                                shard.metadata.num_rows, entry["rows"])  # fmt: skip
                    continue
                wanted = columns
                if columns is not None:
                    # A column added after the shard was written (a nullable field) reads as
                    # nulls (read_table fills it) instead of making the whole shard unreadable.
                    leaves = [shard.schema.column(i).path for i in range(len(shard.schema))]
                    wanted = [c for c in columns if any(p == c or p.startswith(f"{c}.") for p in leaves)]
                yield shard.read(columns=wanted)
        except (pa.ArrowInvalid, OSError) as exc:
            log.warning("shard %s is unreadable (%s); its rows are skipped", entry["name"], exc)


def read_table(root: str, columns: list[str] | None = None) -> pa.Table:
    """All rows as one Arrow table, deduplicated by ``row_id`` (newest shard wins).

    Args:
        columns: top-level columns, or dotted paths into nested ones (``recording.id``,
            ``annotations.list.element.status``): only those bytes are read, and a struct
            column then holds only the fields asked for. None reads every column.
    """
    wanted = None if columns is None else list(dict.fromkeys(["row_id", *columns]))
    tops = None if wanted is None else list(dict.fromkeys(c.split(".", 1)[0] for c in wanted))
    tables = list(_good_shards(root, wanted))
    if not tables:
        schema = ROW_SCHEMA if tops is None else pa.schema([ROW_SCHEMA.field(c) for c in tops])
        return schema.empty_table()
    table = pa.concat_tables(tables, promote_options="default")
    for name in tops or []:
        if name not in table.column_names:  # no shard has it yet: nulls of its declared type
            declared = ROW_SCHEMA.field(name)
            table = table.append_column(declared, pa.nulls(table.num_rows, declared.type))
    # Last write wins: shards come in commit order and hold an id once each, so the last
    # occurrence of an id is the newest copy.
    position = table.append_column("_i", pa.array(range(table.num_rows), pa.int64()))
    last = position.select(["row_id", "_i"]).group_by("row_id").aggregate([("_i", "max")]).column("_i_max")
    if len(last) < table.num_rows:
        table = table.take(pc.take(last, pc.sort_indices(last)))
    if columns is not None and "row_id" not in columns:
        table = table.drop_columns(["row_id"])
    return table


def read_rows(root: str) -> Iterator[SegmentRow]:
    """Typed rows of a corpus (deduplicated, upgraded to the current schema version)."""
    yield from table_to_rows(read_table(root))


@dataclass
class CorpusState:
    """What is committed: each row's outcome, and each recording's segment count.

    ``by_recording`` lists each recording's committed row ids, so that ``of_recording``
    hands a stage task its own recording's state, never the corpus's."""

    rows: dict[str, DoneRow]
    segment_counts: dict[str, int]
    by_recording: dict[str, list[str]] = field(default_factory=dict)

    def of_recording(self, recording_id: str) -> CorpusState:
        """The state of one recording: its rows and segment count only."""
        ids = self.by_recording.get(recording_id, [])
        count = self.segment_counts.get(recording_id)
        return CorpusState(
            rows={rid: self.rows[rid] for rid in ids},
            segment_counts={} if count is None else {recording_id: count},
            by_recording={recording_id: list(ids)} if ids else {},
        )


DONE_COLUMNS = ["row_id", "status", "failure.kind", "recording.id", "recording.segment_count"]
"""What resume needs of a row: ``read_table(root, DONE_COLUMNS)`` reads nothing else."""

_DONE: dict[tuple[str, str | None], DoneRow] = {}


def _done_row(status: str, kind: str | None) -> DoneRow:
    """One shared DoneRow per (status, kind): a million committed rows hold a handful."""
    kind = kind or None
    key = (status, kind)
    if key not in _DONE:
        _DONE[key] = DoneRow(status=Status(status), failure_kind=ErrorKind(kind) if kind else None)
    return _DONE[key]


def corpus_state(table: pa.Table) -> CorpusState:
    """The committed state from a deduplicated table holding ``DONE_COLUMNS``.

    Grouping and encoding run in Arrow; Python builds only the dicts it returns (a million
    rows: about a second, a few hundred MB)."""
    if table.num_rows == 0:
        return CorpusState(rows={}, segment_counts={})
    recording = table.column("recording").combine_chunks()
    kinds = pc.struct_field(table.column("failure").combine_chunks(), "kind")
    flat = pa.table(
        {
            "row_id": table.column("row_id"),
            "rec": pc.struct_field(recording, "id"),
            "outcome": pc.binary_join_element_wise(table.column("status"), pc.fill_null(kinds, ""), "|"),
            "count": pc.struct_field(recording, "segment_count"),
        }
    )
    # Ordered: the newest row (deduplicated rows come in commit order) that knows the count wins.
    counted = flat.group_by("rec", use_threads=False).aggregate([("count", "last")])
    counts = {
        rec: int(n)
        for rec, n in zip(counted.column("rec").to_pylist(), counted.column("count_last").to_pylist(), strict=True)
        if rec is not None and n is not None
    }
    flat = flat.sort_by("rec")
    encoded = flat.column("outcome").combine_chunks().dictionary_encode()
    outcomes = [_done_row(*o.split("|", 1)) for o in encoded.dictionary.to_pylist()]
    ids = flat.column("row_id").to_pylist()
    rows = dict(zip(ids, map(outcomes.__getitem__, encoded.indices.to_pylist()), strict=True))
    runs = pc.run_end_encode(flat.column("rec").combine_chunks())
    by_recording: dict[str, list[str]] = {}
    start = 0
    for rec, end in zip(runs.values.to_pylist(), runs.run_ends.to_pylist(), strict=True):
        if rec is not None:
            by_recording[rec] = ids[start:end]
        start = end
    return CorpusState(rows=rows, segment_counts=counts, by_recording=by_recording)


def done_rows(root: str) -> CorpusState:
    return corpus_state(read_table(root, columns=DONE_COLUMNS))


def verify(root: str, full: bool = True) -> list[str]:
    """Problems found: missing, altered or unreadable shards, a manifest rebuilt in memory,
    and quarantined shards whose rows no finished run has redone yet.

    Args:
        full: hash every shard's bytes against the manifest's sha256 (``emoforge verify``);
            False makes only the cheap check readers make (``inspect``), which reads no row.
    """
    fs, base = _fs(root)
    manifest = read_manifest(root)
    problems = []
    if manifest.get("_unsaved_rebuild"):
        rebuilt = manifest["rebuilt"]
        problems.append(
            f"{MANIFEST}: {rebuilt['reason']}; rebuilt from {rebuilt['shards']} shards (the next annotate run saves it)"
        )
    sizes = _sizes(fs, base) if manifest["shards"] else {}
    for entry in manifest["shards"]:
        problem = _check_shard(fs, base, entry, sizes, full=full)
        if problem == "missing":
            problems.append(f"{entry['name']}: missing ({entry.get('rows')} rows; rerun annotate to redo them)")
        elif problem == "sha256 mismatch":  # readers may not see it: only the full check does
            problems.append(
                f"{entry['name']}: {problem} ({entry.get('rows')} rows; `emoforge verify --repair` "
                "quarantines it, then rerun annotate to redo them)"
            )
        elif problem is not None:
            problems.append(
                f"{entry['name']}: {problem} ({entry.get('rows')} rows skipped; "
                "rerun annotate to quarantine it and redo them)"
            )
    for q in manifest.get("quarantined", []):
        if not q.get("redone_by"):
            problems.append(
                f"{q['name']}: quarantined ({q['reason']}; moved to {q['moved_to']}); "
                f"{q.get('rows')} rows not redone yet"
            )
    return problems


def repair(root: str, lock_wait_s: float | None = 0.0) -> list[str]:
    """Hash every shard (``verify(root, full=True)``) under the corpus lock and move the bad
    ones to ``quarantine/``; the next annotate run redoes their rows. Returns their names."""
    before = len(read_manifest(root).get("quarantined", []))
    corpus = LockedCorpus(root, StorageConfig(), "verify --repair", lock_wait_s, full_check=True)
    corpus.release()
    return [q["name"] for q in corpus.manifest.get("quarantined", [])[before:]]
