"""Salted speaker pseudonyms: the same speaker gets the same hash in every export of one corpus,
and a different one in any other corpus (the salt is per corpus, kept in the corpus, never
published), so releases cannot be joined on speakers."""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets

import fsspec
from fsspec.implementations.local import LocalFileSystem

SALT_FILE = "speaker-salt"
"""File in the corpus folder holding its salt (hex); made on the first export, never published."""


def corpus_salt(root: str) -> bytes:
    """The corpus's salt, made (32 random bytes) and saved the first time it is asked for."""
    fs, base = fsspec.core.url_to_fs(root)
    path = f"{base.rstrip('/')}/{SALT_FILE}"
    if not fs.exists(path):
        fs.makedirs(base, exist_ok=True)
        try:
            # "xb": two exports racing to make it cannot end with two salts.
            with fs.open(path, "xb") as fh:
                fh.write(secrets.token_hex(32).encode())
            if isinstance(fs, LocalFileSystem):
                os.chmod(path, 0o600)  # whoever holds the salt can test a guessed name against a hash
        except FileExistsError:
            pass
    with fs.open(path, "rb") as fh:
        return bytes.fromhex(fh.read().decode().strip())


class SpeakerHasher:
    """``spk-`` + the first 16 hex digits of HMAC-SHA256(salt, name)."""

    def __init__(self, salt: bytes) -> None:
        self.salt = salt
        self._hashed: dict[str, str] = {}

    def __call__(self, name: str | None) -> str | None:
        if name is None:
            return None
        if name not in self._hashed:
            self._hashed[name] = "spk-" + hmac.new(self.salt, name.encode(), hashlib.sha256).hexdigest()[:16]
        return self._hashed[name]
