"""Compaction: merge small shards and drop superseded row versions, all or nothing.

A run commits a shard per flush, and a retried row is written again in a later shard.
emoforge's readers keep the newest copy of each ``row_id``, but any other Parquet reader of
the corpus folder sees every copy. ``compact`` rewrites the shards that are small or hold a
stale copy into shards of the target size, keeping each row id once (the newest copy), and
leaves the other shards as they are.

Atomicity, under the corpus lock (storage/lock.py):

1. The manifest records the compaction as ``compacting`` (the first shard number it will
   write) before any shard is written.
2. The new shards are written under new numbers (temporary name, then rename).
3. One manifest write lists them instead of the shards they replace, drops ``compacting``
   and appends the compaction to ``compactions`` (what it replaced: names, rows, sha256).
   That write is the commit point.
4. The replaced files are deleted.

A kill before 3 leaves the old shards listed: the next open (any writer) deletes the new
files (numbers past ``compacting.first_index``, unlisted). A kill after 3 leaves replaced
files behind: the next open deletes them (named in ``compactions``) instead of adopting
them. Either way a reader sees every row once, from the old shards or the new ones.

A reader that read the manifest just before the switch may find a replaced file gone: it
skips that shard with a warning (as for any missing shard) and a second read is whole.
"""

from __future__ import annotations

import logging
import uuid

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pydantic import BaseModel, Field

from emoforge.configs.storage import StorageConfig
from emoforge.storage.records import utcnow
from emoforge.storage.shards import COMPACTING, LockedCorpus, write_manifest
from emoforge.storage.shards.files import _fsync_dir, _shard_index

log = logging.getLogger(__name__)


class Compaction(BaseModel):
    """What one compaction did."""

    id: str
    shards_before: int
    shards_after: int
    replaced: list[str] = Field(default_factory=list, description="Shard names rewritten.")
    written: list[str] = Field(default_factory=list, description="Shard names written in their place.")
    rows_read: int = Field(0, description="Physical rows in the replaced shards.")
    rows_written: int = 0
    rows_dropped: int = Field(0, description="Superseded copies left out (a newer copy exists).")


def newest_copies(corpus: LockedCorpus) -> dict[str, pa.BooleanArray]:
    """Per listed shard, which of its rows is the newest copy of its ``row_id`` (the last
    shard in commit order wins; inside a shard ids are unique). Reads only ``row_id``."""
    names = [s["name"] for s in corpus.manifest["shards"]]
    parts = []
    for order, name in enumerate(names):
        with corpus.fs.open(f"{corpus.base}/{name}", "rb") as fh:
            ids = pq.ParquetFile(fh).read(columns=["row_id"]).column("row_id")
        parts.append(
            pa.table(
                {
                    "row_id": ids,
                    "order": pa.array([order] * len(ids), pa.int32()),
                    "pos": pa.array(range(len(ids)), pa.int64()),
                }
            )
        )
    if not parts:
        return {}
    table = pa.concat_tables(parts)
    last = table.group_by("row_id").aggregate([("order", "max")]).rename_columns(["row_id", "newest"])
    # The join reorders rows: sort back to (shard, position), then each shard is one slice.
    table = table.join(last, "row_id").sort_by([("order", "ascending"), ("pos", "ascending")])
    newest = pc.equal(table.column("order"), table.column("newest")).combine_chunks()
    keep: dict[str, pa.BooleanArray] = {}
    start = 0
    for name, part in zip(names, parts, strict=True):
        keep[name] = newest.slice(start, part.num_rows)
        start += part.num_rows
    return keep


def compact(
    root: str,
    config: StorageConfig,
    target_rows: int | None = None,
    target_bytes: int | None = None,
    lock_wait_s: float | None = 0.0,
) -> Compaction:
    """Rewrite the small and stale shards of the corpus at ``root`` (see the module doc).

    Args:
        config: compression of the new shards; its ``max_rows_per_shard`` and
            ``max_bytes_per_shard`` are the default targets.
        target_rows: rows per new shard; a shard with fewer than half is "small".
        target_bytes: uncompressed Arrow bytes per new shard; likewise.
        lock_wait_s: as for ``CorpusWriter``.
    """
    rows_cap = target_rows or config.max_rows_per_shard
    bytes_cap = target_bytes or config.max_bytes_per_shard
    corpus = LockedCorpus(root, config, "compact", lock_wait_s)
    try:
        return _compact(corpus, rows_cap, bytes_cap)
    finally:
        corpus.release()


