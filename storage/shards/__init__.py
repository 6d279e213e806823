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

One module per concern: ``files`` (names, atomic writes), ``manifest``, ``checks`` (can a
listed shard be trusted), ``locked`` (open under the lock, recover, quarantine, commit),
``writer``, ``reader``, ``state`` (what resume skips) and ``verification``. This package
re-exports their public names, so callers import from ``emoforge.storage.shards``.
"""

from emoforge.storage.shards.checks import HASH_CHUNK

# storage/batches.py writes its own file with the shards' private helpers; kept here so its
# imports did not have to change when this module became a package.
from emoforge.storage.shards.files import (
    COMPACTING,
    CORRUPT_MARK,
    FORMAT,
    MANIFEST,
    QUARANTINE,
    SHARD_PREFIX,
    SHARD_SUFFIX,
    TMP_MARK,
    CorpusWriteError,
    _fs,
    _is_local,
    _write_atomic,
    shard_name,
    write_atomic,
)
from emoforge.storage.shards.locked import LockedCorpus
from emoforge.storage.shards.manifest import (
    read_manifest,
    rebuild_manifest,
    retired_shards,
    update_manifest_stats,
    write_manifest,
)
from emoforge.storage.shards.reader import iter_tables, read_rows, read_table, shard_paths
from emoforge.storage.shards.state import DONE_COLUMNS, CorpusState, DoneRow, corpus_state, done_rows
from emoforge.storage.shards.verification import repair, verify
from emoforge.storage.shards.writer import CorpusWriter

__all__ = [
    "COMPACTING",
    "CORRUPT_MARK",
    "DONE_COLUMNS",
    "FORMAT",
    "HASH_CHUNK",
    "MANIFEST",
    "QUARANTINE",
    "SHARD_PREFIX",
    "SHARD_SUFFIX",
    "TMP_MARK",
    "CorpusState",
    "CorpusWriteError",
    "CorpusWriter",
    "DoneRow",
    "LockedCorpus",
    "_fs",
    "_is_local",
    "_write_atomic",
    "corpus_state",
    "done_rows",
    "iter_tables",
    "read_manifest",
    "read_rows",
    "read_table",
    "rebuild_manifest",
    "repair",
    "retired_shards",
    "shard_name",
    "shard_paths",
    "update_manifest_stats",
    "verify",
    "write_atomic",
    "write_manifest",
]
