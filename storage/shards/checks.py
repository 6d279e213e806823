"""Whether a listed shard can be trusted: the one check writers, readers and ``verify`` share."""

from __future__ import annotations

import hashlib
from typing import Any

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq

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
