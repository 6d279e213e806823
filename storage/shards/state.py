"""Resume state: what each committed row's outcome is, read from a few columns only."""

from __future__ import annotations

from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc

from emoforge.storage.records import TRANSIENT_ERRORS, ErrorKind, Status
from emoforge.storage.shards.reader import read_table


@dataclass(frozen=True)
class DoneRow:
    status: Status
    failure_kind: ErrorKind | None

    @property
    def final(self) -> bool:
        """True when resume must not redo the row (ok, or a deterministic failure)."""
        return self.status != Status.failed or self.failure_kind not in TRANSIENT_ERRORS


@dataclass
class CorpusState:
    """What is committed: each row's outcome, and each recording's segment count.

    ``by_recording`` lists each recording's committed row ids, so that ``of_recording``
    hands a stage task its own recording's state, never the corpus's."""

    rows: dict[str, DoneRow]
    segment_counts: dict[str, int]
    by_recording: dict[str, list[str]] = field(default_factory=dict)

    def of_recording(self, recording_id: str) -> CorpusState:
        """The state of one recording: its rows and segment count only."""
        ids = self.by_recording.get(recording_id, [])
        count = self.segment_counts.get(recording_id)
        return CorpusState(
            rows={rid: self.rows[rid] for rid in ids},
            segment_counts={} if count is None else {recording_id: count},
            by_recording={recording_id: list(ids)} if ids else {},
        )


DONE_COLUMNS = ["row_id", "status", "failure.kind", "recording.id", "recording.segment_count"]
"""What resume needs of a row: ``read_table(root, DONE_COLUMNS)`` reads nothing else."""

_DONE: dict[tuple[str, str | None], DoneRow] = {}


def _done_row(status: str, kind: str | None) -> DoneRow:
    """One shared DoneRow per (status, kind): a million committed rows hold a handful."""
    kind = kind or None
    key = (status, kind)
    if key not in _DONE:
        _DONE[key] = DoneRow(status=Status(status), failure_kind=ErrorKind(kind) if kind else None)
    return _DONE[key]


def corpus_state(table: pa.Table) -> CorpusState:
    """The committed state from a deduplicated table holding ``DONE_COLUMNS``.

    Grouping and encoding run in Arrow; Python builds only the dicts it returns (a million
    rows: about a second, a few hundred MB)."""
    if table.num_rows == 0:
        return CorpusState(rows={}, segment_counts={})
    recording = table.column("recording").combine_chunks()
    kinds = pc.struct_field(table.column("failure").combine_chunks(), "kind")
    flat = pa.table(
        {
            "row_id": table.column("row_id"),
            "rec": pc.struct_field(recording, "id"),
            "outcome": pc.binary_join_element_wise(table.column("status"), pc.fill_null(kinds, ""), "|"),
            "count": pc.struct_field(recording, "segment_count"),
        }
    )
    # Ordered: the newest row (deduplicated rows come in commit order) that knows the count wins.
    counted = flat.group_by("rec", use_threads=False).aggregate([("count", "last")])
    counts = {
        rec: int(n)
        for rec, n in zip(counted.column("rec").to_pylist(), counted.column("count_last").to_pylist(), strict=True)
        if rec is not None and n is not None
    }
    flat = flat.sort_by("rec")
    encoded = flat.column("outcome").combine_chunks().dictionary_encode()
    outcomes = [_done_row(*o.split("|", 1)) for o in encoded.dictionary.to_pylist()]
    ids = flat.column("row_id").to_pylist()
    rows = dict(zip(ids, map(outcomes.__getitem__, encoded.indices.to_pylist()), strict=True))
    runs = pc.run_end_encode(flat.column("rec").combine_chunks())
    by_recording: dict[str, list[str]] = {}
    start = 0
    for rec, end in zip(runs.values.to_pylist(), runs.run_ends.to_pylist(), strict=True):
        if rec is not None:
            by_recording[rec] = ids[start:end]
        start = end
    return CorpusState(rows=rows, segment_counts=counts, by_recording=by_recording)


def done_rows(root: str) -> CorpusState:
    return corpus_state(read_table(root, columns=DONE_COLUMNS))
