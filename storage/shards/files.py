"""The corpus folder's names and the all-or-nothing file writes every corpus file goes through."""

from __future__ import annotations

import contextlib
import os
import uuid

import fsspec

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
