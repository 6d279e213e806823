"""``emoforge verify``: what is wrong with a corpus, and ``--repair``, which quarantines the bad shards."""

from __future__ import annotations

from emoforge.configs.storage import StorageConfig
from emoforge.storage.shards.checks import _check_shard, _sizes
from emoforge.storage.shards.files import MANIFEST, _fs
from emoforge.storage.shards.locked import LockedCorpus
from emoforge.storage.shards.manifest import read_manifest


def verify(root: str, full: bool = True) -> list[str]:
    """Problems found: missing, altered or unreadable shards, a manifest rebuilt in memory,
    and quarantined shards whose rows no finished run has redone yet.

    Args:
        full: hash every shard's bytes against the manifest's sha256 (``emoforge verify``);
            False makes only the cheap check readers make (``inspect``), which reads no row.
    """
    fs, base = _fs(root)
    manifest = read_manifest(root)
    problems = []
    if manifest.get("_unsaved_rebuild"):
        rebuilt = manifest["rebuilt"]
        problems.append(
            f"{MANIFEST}: {rebuilt['reason']}; rebuilt from {rebuilt['shards']} shards (the next annotate run saves it)"
        )
    sizes = _sizes(fs, base) if manifest["shards"] else {}
    for entry in manifest["shards"]:
        problem = _check_shard(fs, base, entry, sizes, full=full)
        if problem == "missing":
            problems.append(f"{entry['name']}: missing ({entry.get('rows')} rows; rerun annotate to redo them)")
        elif problem == "sha256 mismatch":  # readers may not see it: only the full check does
            problems.append(
                f"{entry['name']}: {problem} ({entry.get('rows')} rows; `emoforge verify --repair` "
                "quarantines it, then rerun annotate to redo them)"
            )
        elif problem is not None:
            problems.append(
                f"{entry['name']}: {problem} ({entry.get('rows')} rows skipped; "
                "rerun annotate to quarantine it and redo them)"
            )
    for q in manifest.get("quarantined", []):
        if not q.get("redone_by"):
            problems.append(
                f"{q['name']}: quarantined ({q['reason']}; moved to {q['moved_to']}); "
                f"{q.get('rows')} rows not redone yet"
            )
    return problems


def repair(root: str, lock_wait_s: float | None = 0.0) -> list[str]:
    """Hash every shard (``verify(root, full=True)``) under the corpus lock and move the bad
    ones to ``quarantine/``; the next annotate run redoes their rows. Returns their names."""
    before = len(read_manifest(root).get("quarantined", []))
    corpus = LockedCorpus(root, StorageConfig(), "verify --repair", lock_wait_s, full_check=True)
    corpus.release()
    return [q["name"] for q in corpus.manifest.get("quarantined", [])[before:]]
