"""One writer per corpus: an exclusive lock held for a whole run.

Every command that writes a corpus (``annotate``, ``aggregate``, ``agreement``, ``review
import``) holds ``{corpus}/.emoforge.lock`` while it reads, recovers and writes. A second
writer refuses at once with :class:`CorpusLocked` (naming the holder) or, with a wait,
polls until the holder is gone.

How the lock is taken:

- Local paths (and NFS mounts, where Linux maps ``flock`` onto lockd/NFSv4 locks, so the
  lock holds across machines): ``fcntl.flock`` on the lock file. The kernel drops it when the
  holder dies, even by SIGKILL, so a lock is never left stale. The file is never deleted
  (deleting it would let a waiter lock an unlinked inode while a newcomer locks a new one).
- Other fsspec URLs (object stores): the lock file is created only if absent and read
  back to check that this holder's token won. A lock whose pid is dead on this host is
  stale and taken over; one from another host is only taken over after ``stale_after_s``.
  Object stores have no atomic create-if-absent, so two writers starting within one
  round trip of each other can both win there: that limit is documented, not hidden.

The lock is re-entrant within one thread (``CorpusWriter`` inside a command that already
holds it), never across threads or processes.
"""

from __future__ import annotations

import calendar
import contextlib
import fcntl
import json
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import fsspec

from emoforge.storage.safe_files import open_nofollow, refuse_corpus_links

log = logging.getLogger(__name__)

LOCK_NAME = ".emoforge.lock"
POLL_S = 0.2
STALE_AFTER_S = 6 * 3600.0


class CorpusLocked(RuntimeError):
    """Another writer holds the corpus: the typed refusal a second run gets."""

    def __init__(self, root: str, holder: dict[str, Any]) -> None:
        self.root = root
        self.holder = holder
        who = ", ".join(f"{k}={holder[k]}" for k in ("pid", "host", "command", "since") if holder.get(k))
        super().__init__(
            f"{root} is being written by another emoforge run ({who or 'holder unknown'}); "
            "wait for it to finish or rerun with --wait"
        )


@dataclass
class _Held:
    lock: CorpusLock
    depth: int


_held = threading.local()


def _registry() -> dict[str, _Held]:
    if not hasattr(_held, "locks"):
        _held.locks = {}
    reg: dict[str, _Held] = _held.locks
    return reg


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


