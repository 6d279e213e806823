"""``manifest.json``: read, rebuilt from the shards when unreadable, and rewritten atomically."""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from emoforge.storage import lock as corpus_lock
from emoforge.storage.records import SCHEMA_VERSION, utcnow
from emoforge.storage.shards.files import CORRUPT_MARK, FORMAT, MANIFEST, _fs, _shard_index, _write_atomic

log = logging.getLogger(__name__)


def _empty_manifest() -> dict[str, Any]:
    now = utcnow().isoformat()
    return {
        "format": FORMAT,
        "schema_version": SCHEMA_VERSION,
        "created_at": now,
        "updated_at": now,
        "shards": [],
        "runs": [],
        "stats": {},
    }


def retired_shards(manifest: dict[str, Any]) -> set[str]:
    """Names of shards a committed compaction replaced: never adopted again, never reused."""
    return {e["name"] for c in manifest.get("compactions", []) for e in c.get("replaced", [])}


def _describe_bytes(name: str, data: bytes, run_id: str | None = None) -> dict[str, Any]:
    """Manifest entry of a shard from its bytes (raises ArrowInvalid/OSError if unreadable)."""
    meta = pq.read_metadata(pa.BufferReader(data))
    return {
        "name": name,
        "rows": meta.num_rows,
        "bytes": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "run_id": run_id or (meta.metadata or {}).get(b"emoforge.run_id", b"").decode(),
        "schema_version": SCHEMA_VERSION,
        "created_at": utcnow().isoformat(),
    }


def rebuild_manifest(root: str, reason: str) -> dict[str, Any]:
    """A manifest made from the readable shards on disk, in index (= commit) order.

    Unreadable shards are left out here; a writer quarantines them on open.
    """
    fs, base = _fs(root)
    manifest = _empty_manifest()
    names = sorted(
        (n for p in fs.ls(base, detail=False) if _shard_index(n := str(p).rsplit("/", 1)[-1]) is not None),
        key=lambda n: _shard_index(n) or 0,
    )
    for name in names:
        try:
            with fs.open(f"{base}/{name}", "rb") as fh:
                manifest["shards"].append(_describe_bytes(name, fh.read()))
        except (pa.ArrowInvalid, OSError) as exc:
            log.warning("shard %s is unreadable while rebuilding the manifest: %s", name, exc)
    manifest["rebuilt"] = {"reason": reason, "at": utcnow().isoformat(), "shards": len(manifest["shards"])}
    # Not yet on disk: readers report it (verify); a writer saves it and drops the mark.
    manifest["_unsaved_rebuild"] = True
    return manifest


def read_manifest(root: str) -> dict[str, Any]:
    """The corpus manifest; an unreadable one is rebuilt from the shards (in memory)."""
    fs, base = _fs(root)
    path = f"{base}/{MANIFEST}"
    if not fs.exists(path):
        return _empty_manifest()
    with fs.open(path, "rb") as fh:
        raw = fh.read()
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        log.warning("%s is unreadable (%s); rebuilding it from the shards", path, exc)
        return rebuild_manifest(root, f"manifest.json unreadable: {exc}")
    if not isinstance(data, dict) or not isinstance(data.get("shards"), list):
        if isinstance(data, dict) and "format" in data and data["format"] != FORMAT:
            raise ValueError(f"{path}: not an emoforge corpus manifest")
        log.warning("%s has no shard list; rebuilding it from the shards", path)
        return rebuild_manifest(root, "manifest.json has no shard list")
    if data.get("format") != FORMAT:
        raise ValueError(f"{path}: not an emoforge corpus manifest")
    data.setdefault("runs", [])
    data.setdefault("stats", {})
    return data


def _set_aside_corrupt_manifest(root: str) -> None:
    """Keep an unreadable manifest as ``manifest.json.corrupt-<time>`` before a rebuilt one replaces it."""
    fs, base = _fs(root)
    path = f"{base}/{MANIFEST}"
    if fs.exists(path):
        stamp = utcnow().strftime("%Y%m%dT%H%M%S%f")
        fs.mv(path, f"{path}{CORRUPT_MARK}{stamp}")
        log.warning("kept the unreadable manifest as %s%s%s", MANIFEST, CORRUPT_MARK, stamp)


def write_manifest(root: str, manifest: dict[str, Any]) -> None:
    fs, base = _fs(root)
    fs.makedirs(base, exist_ok=True)
    manifest.pop("_unsaved_rebuild", None)
    manifest["updated_at"] = utcnow().isoformat()
    _write_atomic(fs, f"{base}/{MANIFEST}", json.dumps(manifest, indent=2, sort_keys=True, default=str).encode())


def update_manifest_stats(root: str, key: str, value: Any) -> None:
    """Store a JSON-able statistics block (agreement, aggregation...) under ``stats[key]``.

    Takes the corpus lock (re-entered if the caller holds it): raises ``CorpusLocked`` while
    another run writes, instead of overwriting the manifest that run is updating.
    """
    with corpus_lock.corpus_lock(root, f"update stats.{key}"):
        manifest = read_manifest(root)
        if manifest.get("_unsaved_rebuild"):
            _set_aside_corrupt_manifest(root)
        manifest.setdefault("stats", {})[key] = value
        write_manifest(root, manifest)
