"""Which files failed and why, in one line each: the end of every run and `inspect --failures`.

Counts by kind alone ("probe:corrupt_media 1") left a user to open the Parquet file to learn
which file it was and why. A ``FailureDigest`` keeps, per kind, the first files with their
one-line reasons; ``failure_examples`` yields every one. Kinds read as the run summary counts
them: ``stage:kind`` for a row that failed, ``agent NAME: kind`` for a failed vote and ``judge
NAME: kind`` for a failed judgement (not the judge's echo of a vote that had failed already).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from pydantic import BaseModel, Field

from emoforge.storage.records import SegmentRow, Status

FIRST_PER_KIND = 3
REASON_CHARS = 200


class FailureExample(BaseModel):
    """One failure: its kind, the file it happened to, the row, and why in one line."""

    kind: str
    file: str
    row_id: str
    reason: str

    def line(self) -> str:
        return f"{self.file}: {self.reason}"


def _one_line(message: str) -> str:
    first = " ".join(message.split())
    return first if len(first) <= REASON_CHARS else first[: REASON_CHARS - 3] + "..."


def failure_examples(rows: Iterable[SegmentRow]) -> Iterator[FailureExample]:
    """Every failure the rows hold, in row order."""
    for r in rows:
        where = {"file": r.recording.uri, "row_id": r.row_id}
        if r.failure is not None:
            kind = f"{r.failure.stage}:{r.failure.kind.value}"
            yield FailureExample(kind=kind, reason=_one_line(r.failure.message), **where)
        failed = {a.id for a in r.annotations if a.status != Status.ok}
        for a in r.annotations:
            if a.failure is not None:
                kind = f"agent {a.agent}: {a.failure.kind.value}"
                yield FailureExample(kind=kind, reason=_one_line(a.failure.message), **where)
        for v in r.verdicts:
            if v.failure is not None and v.annotation_id not in failed:
                kind = f"judge {v.judge}: {v.failure.kind.value}"
                yield FailureExample(kind=kind, reason=_one_line(v.failure.message), **where)


class FailureDigest(BaseModel):
    """Failures per kind, with the first few files (distinct) and their reasons."""

    counts: dict[str, int] = Field(default_factory=dict, description="kind -> failures.")
    first: dict[str, list[FailureExample]] = Field(
        default_factory=dict, description=f"kind -> its first {FIRST_PER_KIND} distinct files."
    )

    def add(self, rows: Iterable[SegmentRow]) -> None:
        for example in failure_examples(rows):
            self.counts[example.kind] = self.counts.get(example.kind, 0) + 1
            kept = self.first.setdefault(example.kind, [])
            if len(kept) < FIRST_PER_KIND and all(k.file != example.file for k in kept):
                kept.append(example)

    def lines(self) -> list[str]:
        """Most frequent kind first: ``kind (n): file: reason`` and one indented line per further file."""
        out = []
        for kind, n in sorted(self.counts.items(), key=lambda kv: (-kv[1], kv[0])):
            first, *rest = self.first[kind]
            out.append(f"{kind} ({n}): {first.line()}")
            out += [f"    {e.line()}" for e in rest]
        return out
