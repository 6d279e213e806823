"""Parquet shards + a JSON manifest: crash-safe writing, resume, last-write-wins reading.

Layout of a corpus directory (local path or any fsspec URL)::

    manifest.json              runs (resolved config, counts), shards (rows, bytes, sha256), stats
    shard-00000.parquet ...    SegmentRow rows with the explicit schema of storage/schema.py

Crash safety: a shard is written to a temporary name and renamed into place only when
complete; the manifest is rewritten the same way after every shard. A run killed at any
point leaves either a finished shard (adopted into the manifest on the next open if the
kill came between rename and manifest update) or a temporary file (deleted). Rows that
never reached a finished shard are redone on resume; a row id written twice (a retried
transient failure, an ``--overwrite`` rerun) resolves to the newest shard's copy, so
readers never see duplicates.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq

from emoforge.configs.storage import StorageConfig
from emoforge.storage.records import SCHEMA_VERSION, TRANSIENT_ERRORS, ErrorKind, SegmentRow, Status, utcnow
from emoforge.storage.schema import ROW_SCHEMA, rows_to_table, table_to_rows

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
SHARD_PREFIX = "shard-"
SHARD_SUFFIX = ".parquet"
TMP_MARK = ".tmp-"
FORMAT = "emoforge-corpus"


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


def _write_atomic(fs: fsspec.AbstractFileSystem, path: str, data: bytes) -> None:
    tmp = f"{path}{TMP_MARK}{os.getpid()}"
    with fs.open(tmp, "wb") as fh:
        fh.write(data)
        if hasattr(fh, "flush"):
            fh.flush()
        fileno = getattr(fh, "fileno", None)
        if callable(fileno):
            # Remote filesystems have no real descriptor; their upload is the commit.
            with contextlib.suppress(OSError, ValueError):
                os.fsync(fileno())
    fs.mv(tmp, path)


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


def read_manifest(root: str) -> dict[str, Any]:
    fs, base = _fs(root)
    path = f"{base}/{MANIFEST}"
    if not fs.exists(path):
        return _empty_manifest()
    with fs.open(path, "rb") as fh:
        data: dict[str, Any] = json.loads(fh.read())
    if data.get("format") != FORMAT:
        raise ValueError(f"{path}: not an emoforge corpus manifest")
    return data


def write_manifest(root: str, manifest: dict[str, Any]) -> None:
    fs, base = _fs(root)
    fs.makedirs(base, exist_ok=True)
    manifest["updated_at"] = utcnow().isoformat()
    _write_atomic(fs, f"{base}/{MANIFEST}", json.dumps(manifest, indent=2, sort_keys=True, default=str).encode())


def update_manifest_stats(root: str, key: str, value: Any) -> None:
    """Store a JSON-able statistics block (agreement, aggregation...) under ``stats[key]``."""
    manifest = read_manifest(root)
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


class CorpusWriter:
    """Buffers rows and commits them as shards; recovers a killed run's leftovers on open.

    Args:
        root: corpus directory (local path or fsspec URL).
        config: shard size and compression settings.
        run_id: id of the run writing; recorded per shard.
        resolved_config: the run's resolved pipeline config (stored in the manifest).
        config_hash: hash of ``resolved_config``.
    """

    def __init__(
        self,
        root: str,
        config: StorageConfig,
        run_id: str,
        resolved_config: dict[str, Any] | None = None,
        config_hash: str = "",
    ) -> None:
        self.root = str(root)
        self.config = config
        self.run_id = run_id
        self.fs, self.base = _fs(self.root)
        self.fs.makedirs(self.base, exist_ok=True)
        self._buffer: list[SegmentRow] = []
        self._buffer_bytes = 0
        self._last_flush = time.monotonic()
        self.manifest = read_manifest(self.root)
        self._recover()
        self._run = {
            "run_id": run_id,
            "started_at": utcnow().isoformat(),
            "finished_at": None,
            "status": "running",
            "config_hash": config_hash,
            "config": resolved_config or {},
            "counts": {},
        }
        self.manifest["runs"].append(self._run)
        write_manifest(self.root, self.manifest)

    # -- recovery -------------------------------------------------------------------
    def _recover(self) -> None:
        listed = {s["name"] for s in self.manifest["shards"]}
        for info in self.fs.ls(self.base, detail=False):
            name = str(info).rsplit("/", 1)[-1]
            if TMP_MARK in name:
                log.info("removing unfinished file %s from an interrupted run", name)
                self.fs.rm(f"{self.base}/{name}")
            elif _shard_index(name) is not None and name not in listed:
                # Renamed into place but the manifest update was lost: the shard is
                # complete (the rename is the commit point), so adopt it.
                try:
                    entry = self._describe(name)
                except (pa.ArrowInvalid, OSError) as exc:
                    log.warning("ignoring unreadable shard %s: %s", name, exc)
                    continue
                log.info("adopting committed shard %s missing from the manifest", name)
                self.manifest["shards"].append(entry)
        self.manifest["shards"].sort(key=lambda s: s["name"])
        for run in self.manifest["runs"]:
            if run.get("status") == "running":
                run["status"] = "interrupted"

    def _describe(self, name: str, run_id: str | None = None) -> dict[str, Any]:
        path = f"{self.base}/{name}"
        with self.fs.open(path, "rb") as fh:
            data = fh.read()
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
        """Commit buffered rows as one shard; returns its name."""
        self._last_flush = time.monotonic()
        if not self._buffer:
            return None
        # Keep only the last copy of an id inside one shard; across shards newer wins.
        latest: dict[str, SegmentRow] = {}
        for row in self._buffer:
            latest[row.row_id] = row
        table = rows_to_table(list(latest.values()))
        table = table.replace_schema_metadata(
            {**(table.schema.metadata or {}), b"emoforge.run_id": self.run_id.encode()}
        )
        sink = pa.BufferOutputStream()
        compression = None if self.config.compression == "none" else self.config.compression
        pq.write_table(table, sink, compression=compression)
        data = sink.getvalue().to_pybytes()
        indices = [i for s in self.manifest["shards"] if (i := _shard_index(s["name"])) is not None]
        name = shard_name(max(indices, default=-1) + 1)
        _write_atomic(self.fs, f"{self.base}/{name}", data)
        self.manifest["shards"].append(
            {
                "name": name,
                "rows": table.num_rows,
                "bytes": len(data),
                "sha256": hashlib.sha256(data).hexdigest(),
                "run_id": self.run_id,
                "schema_version": SCHEMA_VERSION,
                "created_at": utcnow().isoformat(),
            }
        )
        write_manifest(self.root, self.manifest)
        self._buffer.clear()
        self._buffer_bytes = 0
        return name

    def close(self, counts: dict[str, Any] | None = None, status: str = "finished") -> None:
        self.flush()
        self._run["finished_at"] = utcnow().isoformat()
        self._run["status"] = status
        self._run["counts"] = counts or {}
        write_manifest(self.root, self.manifest)


# --------------------------------------------------------------------------- reading


def shard_paths(root: str) -> list[str]:
    """Committed shards in commit order (manifest order, plus adopted strays)."""
    fs, base = _fs(root)
    manifest = read_manifest(root)
    names = [s["name"] for s in manifest["shards"]]
    return [f"{base}/{n}" for n in names if fs.exists(f"{base}/{n}")]


def read_table(root: str, columns: list[str] | None = None) -> pa.Table:
    """All rows as one Arrow table, deduplicated by ``row_id`` (newest shard wins)."""
    fs, _ = _fs(root)
    wanted = None if columns is None else list(dict.fromkeys(["row_id", *columns]))
    tables = []
    for order, path in enumerate(shard_paths(root)):
        with fs.open(path, "rb") as fh:
            t = pq.read_table(fh, columns=wanted)
        tables.append(t.append_column("_shard_order", pa.array([order] * t.num_rows, pa.int32())))
    if not tables:
        schema = ROW_SCHEMA if wanted is None else pa.schema([ROW_SCHEMA.field(c) for c in wanted])
        return schema.empty_table()
    table = pa.concat_tables(tables, promote_options="default")
    # Last write wins: keep, for each row_id, the row from the highest shard order.
    ids = table.column("row_id").to_pylist()
    order = table.column("_shard_order").to_pylist()
    keep: dict[str, int] = {}
    for i, (rid, o) in enumerate(zip(ids, order, strict=True)):
        prev = keep.get(rid)
        if prev is None or order[prev] <= o:
            keep[rid] = i
    idx = sorted(keep.values())
    table = table.take(pa.array(idx, pa.int64())).drop_columns(["_shard_order"])
    if columns is not None and "row_id" not in columns:
        table = table.drop_columns(["row_id"])
    return table


def read_rows(root: str) -> Iterator[SegmentRow]:
    """Typed rows of a corpus (deduplicated, upgraded to the current schema version)."""
    yield from table_to_rows(read_table(root))


@dataclass
class CorpusState:
    """What is committed: each row's outcome, and each recording's segment count."""

    rows: dict[str, DoneRow]
    segment_counts: dict[str, int]


def done_rows(root: str) -> CorpusState:
    table = read_table(root, columns=["row_id", "status", "failure", "recording"])
    rows: dict[str, DoneRow] = {}
    counts: dict[str, int] = {}
    for rid, status, failure, rec in zip(
        table.column("row_id").to_pylist(),
        table.column("status").to_pylist(),
        table.column("failure").to_pylist(),
        table.column("recording").to_pylist(),
        strict=True,
    ):
        kind = ErrorKind(failure["kind"]) if failure else None
        rows[rid] = DoneRow(status=Status(status), failure_kind=kind)
        if rec and rec.get("segment_count") is not None:
            counts[rec["id"]] = int(rec["segment_count"])
    return CorpusState(rows=rows, segment_counts=counts)


def verify(root: str) -> list[str]:
    """Problems found: missing shards, checksum or row-count mismatches."""
    fs, base = _fs(root)
    problems = []
    for entry in read_manifest(root)["shards"]:
        path = f"{base}/{entry['name']}"
        if not fs.exists(path):
            problems.append(f"{entry['name']}: missing")
            continue
        with fs.open(path, "rb") as fh:
            data = fh.read()
        if hashlib.sha256(data).hexdigest() != entry["sha256"]:
            problems.append(f"{entry['name']}: sha256 mismatch")
        if pq.read_metadata(pa.BufferReader(data)).num_rows != entry["rows"]:
            problems.append(f"{entry['name']}: row count mismatch")
    return problems
