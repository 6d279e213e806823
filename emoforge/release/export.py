"""The export workflow behind ``emoforge export``: a corpus's rows to a release."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from emoforge.configs.release import ReleaseConfig
from emoforge.release.writer import ReleaseError, ReleaseSummary


def export_corpus(
    corpus: str,
    out: Path,
    config: ReleaseConfig,
    warn: Callable[[str], None],
    answers_out: Path | None = None,
    allow_unknown: bool = False,
) -> ReleaseSummary:
    """Write ``corpus`` as a release to ``out`` (``ReleaseWriter``), speakers pseudonymised
    with the corpus's own salt where ``release.policy.speakers`` is hash.

    ``warn`` hears each integrity problem of the corpus before anything is written (the rows
    it names are left out). Raises ``ReleaseError``, also when the salt cannot be read or made.
    """
    from emoforge.release.pseudonyms import corpus_salt
    from emoforge.release.writer import ReleaseWriter
    from emoforge.storage.shards import read_manifest, read_rows, verify

    for problem in verify(corpus):
        warn(f"corpus integrity: {problem}")
    try:
        salt = corpus_salt(corpus) if config.policy.speakers == "hash" else None
    except (OSError, ValueError) as exc:  # a read-only corpus, or a salt file someone edited
        raise ReleaseError(f"{corpus}: cannot read or make its speaker salt: {exc}") from exc
    return ReleaseWriter(config).write(
        list(read_rows(corpus)),
        out,
        read_manifest(corpus),
        answers_out=answers_out,
        allow_unknown=allow_unknown,
        salt=salt,
    )
