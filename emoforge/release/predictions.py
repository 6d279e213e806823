"""Predictions and answer files, read as typed, bounded records before anything uses them.

A predictions file comes from a stranger (a benchmark submission), so nothing in it is
trusted: the file's size and row count are checked before it is expanded (a Parquet file of
86 KB can declare three million rows), ids must match a strict pattern (they are matched
against corpus rows, never used as paths), numbers must be finite and in [0, 1], lists and
strings are capped, and JSON nested deeper than a prediction can be is refused. A file that
breaks any of these is refused with one line naming the item and the field
(:class:`PredictionsError`, a ``ValueError``), never a traceback.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, field_validator

MAX_FILE_BYTES = 128 << 20  # 128 MiB on disk (JSON) or uncompressed (Parquet)
MAX_ITEMS = 500_000  # a release's test split is at most a corpus; 500k rows is ~10x the largest seen
MAX_LIST = 64  # labels, label scores, cited evidence per item
MAX_TEXT = 20_000  # characters of a rationale or a cue
MAX_DEPTH = 16  # JSON nesting: an item is at most item -> evidence -> cue -> value
ROW_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,199}$"

RowId = Annotated[str, StringConstraints(pattern=ROW_ID_PATTERN)]
Name = Annotated[str, StringConstraints(max_length=100)]
Text = Annotated[str, StringConstraints(max_length=MAX_TEXT)]
Unit = Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False)]
Seconds = Annotated[float, Field(ge=0.0, allow_inf_nan=False)]


class PredictionsError(ValueError):
    """A predictions or answers file that cannot be read safely: one line, naming where."""


class _Item(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=False, frozen=True)


class CitedEvidence(_Item):
    """One cue a prediction cites: a modality, optionally a feature and a time span."""

    modality: Name
    feature: Name | None = None
    cue: Text | None = None
    start_s: Seconds | None = None
    end_s: Seconds | None = None


class Prediction(_Item):
    """One submitted prediction; every field but ``row_id`` is optional."""

    row_id: RowId
    label: Name | None = None
    labels: list[Name] | None = Field(default=None, max_length=MAX_LIST)
    confidence: Unit | None = None
    label_scores: dict[Name, Unit] | None = Field(default=None, max_length=MAX_LIST)
    rationale: Text | list[Text] | None = None
    evidence_modalities: list[Name] | None = Field(default=None, max_length=MAX_LIST)
    evidence: list[CitedEvidence | Name] | None = Field(default=None, max_length=MAX_LIST)
    sufficiency: Unit | None = None
    necessity: Unit | None = None

    @field_validator("label_scores", mode="before")
    @classmethod
    def _pairs(cls, value: Any) -> Any:
        # A Parquet map column reads back as [(label, score), ...].
        if isinstance(value, list) and all(isinstance(p, tuple | list) and len(p) == 2 for p in value):
            return dict(value)
        return value


class AnswerItem(_Item):
    """One row of a release's hidden answers (``OUT-answers/test.jsonl``)."""

    row_id: RowId
    label: Name | None = None
    labels: list[Name] | None = Field(default=None, max_length=MAX_LIST)
    rationale: Text | list[Text] | None = None
    modalities: list[Name] | None = Field(default=None, max_length=MAX_LIST)


def _depth(value: Any, limit: int) -> int:
    """Nesting depth of parsed JSON, stopping once past ``limit`` (no recursion to blow)."""
    stack, deepest = [(value, 1)], 0
    while stack:
        item, depth = stack.pop()
        deepest = max(deepest, depth)
        if deepest > limit:
            return deepest
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        stack.extend((child, depth + 1) for child in children)
    return deepest


def _too_many(path: Path, n: int) -> PredictionsError:
    return PredictionsError(f"{path}: more than the {MAX_ITEMS} items a file may hold ({n} read)")


def _json_items(path: Path) -> list[Any]:
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise PredictionsError(f"{path}: {size} bytes, more than the {MAX_FILE_BYTES >> 20} MiB a file may hold")
    items: list[Any] = []
    try:
        with open(path, encoding="utf-8") as fh:
            if path.suffix == ".json":
                items = json.load(fh)
            else:
                for line in fh:  # counted as read: a file of many tiny lines stops at the cap
                    if line.strip():
                        items.append(json.loads(line))
                        if len(items) > MAX_ITEMS:
                            raise _too_many(path, len(items))
    except RecursionError as exc:  # the parser recurses per level: deeply nested JSON ends here
        raise PredictionsError(f"{path}: JSON nested too deeply") from exc
    if not isinstance(items, list):
        raise PredictionsError(f"{path}: expected a list of items with row_id")
    return items


def _parquet_items(path: Path, fields: list[str]) -> list[Any]:
    """The known columns of a Parquet file, refused from its metadata when it declares too many
    rows or bytes, and read batch by batch so that a file whose metadata lies stops at the cap."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
        meta = parquet.metadata
        size = sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
        if meta.num_rows > MAX_ITEMS:
            raise PredictionsError(f"{path}: declares {meta.num_rows} rows, more than the {MAX_ITEMS} a file may hold")
        if size > MAX_FILE_BYTES:
            raise PredictionsError(
                f"{path}: {size} bytes uncompressed, more than the {MAX_FILE_BYTES >> 20} MiB a file may hold"
            )
        present = [f for f in fields if f in parquet.schema_arrow.names]
        items: list[Any] = []
        read_bytes = 0
        for batch in parquet.iter_batches(batch_size=10_000, columns=present):
            read_bytes += batch.nbytes
            if read_bytes > MAX_FILE_BYTES:
                raise PredictionsError(f"{path}: more than {MAX_FILE_BYTES >> 20} MiB once read")
            items.extend(batch.to_pylist())
            if len(items) > MAX_ITEMS:
                raise _too_many(path, len(items))
    except pa.ArrowException as exc:
        raise PredictionsError(f"{path}: not a readable Parquet file ({exc})") from exc
    return items


def read_items(path: str | Path, model: type[Prediction] | type[AnswerItem]) -> dict[str, dict[str, Any]]:
    """row_id -> the item's fields (only those ``model`` knows, validated) from a .jsonl,
    .json (a list) or .parquet file.

    Raises:
        PredictionsError: missing, too large, not JSON/Parquet, or an item breaks ``model``.
    """
    path = Path(path)
    if not path.is_file():
        raise PredictionsError(f"{path}: no such file")
    try:
        items = _parquet_items(path, list(model.model_fields)) if path.suffix == ".parquet" else _json_items(path)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise PredictionsError(f"{path}: not valid JSON ({exc})") from exc
    if len(items) > MAX_ITEMS:
        raise _too_many(path, len(items))
    out: dict[str, dict[str, Any]] = {}
    for i, raw in enumerate(items):
        if not isinstance(raw, dict) or not isinstance(raw.get("row_id"), str):
            raise PredictionsError(f"{path}: item {i} has no string row_id")
        if _depth(raw, MAX_DEPTH) > MAX_DEPTH:
            raise PredictionsError(f"{path}: item {i} is nested deeper than {MAX_DEPTH} levels")
        try:
            item = model.model_validate(raw)
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(p) for p in err["loc"]) or "item"
            raise PredictionsError(f"{path}: item {i} ({str(raw['row_id'])[:80]!r}): {where}: {err['msg']}") from exc
        out[item.row_id] = item.model_dump(mode="json", exclude_none=True)
    return out
