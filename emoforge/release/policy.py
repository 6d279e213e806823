"""What of each row may leave the building: the release policy applied to a row's terms.

A row's consent and its licence's class each map to a media action (``release.policy``); the
row gets the more restrictive of the two, in the order copy > link > features > withhold:

- copy: the media file is copied into the release (``media/<sha256[:16]><suffix>``);
- link: the release names where to get it (the clip's ``source_url``, else its corpus path);
- features: labels, transcript and the other columns, but no media reference (no pixels, no
  waveforms, no path or hash that points at them);
- withhold: the row is not published at all.

A consent or licence nobody recorded is *unknown*: such a row is withheld unless the export is
told ``--allow-unknown``, and then the unknown side maps to ``release.policy.unknown``.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from pathlib import Path, PurePosixPath
from typing import Any

import fsspec
from pydantic import Field

from emoforge.configs.release import ReleasePolicy
from emoforge.configs.terms import MEDIA_ACTIONS, Consent, LicenceClass, MediaAction
from emoforge.storage.records import Record, RecordingRef, Terms

_NONCOMMERCIAL = re.compile(r"(^|[-_ ])NC([-_ ]|$)|NON-?COMMERCIAL", re.IGNORECASE)
_UNSET = frozenset({"", "unknown", "unset", "n/a", "na", "?"})

MEDIA_DIR = "media"
"""Folder of a release that holds the copied media files."""


def licence_class(licence: str | None, open_licences: Iterable[str]) -> LicenceClass:
    """The class of a licence string: open (listed SPDX id), noncommercial (Creative Commons NC),
    restricted (any other text, 'none' included: no licence means all rights reserved), or unknown
    (nothing given)."""
    text = (licence or "").strip()
    if text.lower() in _UNSET:
        return "unknown"
    if _NONCOMMERCIAL.search(text):
        return "noncommercial"
    if text.lower() in {x.lower() for x in open_licences}:
        return "open"
    return "restricted"


class Decision(Record):
    """What the policy does with one row's media, and why."""

    consent: Consent = Field(description="The row's consent.")
    licence_class: LicenceClass = Field(description="Class of the row's licence.")
    action: MediaAction = Field(description="copy, link, features or withhold.")
    reason: str = Field(description="policy (the classes' actions), terms_unknown (refused) or allow_unknown.")


class PolicyCount(Record):
    """Rows and recordings per consent, licence class and action: what an export did per class."""

    consent: Consent = Field(description="Consent of the rows.")
    licence_class: LicenceClass = Field(description="Class of their licence.")
    action: MediaAction = Field(description="What the release did with them.")
    reason: str = Field(description="Why (see Decision.reason).")
    rows: int = Field(description="Rows (segments) of this class that passed the release's quality filters.")
    recordings: int = Field(description="Distinct recordings among them.")


def _stricter(a: MediaAction, b: MediaAction) -> MediaAction:
    return a if MEDIA_ACTIONS.index(a) >= MEDIA_ACTIONS.index(b) else b


class PolicyGate:
    """Decides, row by row, what of a row a release may publish (see the module docstring)."""

    def __init__(self, policy: ReleasePolicy, allow_unknown: bool = False) -> None:
        self.policy, self.allow_unknown = policy, allow_unknown
        # A corpus has a handful of distinct terms and many rows: decide each once.
        self._decided: dict[tuple[str | None, str], Decision] = {}

    def decide(self, terms: Terms) -> Decision:
        key = (terms.licence, terms.consent)
        if key not in self._decided:
            self._decided[key] = self._decide(terms)
        return self._decided[key]

    def _decide(self, terms: Terms) -> Decision:
        klass = licence_class(terms.licence, self.policy.open_licences)
        unknown = terms.consent == "unknown" or klass == "unknown"
        if unknown and not self.allow_unknown:
            return Decision(consent=terms.consent, licence_class=klass, action="withhold", reason="terms_unknown")
        by_consent = self.policy.unknown if terms.consent == "unknown" else getattr(self.policy.consent, terms.consent)
        by_licence = self.policy.unknown if klass == "unknown" else getattr(self.policy.licence, klass)
        return Decision(
            consent=terms.consent,
            licence_class=klass,
            action=_stricter(by_consent, by_licence),
            reason="allow_unknown" if unknown else "policy",
        )


def policy_counts(decided: Iterable[tuple[RecordingRef, Decision]]) -> list[PolicyCount]:
    """One count per (consent, licence class, action, reason), sorted."""
    rows: Counter[tuple[str, str, str, str]] = Counter()
    recordings: dict[tuple[str, str, str, str], set[str]] = defaultdict(set)
    for recording, d in decided:
        key = (d.consent, d.licence_class, d.action, d.reason)
        rows[key] += 1
        recordings[key].add(recording.id)
    return [
        PolicyCount(consent=c, licence_class=lc, action=a, reason=r, rows=n, recordings=len(recordings[(c, lc, a, r)]))
        for (c, lc, a, r), n in sorted(rows.items())
    ]


def copy_media(recording: RecordingRef, out: Path, done: dict[str, str]) -> str:
    """Copy a recording's media into ``out/media/`` once (named by its content hash, never by its
    file name, which can name a person) and return its release-relative path.

    Raises:
        OSError: the media cannot be read, or its bytes are no longer those that were annotated
            (a release that promises a copy must hold the very clip its labels describe).
    """
    if recording.sha256 in done:
        return done[recording.sha256]
    suffix = PurePosixPath(recording.uri.split("?", 1)[0]).suffix.lower()
    rel = f"{MEDIA_DIR}/{recording.sha256[:16]}{suffix}"
    (out / MEDIA_DIR).mkdir(exist_ok=True)
    digest = hashlib.sha256()
    with fsspec.open(recording.uri, "rb") as src, open(out / rel, "wb") as dst:
        while block := src.read(1 << 20):
            digest.update(block)
            dst.write(block)
    if digest.hexdigest() != recording.sha256:
        (out / rel).unlink()
        raise OSError(
            f"its bytes changed since it was annotated (sha256 {digest.hexdigest()[:12]}, not {recording.sha256[:12]})"
        )
    done[recording.sha256] = rel
    return rel


def published_media(
    recording: RecordingRef, decision: Decision, corpus_path: str, copied: str | None
) -> dict[str, Any]:
    """The release columns that say where the media is and under which terms, for one row."""
    terms = recording.terms
    media_uri = {"copy": copied, "link": terms.source_url or corpus_path}.get(decision.action)
    shows_media = decision.action in ("copy", "link")
    return {
        "media_uri": media_uri,
        "media_sha256": recording.sha256 if shows_media else None,
        "licence": terms.licence,
        "consent": terms.consent,
        "attribution": terms.attribution,
        "source_url": terms.source_url if shows_media else None,
        "media_action": decision.action,
    }
