"""Response cache: a rerun of the same segments makes zero provider calls.

The key is a sha256 over (agent name, backend, model, base_url, prompt version + template
hash, the rendered request content incl. image bytes and the sha256 of the segment's audio
and video clips, generation parameters): a changed clip is a new call, the same clip a hit. The agent
name is in it so two jurors configured alike stay two independent samples. API keys are never
part of it, and nothing secret is written to the entries. Writers put the entry in a
temp file in the same folder and ``os.replace`` it into place, so concurrent writers
(threads or processes) never leave a half-written file a reader could see.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import tempfile
from pathlib import Path
from typing import Any

from emoforge.agents.base import Prompt

log = logging.getLogger(__name__)

CACHE_FORMAT = 1
# What cache_key returns: a key read back from a file (batches.json) must look like one before
# it becomes a path, or ``////abs/path/x`` would name any *.json on the machine.
_KEY = re.compile(r"[0-9a-f]{64}")


class CacheKeyError(ValueError):
    """A cache key that is not a sha256 hex digest: never used as a path."""


def check_key(key: str) -> str:
    """``key`` if it is a sha256 hex digest, else :class:`CacheKeyError`."""
    if not isinstance(key, str) or not _KEY.fullmatch(key):
        raise CacheKeyError(f"not a response-cache key (64 hex digits): {str(key)[:80]!r}")
    return key


def cache_key(
    *,
    agent: str,
    backend: str,
    model: str,
    base_url: str | None,
    prompt_version: str,
    template_sha256: str,
    prompt: Prompt,
    params: dict[str, Any],
) -> str:
    """Content hash of everything that determines a model's answer (never the API key)."""
    h = hashlib.sha256()
    header = {
        "format": CACHE_FORMAT,
        "agent": agent,
        "backend": backend,
        "model": model,
        "base_url": base_url,
        "prompt_version": prompt_version,
        "template": template_sha256,
        "system": prompt.system,
        "user": prompt.user,
        "schema": prompt.schema,
        "params": params,
    }
    h.update(json.dumps(header, sort_keys=True, separators=(",", ":")).encode())
    for image in prompt.images:
        h.update(f"\x00image@{image.t_s:.3f}\x00".encode())
        h.update(image.jpeg)
    # The clips are hashed once when cut; their hashes stand for their bytes here.
    if prompt.audio is not None:
        h.update(f"\x00audio/wav:{prompt.audio.sha256}".encode())
    if prompt.video is not None:
        h.update(f"\x00video/mp4:{prompt.video.sha256}".encode())
    return h.hexdigest()


class ResponseCache:
    """One JSON file per key under ``root/<key[:2]>/<key>.json``."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.hits = 0
        self.misses = 0

    def _path(self, key: str) -> Path:
        check_key(key)
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict[str, Any] | None:
        path = self._path(key)
        try:
            entry: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            self.misses += 1
            return None
        except (OSError, json.JSONDecodeError) as exc:
            # A damaged entry is a miss: the call is made again and the entry rewritten.
            log.warning("ignoring unreadable cache entry %s: %s", path, exc)
            self.misses += 1
            return None
        self.hits += 1
        return entry

    def put(self, key: str, entry: dict[str, Any]) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{key[:8]}-", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(entry, fh, sort_keys=True)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