def _compact(corpus: LockedCorpus, rows_cap: int, bytes_cap: int) -> Compaction:
    run_id = f"compact-{utcnow().strftime('%Y%m%dT%H%M%SZ')}-{uuid.uuid4().hex[:4]}"
    shards = corpus.manifest["shards"]
    keep = newest_copies(corpus)
    stale = {name for name, mask in keep.items() if not pc.all(mask).as_py()}
    small = [s["name"] for s in shards if s["rows"] < rows_cap // 2]
    # One small shard alone with nothing stale is already as compact as it gets.
    chosen = [s for s in shards if s["name"] in stale or (s["name"] in small and len(small) > 1)]
    report = Compaction(id=run_id, shards_before=len(shards), shards_after=len(shards))
    if not chosen:
        log.info("compaction: nothing to do (%d shards)", len(shards))
        return report
    corpus.manifest[COMPACTING] = {"id": run_id, "first_index": corpus.next_index(), "at": utcnow().isoformat()}
    write_manifest(corpus.root, corpus.manifest)
    log.info("compaction %s: rewriting %d of %d shards", run_id, len(chosen), len(shards))
    written: list[dict[str, object]] = []
    pending: list[pa.Table] = []
    pending_rows = pending_bytes = 0

    def emit() -> None:
        nonlocal pending, pending_rows, pending_bytes
        if not pending:
            return
        entry = corpus.write_shard(pa.concat_tables(pending, promote_options="default"), run_id)
        written.append(entry)
        log.info("compaction %s: wrote %s (%d rows)", run_id, entry["name"], entry["rows"])
        pending, pending_rows, pending_bytes = [], 0, 0

    for entry in chosen:
        name = entry["name"]
        with corpus.fs.open(f"{corpus.base}/{name}", "rb") as fh:
            table = pq.ParquetFile(fh, page_checksum_verification=True).read()
        report.rows_read += table.num_rows
        table = table.filter(keep[name])
        report.rows_dropped += int(entry["rows"]) - table.num_rows
        # Cut the rows into pieces that fill the current shard up to its targets.
        start = 0
        while start < table.num_rows:
            room = rows_cap - pending_rows
            piece = table.slice(start, room)
            pending.append(piece)
            pending_rows += piece.num_rows
            pending_bytes += piece.nbytes
            start += piece.num_rows
            if pending_rows >= rows_cap or pending_bytes >= bytes_cap:
                emit()
    emit()
    replaced = {e["name"] for e in chosen}
    listed = [s for s in shards if s["name"] not in replaced] + written
    corpus.manifest["shards"] = sorted(listed, key=lambda s: _shard_index(str(s["name"])) or 0)
    corpus.manifest.setdefault("compactions", []).append(
        {
            "id": run_id,
            "at": utcnow().isoformat(),
            "replaced": [{k: e.get(k) for k in ("name", "rows", "bytes", "sha256", "run_id")} for e in chosen],
            "written": [e["name"] for e in written],
            "rows_dropped": report.rows_dropped,
        }
    )
    corpus.manifest.pop(COMPACTING)
    write_manifest(corpus.root, corpus.manifest)  # the commit point
    log.info("compaction %s: switched the manifest to %d shards", run_id, len(corpus.manifest["shards"]))
    for name in sorted(replaced):
        corpus.fs.rm(f"{corpus.base}/{name}")
    _fsync_dir(corpus.fs, corpus.base)
    log.info("compaction %s: removed %d replaced shards", run_id, len(replaced))
    report.replaced = sorted(replaced)
    report.written = [str(e["name"]) for e in written]
    report.rows_written = sum(int(str(e["rows"])) for e in written)
    report.shards_after = len(corpus.manifest["shards"])
    return report
