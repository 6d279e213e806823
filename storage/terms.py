"""Where an input's terms of use come from, most specific first and field by field: its own
manifest columns, the nearest terms file (``inputs.terms_file``) in a folder above it, then the
config's rule for the deepest folder or URL prefix holding it (``inputs.terms``). A field
nothing gives stays unknown.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from pydantic import ValidationError

from emoforge.configs.inputs import InputsConfig
from emoforge.configs.terms import CONSENTS
from emoforge.storage.records import MediaInput, Terms

TERMS_FIELDS = ("licence", "consent", "attribution", "source_url")
"""Manifest columns (CSV) or keys (JSONL, terms files) that carry a clip's terms."""


class TermsError(ValueError):
    """Terms that do not parse: an unknown consent value, a terms file that is not an object."""


def terms_from(raw: Mapping[str, object], where: str) -> Terms:
    """The terms a manifest row or a terms file gives (missing or empty fields: unknown).

    Raises:
        TermsError: a consent value outside publish / research / none / unknown, naming ``where``.
    """
    values = {k: str(raw[k]).strip() for k in TERMS_FIELDS if raw.get(k) not in (None, "")}
    consent = values.get("consent", "unknown").lower()
    if consent not in CONSENTS:
        raise TermsError(f"{where}: consent {values['consent']!r} is not one of {', '.join(CONSENTS)}")
    return Terms(**{**values, "consent": consent})


def merge_terms(first: Terms, then: Terms) -> Terms:
    """``first``'s fields where it gives them, else ``then``'s (an unknown consent is not given)."""
    return Terms(
        licence=first.licence or then.licence,
        consent=first.consent if first.consent != "unknown" else then.consent,
        attribution=first.attribution or then.attribution,
        source_url=first.source_url or then.source_url,
    )


def read_terms_file(path: Path) -> Terms:
    """A folder's terms file: one JSON object with the ``TERMS_FIELDS`` keys.

    Raises:
        TermsError: unreadable, not JSON, not an object, unknown keys or a bad consent value.
    """
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise TermsError(f"{path}: not a readable JSON terms file: {exc}") from exc
    if not isinstance(raw, dict):
        raise TermsError(f"{path}: a terms file must hold one JSON object")
    unknown = sorted(set(raw) - set(TERMS_FIELDS))
    if unknown:
        raise TermsError(f"{path}: unknown key(s) {', '.join(unknown)}; expected {', '.join(TERMS_FIELDS)}")
    return terms_from(raw, str(path))


class TermsResolver:
    """Fills the terms of discovered inputs from folder terms files and the config's rules."""

    def __init__(self, config: InputsConfig) -> None:
        self.config = config
        rules = []
        for key, rule in config.terms.items():
            where = key if "://" in key else str(Path(key).expanduser().resolve())
            try:
                rules.append((where, Terms(**rule.model_dump(exclude_none=True))))
            except ValidationError as exc:  # unreachable through the config model; kept typed
                raise TermsError(f"inputs.terms[{key!r}]: {exc}") from exc
        # Deepest first: the most specific rule gives a field before a broader one.
        self._rules = sorted(rules, key=lambda r: -len(r[0]))
        self._files: dict[Path, Terms | None] = {}

    def _rule_terms(self, uri: str) -> Terms:
        terms = Terms()
        for prefix, rule in self._rules:
            inside = uri.startswith(prefix) if "://" in prefix else _under(uri, prefix)
            if inside:
                terms = merge_terms(terms, rule)
        return terms

    def _folder_terms(self, folder: Path) -> Terms | None:
        if folder not in self._files:
            path = folder / self.config.terms_file
            self._files[folder] = read_terms_file(path) if path.is_file() else None
        return self._files[folder]

    def _file_terms(self, item: MediaInput) -> Terms:
        """Terms files from the file's folder up to its input root (never above it)."""
        terms = Terms()
        if not self.config.terms_file or item.rel_path is None or item.refused is not None:
            return terms
        path = Path(item.uri)
        depth = len(Path(item.rel_path).parts) - 1
        for folder in [path.parents[i] for i in range(depth + 1)]:
            found = self._folder_terms(folder)
            if found is not None:
                terms = merge_terms(terms, found)
        return terms

    def resolve(self, item: MediaInput) -> MediaInput:
        """The input with its terms filled: its own, then terms files, then config rules.

        Raises:
            TermsError: a terms file on the way that does not parse.
        """
        terms = merge_terms(merge_terms(item.terms, self._file_terms(item)), self._rule_terms(item.uri))
        return item.model_copy(update={"terms": terms})


def _under(uri: str, folder: str) -> bool:
    if "://" in uri:
        return False
    local = Path(uri).resolve()
    return local == Path(folder) or Path(folder) in local.parents
