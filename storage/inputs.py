"""Turn CLI inputs (files, folders, CSV/JSONL manifests) into MediaInput records."""

from __future__ import annotations

import csv
import hashlib
import json
import os
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

from emoforge.configs.inputs import InputsConfig
from emoforge.storage.records import ErrorKind, Failure, MediaInput, Recording, Status, recording_id_for
from emoforge.storage.terms import TermsError, TermsResolver, terms_from

VIDEO_SUFFIXES = frozenset([".mp4", ".mkv", ".webm", ".avi", ".mov", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv", ".ts"])
AUDIO_SUFFIXES = frozenset([".wav", ".flac", ".mp3", ".m4a", ".aac", ".ogg", ".opus", ".wma"])
MEDIA_SUFFIXES = VIDEO_SUFFIXES | AUDIO_SUFFIXES
MANIFEST_SUFFIXES = frozenset({".csv", ".jsonl"})
_URI_KEYS = ("uri", "path", "file", "media")


class InputError(ValueError):
    """An input that is neither media, a folder, nor a readable manifest."""


def _refused(raw: str, root: Path, source: str | None, speaker: str | None) -> MediaInput:
    # The uri stays as written: the file is never read, and no absolute path reaches the row.
    failure = Failure(
        stage="input",
        kind=ErrorKind.outside_input_root,
        message=f"{raw!r} is outside the input root {root} (widen it with --input-root)",
    )
    return MediaInput(uri=raw, source=source, speaker=speaker, refused=failure)


def _rooted(raw: str, path: Path, root: Path, source: str | None = None, speaker: str | None = None) -> MediaInput:
    """A local input inside ``root`` (symlinks resolved first), or a refused one outside it."""
    resolved = path.resolve()
    try:
        rel = resolved.relative_to(root)
    except ValueError:
        return _refused(raw, root, source, speaker)
    return MediaInput(uri=str(resolved), source=source, speaker=speaker, rel_path=rel.as_posix())


def _from_record(raw: dict[str, object], base: Path, root: Path, where: str) -> MediaInput:
    uri = next((str(raw[k]) for k in _URI_KEYS if raw.get(k)), None)
    if uri is None:
        raise InputError(f"{where}: needs one of the columns {', '.join(_URI_KEYS)}")

    def opt(key: str) -> str | None:
        value = raw.get(key)
        return str(value) if value not in (None, "") else None

    try:
        terms = terms_from(raw, where)
    except TermsError as exc:
        raise InputError(str(exc)) from exc
    local = uri[len("file://") :] if uri.startswith("file://") else uri
    if "://" in local:
        return MediaInput(uri=uri, source=opt("source"), speaker=opt("speaker"), terms=terms)
    item = _rooted(uri, base / Path(local), root, opt("source"), opt("speaker"))
    return item.model_copy(update={"terms": terms})


def _read_manifest(path: Path, root: Path) -> list[MediaInput]:
    items = []
    base = path.parent.resolve()
    try:
        # utf-8-sig: Excel saves "CSV UTF-8" with a byte-order mark, which would otherwise
        # become part of the first column's name.
        with open(path, newline="", encoding="utf-8-sig") as fh:
            if path.suffix == ".csv":
                for i, row in enumerate(csv.DictReader(fh), start=2):
                    items.append(_from_record(dict(row), base, root, f"{path}:{i}"))
                return items
            for i, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                try:
                    raw = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise InputError(f"{path}:{i}: invalid JSON: {exc}") from exc
                if not isinstance(raw, dict):
                    raise InputError(f"{path}:{i}: each line must be a JSON object")
                items.append(_from_record(raw, base, root, f"{path}:{i}"))
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text (byte {exc.start}); save the manifest as UTF-8") from exc
    except csv.Error as exc:
        raise InputError(f"{path}: not a readable CSV: {exc}") from exc
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    return items


def _folder_source(root: Path, child: Path) -> str | None:
    """Files in ``root/<name>/...`` belong to source ``<name>``; files directly in ``root`` to none.

    Naming every file after the folder it was given in would put a whole corpus in one
    source, and source-grouped splits would then have a single group.
    """
    parts = child.relative_to(root).parts
    return parts[0] if len(parts) > 1 else None


def _remote_inputs(url: str) -> list[MediaInput]:
    """A URL names one object, read as given; one ending in ``/`` names a folder (a bucket
    prefix): its media objects, by suffix and in name order, each with the first folder
    below it as source (as for a local folder).

    Raises:
        InputError: the folder cannot be listed (no filesystem for the scheme, refused, absent).
    """
    if not url.endswith("/"):
        return [MediaInput(uri=url)]
    import fsspec

    try:
        fs, base = fsspec.core.url_to_fs(url)
        found = fs.find(base)
    except (ImportError, ValueError, OSError) as exc:
        raise InputError(f"{url}: cannot list the folder ({exc})") from exc
    prefix = PurePosixPath(base.rstrip("/"))
    out = []
    for name in sorted(found):
        path = PurePosixPath(name)
        if path.suffix.lower() in MEDIA_SUFFIXES:
            parts = path.relative_to(prefix).parts
            out.append(MediaInput(uri=fs.unstrip_protocol(name), source=parts[0] if len(parts) > 1 else None))
    return out


def discover_inputs(
    inputs: Iterable[str | Path], input_root: str | Path | None = None, terms: InputsConfig | None = None
) -> list[MediaInput]:
    """Expand inputs in a stable order; duplicates (same resolved path) are kept once.

    A file with an unknown suffix given explicitly is kept (probing decides if it is
    media, and a failure row says why not); inside folders only media suffixes count.

    Args:
        inputs: media files, folders, CSV/JSONL manifests, or URLs (of an object, or of a
            folder of objects when it ends in ``/``).
        input_root: folder every local input must lie in (after resolving ``..`` and
            symlinks). Default: a manifest's own folder for its entries, the folder given
            for files found in it, the file's folder for a file given directly. An entry
            outside it is kept as a refused input (``outside_input_root`` failure row) and
            never read.
        terms: where inputs get the terms of use their manifest row does not give (folder
            terms files, config rules: ``storage/terms.py``); None: only the manifest's.

    Raises:
        InputError: a path that does not exist or is not a file or folder, an unreadable
            manifest, or terms that do not parse; one line naming the input.
    """
    seen: set[str] = set()
    out: list[MediaInput] = []
    wide = Path(input_root).resolve() if input_root is not None else None
    if wide is not None and not wide.is_dir():
        raise InputError(f"--input-root {input_root}: not a folder")

    def add(item: MediaInput) -> None:
        if item.uri not in seen:
            seen.add(item.uri)
            out.append(item)

    for raw in inputs:
        path = Path(raw)
        if "://" in str(raw):
            for item in _remote_inputs(str(raw)):
                add(item)
        elif path.is_dir():
            folder = path.resolve()
            for child in sorted(path.rglob("*")):
                if child.is_file() and child.suffix.lower() in MEDIA_SUFFIXES:
                    add(_rooted(str(child), child, wide or folder, _folder_source(path, child)))
        elif path.is_file() and path.suffix.lower() in MANIFEST_SUFFIXES:
            for item in _read_manifest(path, wide or path.parent.resolve()):
                add(item)
        elif path.is_file():
            add(_rooted(str(raw), path, wide or path.parent.resolve()))
        elif path.exists():
            raise InputError(f"{raw}: not a regular file or folder")
        else:
            raise InputError(f"{raw}: no such file or folder")
    if terms is None:
        return out
    resolver = TermsResolver(terms)
    try:
        return [resolver.resolve(item) for item in out]
    except TermsError as exc:
        raise InputError(str(exc)) from exc


def publishable_path(uri: str, root: str | Path) -> str:
    """The path a release may publish for a recording: relative to ``root``, POSIX, never
    absolute; a URL keeps only its file name (its host or bucket can be private).

    Raises:
        ValueError: a local path outside ``root`` (a release must not name it).
    """
    if "://" in uri and not uri.startswith("file://"):
        return PurePosixPath(uri.split("?", 1)[0]).name
    local = uri[len("file://") :] if uri.startswith("file://") else uri
    return Path(local).resolve().relative_to(Path(root).resolve()).as_posix()


def publishable_paths(uris: Iterable[str]) -> dict[str, str]:
    """uri -> publishable path for a whole corpus, relative to the deepest folder holding all
    its local files (a release does not know the runs' input roots; their common folder is at
    or below every root, so no published path climbs out of one)."""
    uris = list(dict.fromkeys(uris))
    local = [
        u[len("file://") :] if u.startswith("file://") else u for u in uris if "://" not in u or u.startswith("file://")
    ]
    resolved = [str(Path(p).resolve()) for p in local]
    root = os.path.commonpath([os.path.dirname(p) for p in resolved]) if resolved else "/"
    return {u: publishable_path(u, root) for u in uris}


def refused_recording(item: MediaInput) -> Recording:
    """The failed Recording of a refused input; its id hashes the uri, as the file is never read."""
    if item.refused is None:
        raise ValueError(f"{item.uri}: not a refused input")
    sha = hashlib.sha256(item.uri.encode()).hexdigest()
    return Recording(
        id=recording_id_for(item.uri, sha),
        uri=item.uri,
        sha256=sha,
        size_bytes=0,
        source=item.source,
        speaker_hint=item.speaker,
        terms=item.terms,
        status=Status.failed,
        failure=item.refused,
    )