class CorpusLock:
    """The exclusive lock of one corpus directory (see the module docstring).

    Args:
        root: corpus directory (local path or fsspec URL).
        command: what the holder is doing, shown to a refused writer.
        stale_after_s: remote locks only: age after which another host's lock is taken over.
    """

    def __init__(self, root: str, command: str = "", stale_after_s: float = STALE_AFTER_S) -> None:
        self.fs, base = fsspec.core.url_to_fs(str(root))
        self.root = str(root)
        self.base = base.rstrip("/")
        self.path = f"{self.base}/{LOCK_NAME}"
        self.command = command
        self.stale_after_s = stale_after_s
        self.local = "file" in (self.fs.protocol if isinstance(self.fs.protocol, tuple) else (self.fs.protocol,))
        self.token = uuid.uuid4().hex
        self._fd: int | None = None

    def _info(self) -> dict[str, Any]:
        return {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "command": self.command,
            "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "token": self.token,
        }

    def holder(self) -> dict[str, Any]:
        """What the lock file says about its holder ({} if unreadable)."""
        try:
            with self.fs.open(self.path, "rb") as fh:
                data = json.loads(fh.read() or b"{}")
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    # -- local: flock ------------------------------------------------------------------
    def _try_local(self) -> bool:
        os.makedirs(self.base, exist_ok=True)
        # A shared corpus may plant links at the names writers manage (this lock among
        # them): refused before anything is opened, so no writer truncates a link's target.
        refuse_corpus_links(self.base)
        fd = open_nofollow(self.path, os.O_RDWR | os.O_CREAT)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(self._info()).encode(), 0)
        self._fd = fd
        return True

    # -- remote: create if absent, read back ---------------------------------------------
    def _stale(self, holder: dict[str, Any]) -> bool:
        if holder.get("host") == socket.gethostname() and isinstance(holder.get("pid"), int):
            return not _pid_alive(holder["pid"])
        since = holder.get("since")
        try:
            age = time.time() - calendar.timegm(time.strptime(str(since), "%Y-%m-%dT%H:%M:%SZ"))
        except ValueError:
            return False
        return age > self.stale_after_s

    def _try_remote(self) -> bool:
        self.fs.makedirs(self.base, exist_ok=True)
        # Object-store filesystems (s3fs, gcsfs) answer exists() from a folder listing cached
        # per instance: one taken before another writer locked the corpus would hide its lock.
        self.fs.invalidate_cache(self.base)
        if self.fs.exists(self.path):
            holder = self.holder()
            if not self._stale(holder):
                return False
            log.warning("taking over the stale lock of %s (holder %s)", self.root, holder)
            with contextlib.suppress(FileNotFoundError):
                self.fs.rm(self.path)
        with self.fs.open(self.path, "wb") as fh:
            fh.write(json.dumps(self._info()).encode())
        return self.holder().get("token") == self.token

    def acquire(self, wait_s: float | None = 0.0) -> None:
        """Take the lock; raise :class:`CorpusLocked` if still held after ``wait_s`` (None: forever)."""
        deadline = None if wait_s is None else time.monotonic() + wait_s
        announced = False
        while not (self._try_local() if self.local else self._try_remote()):
            if deadline is not None and time.monotonic() >= deadline:
                raise CorpusLocked(self.root, self.holder())
            if not announced:
                log.warning("waiting for %s: %s", self.root, CorpusLocked(self.root, self.holder()))
                announced = True
            time.sleep(POLL_S)

    def release(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
        elif not self.local and self.holder().get("token") == self.token:
            with contextlib.suppress(FileNotFoundError):
                self.fs.rm(self.path)


def _key(root: str) -> str:
    fs, base = fsspec.core.url_to_fs(str(root))
    return f"{fs.unstrip_protocol(base.rstrip('/'))}"


def acquire(root: str, command: str = "", wait_s: float | None = 0.0) -> Callable[[], None]:
    """Take (or re-enter, in this thread) the lock of ``root``.

    Returns:
        The matching release; it may be called from any thread (a writer closed elsewhere).
    """
    key, reg = _key(root), _registry()
    if key not in reg:
        lock = CorpusLock(root, command)
        lock.acquire(wait_s)
        reg[key] = _Held(lock, 0)
    reg[key].depth += 1
    released = False

    def release_once() -> None:
        nonlocal released
        if released:
            return
        released = True
        held = reg.get(key)
        if held is None:
            return
        held.depth -= 1
        if held.depth == 0:
            del reg[key]
            held.lock.release()

    return release_once


def is_held(root: str) -> bool:
    """True when this thread holds the lock of ``root``."""
    return _key(root) in _registry()


@contextlib.contextmanager
def corpus_lock(root: str, command: str = "", wait_s: float | None = 0.0) -> Iterator[None]:
    """Hold the lock of ``root`` for the ``with`` block (re-entrant in one thread)."""
    release = acquire(root, command, wait_s)
    try:
        yield
    finally:
        release()


def wait_until_free(root: str, wait_s: float | None = 0.0) -> None:
    """Raise :class:`CorpusLocked` if another writer holds ``root`` (after waiting ``wait_s``).

    Commands call it before any slow start-up so a refusal comes first and cleanly; the
    writer still takes the lock itself, so a writer that slips in between is refused then.
    """
    if is_held(root):
        return
    lock = CorpusLock(root)
    lock.acquire(wait_s)
    lock.release()
