"""Turn CLI inputs (files, folders, CSV/JSONL manifests) into MediaInput records."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable
from pathlib import Path

from emoforge.storage.records import MediaInput

VIDEO_SUFFIXES = frozenset([".mp4", ".mkv", ".webm", ".avi", ".mov", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv", ".ts"])
AUDIO_SUFFIXES = frozenset([".wav", ".flac", ".mp3", ".m4a", ".aac", ".ogg", ".opus", ".wma"])
MEDIA_SUFFIXES = VIDEO_SUFFIXES | AUDIO_SUFFIXES
MANIFEST_SUFFIXES = frozenset({".csv", ".jsonl"})
_URI_KEYS = ("uri", "path", "file", "media")


class InputError(ValueError):
    """An input that is neither media, a folder, nor a readable manifest."""


def _from_record(raw: dict[str, object], base: Path, where: str) -> MediaInput:
    uri = next((str(raw[k]) for k in _URI_KEYS if raw.get(k)), None)
    if uri is None:
        raise InputError(f"{where}: needs one of the columns {', '.join(_URI_KEYS)}")
    path = Path(uri)
    if "://" not in uri and not path.is_absolute():
        uri = str((base / path).resolve())
    def opt(key: str) -> str | None:
        value = raw.get(key)
        return str(value) if value not in (None, "") else None
    return MediaInput(uri=uri, source=opt("source"), speaker=opt("speaker"))


def _read_manifest(path: Path) -> list[MediaInput]:
    items = []
    if path.suffix == ".csv":
        with open(path, newline="", encoding="utf-8") as fh:
            for i, row in enumerate(csv.DictReader(fh), start=2):
                items.append(_from_record(dict(row), path.parent, f"{path}:{i}"))
    else:
        with open(path, encoding="utf-8") as fh:
            for i, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                try:
                    raw = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise InputError(f"{path}:{i}: invalid JSON: {exc}") from exc
                if not isinstance(raw, dict):
                    raise InputError(f"{path}:{i}: each line must be a JSON object")
                items.append(_from_record(raw, path.parent, f"{path}:{i}"))
    return items


def _folder_source(root: Path, child: Path) -> str | None:
    """Files in ``root/<name>/...`` belong to source ``<name>``; files directly in ``root`` to none.

    Naming every file after the folder it was given in would put a whole corpus in one
    source, and source-grouped splits would then have a single group.
    """
    parts = child.relative_to(root).parts
    return parts[0] if len(parts) > 1 else None


def discover_inputs(inputs: Iterable[str | Path]) -> list[MediaInput]:
    """Expand inputs in a stable order; duplicates (same resolved path) are kept once.

    A file with an unknown suffix given explicitly is kept (probing decides if it is
    media, and a failure row says why not); inside folders only media suffixes count.
    """
    seen: set[str] = set()
    out: list[MediaInput] = []

    def add(item: MediaInput) -> None:
        if item.uri not in seen:
            seen.add(item.uri)
            out.append(item)

    for raw in inputs:
        path = Path(raw)
        if "://" in str(raw):
            add(MediaInput(uri=str(raw)))
        elif path.is_dir():
            for child in sorted(path.rglob("*")):
                if child.is_file() and child.suffix.lower() in MEDIA_SUFFIXES:
                    add(MediaInput(uri=str(child.resolve()), source=_folder_source(path, child)))
        elif path.is_file() and path.suffix.lower() in MANIFEST_SUFFIXES:
            for item in _read_manifest(path):
                add(item)
        elif path.is_file():
            add(MediaInput(uri=str(path.resolve())))
        else:
            raise InputError(f"{raw}: no such file or folder")
    return out
