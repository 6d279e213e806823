"""Reading a corpus: the good shards in commit order, the columns asked for, newest copy of each row."""

from __future__ import annotations

import logging
from collections.abc import Iterator

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
