"""Give committed rows new terms of use without annotating again.

Terms are stored when a recording is annotated, and a rerun skips recordings already committed;
a corpus annotated before its terms were known (every schema v1 corpus) would otherwise keep
them unknown for ever. ``update_terms`` resolves the inputs' terms again (manifest columns,
terms files, ``inputs.terms``), matches them to committed rows by the recording's path, and
commits the rows whose terms change (same row ids: the newest copy wins on read). New terms
win field by field; a field they leave unknown keeps what the row had (withdraw consent with
``consent: none``, not by leaving it out).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from pydantic import Field

from emoforge.configs.inputs import InputsConfig
from emoforge.configs.storage import StorageConfig
from emoforge.storage.inputs import discover_inputs
from emoforge.storage.records import Record, SegmentRow, utcnow
from emoforge.storage.shards import CorpusWriter, read_manifest, read_rows
from emoforge.storage.terms import merge_terms


class TermsUpdate(Record):
    """What ``update_terms`` changed."""

    run_id: str | None = Field(description="Run that committed the changed rows (None: nothing changed).")
    rows_updated: int = Field(description="Rows whose terms changed.")
    recordings_updated: int = Field(description="Recordings among them.")
    unmatched: list[str] = Field(description="Inputs with terms that match no committed recording's path.")


def update_terms(
    root: str,
    inputs: Iterable[str | Path],
    terms: InputsConfig,
    storage: StorageConfig,
    input_root: str | Path | None = None,
) -> TermsUpdate:
    """Commit the rows of ``root`` whose recording's terms the inputs now give differently.

    Raises:
        InputError: an input or terms file that does not parse (nothing is written).
    """
    found = {i.uri: i.terms for i in discover_inputs(inputs, input_root, terms) if i.refused is None}
    updated: list[SegmentRow] = []
    matched: set[str] = set()
    for row in read_rows(root):
        new = found.get(row.recording.uri)
        if new is None:
            continue
        matched.add(row.recording.uri)
        merged = merge_terms(new, row.recording.terms)
        if merged != row.recording.terms:
            updated.append(row.model_copy(update={"recording": row.recording.model_copy(update={"terms": merged})}))
    run_id = None
    if updated:
        run_id = f"terms-{utcnow().strftime('%Y%m%dT%H%M%S%f')}"
        last = (read_manifest(root).get("runs") or [{}])[-1]
        writer = CorpusWriter(root, storage, run_id, last.get("config"), last.get("config_hash", ""))
        writer.write(updated)
        writer.close({"terms_update": len(updated)})
    return TermsUpdate(
        run_id=run_id,
        rows_updated=len(updated),
        recordings_updated=len({r.recording.id for r in updated}),
        unmatched=sorted(set(found) - matched),
    )
