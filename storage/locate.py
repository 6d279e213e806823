"""Where the corpus is, from what a user typed: one rule for every command that reads a corpus.

Accepted: a corpus folder (one holding ``manifest.json`` or shards), a ``file://`` URL of one
(read as the local folder), another fsspec URL (``s3://...``, ``memory://...``) whose folder
holds a manifest or shards, or the parent folder of exactly one corpus (``emoforge demo --out
out/demo`` writes its corpus to ``out/demo/corpus``), which is used with a note saying so.
Anything else is refused with one line that says what was found instead.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlsplit

from pydantic import BaseModel, Field

from emoforge.storage.shards import MANIFEST, SHARD_PREFIX, SHARD_SUFFIX


class NotACorpus(ValueError):
    """The argument names no corpus; the message is the one line to show."""


class CorpusLocation(BaseModel):
    """A resolved corpus argument."""

    root: str = Field(description="Local folder path or fsspec URL, as the storage readers take it.")
    note: str | None = Field(default=None, description="What was resolved differently from what was typed.")

    @property
    def is_local(self) -> bool:
        return "://" not in self.root


def _is_corpus(folder: Path) -> bool:
    return (folder / MANIFEST).is_file() or any(folder.glob(f"{SHARD_PREFIX}*{SHARD_SUFFIX}"))


def locate_corpus(arg: str | Path) -> CorpusLocation:
    """Resolve a corpus argument (see the module docstring).

    Raises:
        NotACorpus: with a one-line reason (missing path, a shard file, no corpus, or several).
    """
    text = str(arg)
    if text.startswith("file://"):
        text = unquote(urlsplit(text).path)
    elif "://" in text:
        return _remote(text)
    path = Path(text)
    if not path.exists():
        raise NotACorpus(f"{arg}: no such folder")
    if path.is_file():
        if path.name.startswith(SHARD_PREFIX) and path.suffix == SHARD_SUFFIX and _is_corpus(path.parent):
            raise NotACorpus(f"{arg} is a shard file, not a corpus: pass its folder {path.parent}")
        raise NotACorpus(f"{arg} is a file, not a corpus folder")
    if _is_corpus(path):
        return CorpusLocation(root=text)
    inside = sorted(child for child in path.iterdir() if child.is_dir() and _is_corpus(child))
    if len(inside) == 1:
        return CorpusLocation(root=str(inside[0]), note=f"{arg} is not a corpus; using the one inside it: {inside[0]}")
    if inside:
        names = ", ".join(str(c) for c in inside)
        raise NotACorpus(f"{arg} is not a corpus but holds {len(inside)}: pass one of {names}")
    raise NotACorpus(f"{arg}: not an emoforge corpus (no {MANIFEST}, no shards)")


def _remote(url: str) -> CorpusLocation:
    import fsspec

    try:
        fs, base = fsspec.core.url_to_fs(url)
    except (ImportError, ValueError) as exc:  # unknown protocol, or its package is not installed
        raise NotACorpus(f"{url}: cannot open ({exc})") from exc
    base = base.rstrip("/")
    if fs.exists(f"{base}/{MANIFEST}") or fs.glob(f"{base}/{SHARD_PREFIX}*{SHARD_SUFFIX}"):
        return CorpusLocation(root=url.rstrip("/"))
    raise NotACorpus(f"{url}: not an emoforge corpus (no {MANIFEST}, no shards)")
