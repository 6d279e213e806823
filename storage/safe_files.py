"""Every file the project writes stays in the folder it owns: symlinks are never followed out.

A corpus, a report folder or a release can come from someone else (a shared tarball), and a
tarball can hold symlinks: ``report.html -> ~/.bashrc`` would make a plain ``write_text``
overwrite the link's target. So every writer goes through this module:

- :func:`write_bytes` / :func:`write_text` write a temporary file (``O_CREAT | O_EXCL |
  O_NOFOLLOW``, a fresh random name) in the destination's folder and ``rename`` it over the
  destination: a rename replaces a symlink itself, never what it points to, and a reader
  never sees half a file. With ``root``, every folder between ``root`` and the file must be
  a real folder (a linked ``media/`` would otherwise carry the write elsewhere).
- :func:`open_nofollow` opens a file that must keep its inode (the corpus lock, which is
  ``flock``-ed and never replaced) with ``O_NOFOLLOW``: a planted link is refused.
- :func:`refuse_links` refuses a folder whose managed names (``manifest.json``,
  ``.emoforge.lock``, ``.cache``, ...) are links, before any writer starts.

Refusals are :class:`UnsafePathError` with one line that names the path.
"""

from __future__ import annotations

import contextlib
import errno
import os
import uuid
from collections.abc import Iterable
from pathlib import Path


class UnsafePathError(OSError):
    """A path the project would write is a symlink, or lies under one: refused, nothing written."""

    def __str__(self) -> str:  # one line, without OSError's "[Errno 40]" prefix
        return str(self.strerror)


# What a corpus writer manages at the top of a corpus folder (storage/shards/, lock.py,
# batches.py, the aggregation sidecar, the response cache and the report's default names).
CORPUS_NAMES = (
    "manifest.json",
    "batches.json",
    ".batches.lock",
    ".emoforge.lock",
    ".cache",
    "quarantine",
    "aggregation.parquet",
    "report.html",
    "report_clips",
)


def _is_link(path: Path) -> bool:
    try:
        return path.is_symlink()
    except OSError:
        return False


def refuse_links(folder: str | Path, names: Iterable[str] = ()) -> None:
    """Raise :class:`UnsafePathError` if any of ``names`` inside ``folder`` is a symlink.

    ``folder`` itself may be a link the user chose (a corpus on another disk); the names
    inside it are what a shared corpus could plant.
    """
    base = Path(folder)
    for name in names:
        path = base / name
        if _is_link(path):
            raise UnsafePathError(
                errno.ELOOP, f"{path} is a symlink: refusing to write through it (a corpus holds only real files)"
            )


def refuse_corpus_links(root: str | Path) -> None:
    """Refuse a local corpus folder whose managed names or shards are symlinks."""
    base = Path(root)
    if not base.is_dir():
        return
    shards = [p.name for p in base.glob("shard-*") if _is_link(p)]
    refuse_links(base, [*CORPUS_NAMES, *shards])


def check_inside(root: str | Path, path: str | Path) -> None:
    """Every existing component of ``path`` below ``root`` is a real file or folder, not a link.

    Raises:
        UnsafePathError: a component is a symlink, or ``path`` is not under ``root``.
    """
    root, path = Path(root), Path(path)
    try:
        rel = path.relative_to(root)
    except ValueError as exc:
        raise UnsafePathError(errno.EXDEV, f"{path} is outside {root}: refusing to write there") from exc
    current = root
    for part in rel.parts:
        if part in ("..", ""):
            raise UnsafePathError(errno.EXDEV, f"{path} leaves {root}: refusing to write there")
        current = current / part
        if _is_link(current):
            raise UnsafePathError(
                errno.ELOOP, f"{current} is a symlink: refusing to write through it (it could point anywhere)"
            )


def make_dirs(path: str | Path, root: str | Path | None = None) -> Path:
    """``mkdir -p`` that refuses a symlinked component below ``root`` (default: the path's parent)."""
    path = Path(path)
    check_inside(root if root is not None else path.parent, path)
    path.mkdir(parents=True, exist_ok=True)
    check_inside(root if root is not None else path.parent, path)  # nothing swapped in meanwhile
    return path


def write_bytes(path: str | Path, data: bytes, root: str | Path | None = None) -> Path:
    """Write ``data`` to ``path`` through a temporary name and a rename, never through a link.

    Args:
        path: the file to write (an existing symlink there is replaced, its target untouched).
        data: the bytes.
        root: the folder the writer owns; every folder between it and ``path`` must be real.
            Default: the file's own folder.

    Raises:
        UnsafePathError: a folder between ``root`` and ``path`` is a symlink.
    """
    path = Path(path)
    check_inside(root if root is not None else path.parent, path.parent)
    tmp = path.parent / f".{path.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    return path


def write_text(path: str | Path, text: str, root: str | Path | None = None) -> Path:
    """:func:`write_bytes` of UTF-8 text."""
    return write_bytes(path, text.encode("utf-8"), root)


def open_nofollow(path: str | Path, flags: int, mode: int = 0o644) -> int:
    """``os.open`` that refuses a symlink at ``path`` (for files that keep their inode, like a lock).

    Raises:
        UnsafePathError: ``path`` is a symlink.
    """
    try:
        return os.open(path, flags | os.O_NOFOLLOW, mode)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise UnsafePathError(errno.ELOOP, f"{path} is a symlink: refusing to open it for writing") from exc
        raise
