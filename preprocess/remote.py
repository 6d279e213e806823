"""Media named by URL (``s3://``, ``gs://``, ``az://``, ``https://``): a bounded local spool.

FFmpeg needs a seekable file, and probing, decoding and shot detection each open it, so a
task that reads a remote recording streams it once into a temporary file, hashing it on the
way, and deletes the file when the task is done (``spooled``). At most one recording per
task is on local disk, and never more than ``sampling.media.max_file_bytes``.

The object is read through fsspec, whose filesystem for the URL's scheme must be installed
(``aiohttp`` for ``https://``, ``s3fs``, ``gcsfs``, ``adlfs``). Credentials come only from
the environment (``AWS_ACCESS_KEY_ID``, ``GOOGLE_APPLICATION_CREDENTIALS``, ...), as each
filesystem reads them itself: nothing in a config or a row names one.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import fsspec

CHUNK = 4 << 20


def is_remote(uri: str) -> bool:
    """Whether ``uri`` names an object fsspec reads (a URL other than ``file://``)."""
    return "://" in uri and not uri.startswith("file://")


class TooLarge(OSError):
    """The object is larger than the configured limit: it was not (fully) read."""


@dataclass(frozen=True)
class Spool:
    """A remote object's bytes on local disk while a task reads them."""

    path: Path
    sha256: str
    size_bytes: int


@contextlib.contextmanager
def spooled(uri: str, max_bytes: int | None = None) -> Iterator[Spool]:
    """The object at ``uri`` in a temporary local file named like it, hashed while it
    streams; the file is deleted when the block ends (even on an error or a kill of the
    task's thread; a SIGKILLed process leaves it in the system's temporary folder).

    Raises:
        TooLarge: the object (by its listed size, or by what was read) exceeds ``max_bytes``.
        OSError: it cannot be read (missing, forbidden, the connection failed).
    """
    try:
        fs, path = fsspec.core.url_to_fs(uri)
    except (ImportError, ValueError) as exc:  # no filesystem for the scheme, or a malformed URL
        raise OSError(errno.EINVAL, f"cannot read {uri}: {exc}") from exc
    listed = _listed_size(fs, path)
    if max_bytes is not None and listed is not None and listed > max_bytes:
        raise TooLarge(errno.EFBIG, f"{listed} bytes exceeds sampling.media.max_file_bytes={max_bytes}")
    folder = Path(tempfile.mkdtemp(prefix="emoforge-spool-"))
    local = folder / (PurePosixPath(path.split("?", 1)[0]).name or "media")
    try:
        digest, size = hashlib.sha256(), 0
        with fs.open(path, "rb") as src, open(local, "wb") as dst:
            while chunk := src.read(CHUNK):
                size += len(chunk)
                if max_bytes is not None and size > max_bytes:
                    raise TooLarge(errno.EFBIG, f"over {max_bytes} bytes (sampling.media.max_file_bytes)")
                digest.update(chunk)
                dst.write(chunk)
        yield Spool(path=local, sha256=digest.hexdigest(), size_bytes=size)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _listed_size(fs: fsspec.AbstractFileSystem, path: str) -> int | None:
    """The object's size as its store lists it (None when the store does not say)."""
    try:
        size = fs.size(path)
    except FileNotFoundError:
        raise
    except (OSError, ValueError, NotImplementedError):
        return None
    return int(size) if size is not None else None
