"""Reading a corpus: the good shards in commit order, the columns asked for, newest copy of each row."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import fsspec
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from emoforge.storage.records import SegmentRow
from emoforge.storage.schema import ROW_SCHEMA, table_to_rows
from emoforge.storage.shards.checks import _check_shard, _sizes
from emoforge.storage.shards.files import _fs
from emoforge.storage.shards.manifest import read_manifest

log = logging.getLogger(__name__)


def shard_paths(root: str) -> list[str]:
    """Committed shards in commit order (manifest order, plus adopted strays)."""
    fs, base = _fs(root)
    manifest = read_manifest(root)
    names = [s["name"] for s in manifest["shards"]]
    return [f"{base}/{n}" for n in names if fs.exists(f"{base}/{n}")]


def _read_shard(fs: fsspec.AbstractFileSystem, base: str, entry: dict[str, Any], columns: list[str] | None) -> pa.Table:
    """``columns`` of one listed shard (page CRCs checked where it has them). Raises
    ``pa.ArrowInvalid`` or ``OSError`` when it cannot be read, ``_WrongRowCount`` when its
    footer disagrees with the manifest."""
    with fs.open(f"{base}/{entry['name']}", "rb") as fh:
        shard = pq.ParquetFile(fh, page_checksum_verification=True)
        if entry.get("rows") is not None and shard.metadata.num_rows != entry["rows"]:
            raise _WrongRowCount(f"holds {shard.metadata.num_rows} rows, not {entry['rows']}")
        wanted = columns
        if columns is not None:
            # A column added after the shard was written (a nullable field) reads as
            # nulls (read_table fills it) instead of making the whole shard unreadable.
            leaves = [shard.schema.column(i).path for i in range(len(shard.schema))]
            wanted = [c for c in columns if any(p == c or p.startswith(f"{c}.") for p in leaves)]
        return shard.read(columns=wanted)


class _WrongRowCount(ValueError):
    """A shard's footer counts other rows than the manifest recorded."""


def _good_shards(root: str, columns: list[str] | None) -> Iterator[tuple[dict[str, Any], pa.Table]]:
    """Each listed shard that passes the cheap check (``_check_shard``), in commit order,
    with ``columns`` read from it (with their page CRCs checked where the shard has them).

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
            yield entry, _read_shard(fs, base, entry, columns)
        except (pa.ArrowInvalid, OSError, _WrongRowCount) as exc:
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
    tables = [table for _, table in _good_shards(root, wanted)]
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


STREAM_ROWS = 20_000
"""Rows per table ``iter_tables`` yields: what a streaming reader holds as Python objects at once."""


def iter_tables(root: str, columns: list[str] | None = None, max_rows: int = STREAM_ROWS) -> Iterator[pa.Table]:
    """The rows of ``read_table(root, columns)``, at most ``max_rows`` a table, holding the
    corpus's row ids and one shard's ``columns`` at a time instead of every row.

    A first pass reads only ``row_id`` and finds each id's newest copy; the second reads each
    shard's columns and keeps the rows whose newest copy it holds, in commit order. A shard
    whose other columns turn out unreadable in the second pass (a page CRC) is skipped as
    ``read_table`` skips it: the ids it held newest come from their older copies, yielded
    after the rest. Each table keeps its shard's schema (``read_table`` unifies them): a
    nested field that a shard predates is absent from its tables, not null.
    """
    fs, base = _fs(root)
    wanted = None if columns is None else list(dict.fromkeys(["row_id", *columns]))
    shards = [(entry, ids.column("row_id")) for entry, ids in _good_shards(root, ["row_id"])]
    only: pa.ChunkedArray | None = None  # ids still owed (None: every id)
    while shards:
        failed: list[tuple[int, pa.Array]] = []
        for i, keep in _newest([ids for _, ids in shards], only):
            entry = shards[i][0]
            try:
                table = _read_shard(fs, base, entry, wanted)
            except (pa.ArrowInvalid, OSError, _WrongRowCount) as exc:
                log.warning("shard %s is unreadable (%s); its rows are skipped", entry["name"], exc)
                failed.append((i, keep))
                continue
            table = _complete(table.take(keep), columns)
            yield from (table.slice(k, max_rows) for k in range(0, table.num_rows, max_rows))
        if not failed:
            return
        only = pa.chunked_array([shards[i][1].take(keep) for i, keep in failed], pa.string())
        dropped = {i for i, _ in failed}
        shards = [s for i, s in enumerate(shards) if i not in dropped]


def _newest(ids: list[pa.ChunkedArray], only: pa.ChunkedArray | None) -> Iterator[tuple[int, pa.Array]]:
    """For each shard (by index) holding the newest copy of some id (among ``only``, when
    given): the positions of those rows in it, ascending."""
    lengths = np.array([len(a) for a in ids], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    every = pa.table({"row_id": pa.chunked_array([c for a in ids for c in a.chunks], pa.string())})
    every = every.append_column("_i", pa.array(np.arange(offsets[-1], dtype=np.int64)))
    if only is not None:
        every = every.filter(pc.is_in(every.column("row_id"), value_set=only.combine_chunks()))
    last = every.group_by("row_id", use_threads=False).aggregate([("_i", "max")]).column("_i_max")
    positions = np.sort(last.to_numpy())
    bounds = np.searchsorted(positions, offsets)
    for i in range(len(ids)):
        if bounds[i + 1] > bounds[i]:
            yield i, pa.array(positions[bounds[i] : bounds[i + 1]] - offsets[i])


def _complete(table: pa.Table, columns: list[str] | None) -> pa.Table:
    """A shard's rows as ``read_table`` returns them: columns the shard predates as nulls of
    their declared type, ``row_id`` only when asked for."""
    if columns is None:
        return table
    for name in dict.fromkeys(c.split(".", 1)[0] for c in columns):
        if name not in table.column_names:
            declared = ROW_SCHEMA.field(name)
            table = table.append_column(declared, pa.nulls(table.num_rows, declared.type))
    return table if "row_id" in columns else table.drop_columns(["row_id"])


def read_rows(root: str) -> Iterator[SegmentRow]:
    """Typed rows of a corpus (deduplicated, upgraded to the current schema version), read a
    shard at a time (``iter_tables``)."""
    for table in iter_tables(root):
        yield from table_to_rows(table)
