"""Hidden test labels stay hidden: names of hidden rows must not spell their label.

Media laid out as ``data/angry/*.wav`` (the way many emotion corpora ship) gives every test
row's label away through what a release publishes beside it: its ``media_uri``, its
``source`` when the folder became the source, and its ``recording_id`` / ``row_id``, which
derive from the file name. :func:`label_leaks` finds such rows (a word of a name or grouping
key that is a label of the release, or a synonym of one such as CREMA-D's ``ANG``); with
``release.hidden_ids`` at
``auto`` (the default) a leaking release, and with ``opaque`` every release, publishes the
hidden split under opaque names (:func:`make_opaque`): ``row_id`` and ``recording_id``
become keyed hashes, ``media_uri`` is ``test/<opaque id><suffix>``, ``source`` is dropped
and ``speaker`` hashed.
The key is random per export and written only to the private answers folder, beside the
map from opaque media names to the corpus's files (``test_media.jsonl``), so the author
can ship the test media under the names the release uses and nobody can hash a guessed
name to find a row.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable
from pathlib import PurePosixPath
from typing import Any

from emoforge.configs.emotions import SYNONYMS

_TOKEN = re.compile(r"[a-z]+")
_COMMON_WORDS = frozenset({"none", "content", "flat"})
# Fields of a published row that a corpus's folder and file names flow into.
NAME_FIELDS = ("row_id", "recording_id", "media_uri", "source", "speaker")


def _tokens(value: Any) -> set[str]:
    return set(_TOKEN.findall(str(value).lower())) if value else set()


def label_words(labels: Iterable[str]) -> set[str]:
    """The labels and their synonyms of three letters or more (``anger``, CREMA-D's ``ang``),
    as lower-case words; words that name other things in paths (``none``, ``content``) are not."""
    used = {lab.lower() for lab in labels if lab}
    synonyms = {
        word
        for word, label in SYNONYMS.items()
        if label in used and len(word) >= 3 and _TOKEN.fullmatch(word) and word not in _COMMON_WORDS
    }
    return used | synonyms


def label_leaks(records: Iterable[dict[str, Any]], labels: Iterable[str]) -> list[str]:
    """One ``'field=value'`` example per hidden row whose names contain a label or one of its
    synonyms (as a word, :func:`label_words`).

    Args:
        records: flat release rows of the hidden split (before their labels are dropped).
        labels: every label the release uses.
    """
    words = label_words(labels)
    found = []
    for rec in records:
        for field in NAME_FIELDS:
            if _tokens(rec.get(field)) & words:
                found.append(f"{field}={str(rec.get(field))[:120]}")
                break
    return found


def _opaque(key: bytes, kind: str, value: str) -> str:
    return hmac.new(key, f"{kind}\x00{value}".encode(), hashlib.sha256).hexdigest()[:20]


def make_opaque(records: list[dict[str, Any]], key: bytes) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    """The hidden rows under opaque names, and the private map of their media.

    Returns:
        (rows with opaque ``row_id`` / ``recording_id`` / ``media_uri`` / ``speaker`` and no ``source``,
        one ``{"media_uri", "original"}`` per recording for the answers folder).
    """
    out, media = [], {}
    for rec in records:
        recording = f"rec-{_opaque(key, 'recording', str(rec['recording_id']))}"
        uri = rec.get("media_uri")
        # A row published without media (features only) gets no media name; a copied file is
        # already named by its content hash (release.policy), which names no label.
        if uri and rec.get("media_action") != "copy":
            suffix = PurePosixPath(str(rec["media_uri"])).suffix.lower()
            suffix = suffix if re.fullmatch(r"\.[a-z0-9]{1,5}", suffix) else ""
            uri = f"test/{recording}{suffix}"
            media[uri] = str(rec.get("source_url") or rec["media_uri"])
        out.append(
            rec
            | {
                "row_id": f"test-{_opaque(key, 'row', str(rec['row_id']))}",
                "recording_id": recording,
                "media_uri": uri,
                "source": None,
                # A source URL names the original file too: the private map keeps it.
                **({"source_url": None} if "source_url" in rec else {}),
                "speaker": f"spk-{_opaque(key, 'speaker', str(rec['speaker']))}" if rec.get("speaker") else None,
            }
        )
    return out, [{"media_uri": k, "original": v} for k, v in sorted(media.items())]


def opaque_groups(groups: Iterable[str], key: bytes) -> list[str]:
    """Group names of the hidden split as opaque ids (a group named after a folder is a label)."""
    return sorted(f"group-{_opaque(key, 'group', g)}" for g in groups)
