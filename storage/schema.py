"""The explicit Arrow schema of shard rows, derived from the typed records.

The Arrow types come from the records' declared field types through one fixed mapping
(never from data, so a column cannot drift with whatever values a batch happens to
hold). ``storage/schemas/v{N}.txt`` pins the schema of each version and SCHEMA.md
documents it field by field; ``python -m emoforge.storage.schema --write`` regenerates
both, and a test fails when code and snapshot disagree without a version bump.

String-keyed mappings (AU intensities, label distributions) are stored as
``list<struct<key, value>>`` rather than Arrow ``map``, because Hugging Face ``datasets``
cannot load map columns.

Old rows are upgraded on read: ``UPGRADES[n]`` turns a version-n row dict into n+1.
"""

from __future__ import annotations

import argparse
import datetime as dt
import enum
import functools
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, Union, cast, get_args, get_origin

import pyarrow as pa
from pydantic import BaseModel

from emoforge.storage.records import SCHEMA_VERSION, SegmentRow, Terms

HERE = Path(__file__).resolve().parent
SNAPSHOT_DIR = HERE / "schemas"
SCHEMA_DOC = HERE / "SCHEMA.md"

UPGRADES: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {}
"""Row upgraders keyed by the version they upgrade from."""

_SCALARS: dict[Any, pa.DataType] = {
    str: pa.string(),
    int: pa.int64(),
    float: pa.float64(),
    bool: pa.bool_(),
    bytes: pa.binary(),
    dt.datetime: pa.timestamp("us", tz="UTC"),
}


def _strip_optional(tp: Any) -> tuple[Any, bool]:
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        if len(args) != 1:
            raise TypeError(f"unsupported union {tp!r}: only X | None is allowed in records")
        return args[0], True
    return tp, False


def arrow_type(tp: Any) -> pa.DataType:
    """Arrow type for a record field annotation."""
    tp, _ = _strip_optional(tp)
    origin = get_origin(tp)
    if tp in _SCALARS:
        return _SCALARS[tp]
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return pa.string()
    if origin is Literal:
        return pa.string()
    if origin is list:
        (item,) = get_args(tp)
        return pa.list_(arrow_type(item))
    if origin is dict:
        key, value = get_args(tp)
        if key is not str:
            raise TypeError(f"only str-keyed dicts are supported, got {tp!r}")
        return pa.list_(pa.struct([pa.field("key", pa.string()), pa.field("value", arrow_type(value))]))
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return pa.struct(model_fields(tp))
    raise TypeError(f"no Arrow mapping for {tp!r}")


def model_fields(model: type[BaseModel]) -> list[pa.Field]:
    fields = []
    for name, info in model.model_fields.items():
        _, optional = _strip_optional(info.annotation)
        meta = {"description": info.description or "", "required": str(info.is_required() and not optional)}
        # Everything is nullable in Arrow: required-ness is enforced by the records, and
        # a non-nullable child of a null struct is rejected by some Arrow readers.
        fields.append(pa.field(name, arrow_type(info.annotation), nullable=True, metadata=meta))
    return fields


def row_schema() -> pa.Schema:
    return pa.schema(model_fields(SegmentRow), metadata={"emoforge.schema_version": str(SCHEMA_VERSION)})


ROW_SCHEMA = row_schema()


# ----------------------------------------------------------------------- encode/decode


def _encode(value: Any, tp: Any) -> Any:
    if value is None:
        return None
    tp, _ = _strip_optional(tp)
    origin = get_origin(tp)
    if origin is list:
        (item,) = get_args(tp)
        return [_encode(v, item) for v in value]
    if origin is dict:
        _, vt = get_args(tp)
        return [{"key": k, "value": _encode(v, vt)} for k, v in value.items()]
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return {name: _encode(getattr(value, name), info.annotation) for name, info in tp.model_fields.items()}
    if isinstance(value, enum.Enum):
        return value.value
    return value


def _decode(value: Any, tp: Any) -> Any:
    return _decoder(tp)(value)


@functools.cache
def _decoder(tp: Any) -> Callable[[Any], Any]:
    """The function decoding an Arrow value of annotation ``tp``, built once per annotation:
    a million rows otherwise pay the type introspection on every value (``emoforge export``
    spent nine tenths of its time there)."""
    tp, _ = _strip_optional(tp)
    origin = get_origin(tp)
    if origin is list:
        (item,) = get_args(tp)
        each = _decoder(item)
        if each is _identity:
            return lambda value: None if value is None else list(value)
        return lambda value: None if value is None else [each(v) for v in value]
    if origin is dict:
        _, vt = get_args(tp)
        val = _decoder(vt)
        return lambda value: None if value is None else {kv["key"]: val(kv["value"]) for kv in value}
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        # Built lazily: a model may refer to itself through its fields' annotations.
        names = frozenset(tp.model_fields)
        nested: list[tuple[str, Callable[[Any], Any]]] = []
        built = False

        def model(value: Any) -> Any:
            nonlocal built
            if value is None:
                return None
            if not built:
                decoders = ((name, _decoder(cast(Any, info.annotation))) for name, info in tp.model_fields.items())
                nested.extend((name, dec) for name, dec in decoders if dec is not _identity)
                built = True
            # Copied whole when every key is a field (fields the model no longer has are
            # dropped otherwise); only the fields that hold more than scalars are walked.
            out = dict(value) if value.keys() <= names else {k: v for k, v in value.items() if k in names}
            for name, dec in nested:
                if name in out:
                    out[name] = dec(out[name])
            return out

        return model
    return _identity


def _identity(value: Any) -> Any:
    return value


def _v1_to_v2(data: dict[str, Any]) -> dict[str, Any]:
    """v2 gave recordings their terms of use; nobody recorded them for v1 rows: unknown."""
    recording = data.get("recording")
    if recording is not None and recording.get("terms") is None:
        data = {**data, "recording": {**recording, "terms": _encode(Terms(), Terms)}}
    return {**data, "schema_version": 2}


UPGRADES[1] = _v1_to_v2


def rows_to_table(rows: list[SegmentRow]) -> pa.Table:
    """Encode rows with the fixed schema (raises if a value does not fit its column)."""
    encoded = [_encode(r, SegmentRow) for r in rows]
    return pa.Table.from_pylist(encoded, schema=ROW_SCHEMA)


def row_from_dict(data: dict[str, Any]) -> SegmentRow:
    """Decode one Arrow row dict (any supported version) into a SegmentRow."""
    version = int(data.get("schema_version") or SCHEMA_VERSION)
    if version > SCHEMA_VERSION:
        raise ValueError(
            f"row {data.get('row_id')} has schema_version {version}; this emoforge reads <= {SCHEMA_VERSION}"
        )
    while version < SCHEMA_VERSION:
        data = UPGRADES[version](data)
        version += 1
    decoded = _decode(data, SegmentRow)
    decoded["schema_version"] = SCHEMA_VERSION
    return SegmentRow.model_validate(decoded)


def table_to_rows(table: pa.Table) -> list[SegmentRow]:
    return [row_from_dict(d) for d in table.to_pylist()]


# ----------------------------------------------------------------------- docs / snapshot


def snapshot_text() -> str:
    return ROW_SCHEMA.to_string(show_field_metadata=False, show_schema_metadata=True) + "\n"


def _doc_lines(fields: list[pa.Field], prefix: str = "") -> list[str]:
    lines = []
    for f in fields:
        meta = {k.decode(): v.decode() for k, v in (f.metadata or {}).items()}
        typ = f.type
        lines.append(
            f"| `{prefix}{f.name}` | `{_short(typ)}` | {'yes' if meta.get('required') == 'True' else ''} "
            f"| {meta.get('description', '')} |"
        )
        inner = typ
        while pa.types.is_list(inner):
            inner = inner.value_type
        if pa.types.is_struct(inner) and not _is_kv(inner):
            lines.extend(_doc_lines([inner.field(i) for i in range(inner.num_fields)], f"{prefix}{f.name}."))
    return lines


def _is_kv(t: pa.DataType) -> bool:
    return pa.types.is_struct(t) and [t.field(i).name for i in range(t.num_fields)] == ["key", "value"]


def _short(t: pa.DataType) -> str:
    if pa.types.is_list(t):
        if _is_kv(t.value_type):
            return f"map<string, {_short(t.value_type.field(1).type)}>"
        return f"list<{_short(t.value_type)}>"
    if pa.types.is_struct(t):
        return "struct"
    return str(t)


def schema_doc() -> str:
    head = f"""# Shard row schema (version {SCHEMA_VERSION})

Generated from `storage/records/` by `python -m emoforge.storage.schema --write`; do not
edit by hand. One row per segment (`row_id` = segment id), or one row per recording that
failed before segmentation (`row_id` = `{{recording_id}}-recording`). Failed rows carry
`status = failed` and a typed `failure`; label fields are never used for errors.
`map<string, T>` columns are stored as `list<struct<key: string, value: T>>` so that
pandas, duckdb and Hugging Face `datasets` all read them. Every field is nullable in
Arrow; "required" means the record validation guarantees a value.

| field | type | required | description |
| --- | --- | --- | --- |
"""
    return head + "\n".join(_doc_lines(list(ROW_SCHEMA))) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Regenerate the schema snapshot and SCHEMA.md")
    parser.add_argument("--write", action="store_true", help="write storage/schemas/vN.txt and SCHEMA.md")
    args = parser.parse_args(argv)
    if args.write:
        SNAPSHOT_DIR.mkdir(exist_ok=True)
        (SNAPSHOT_DIR / f"v{SCHEMA_VERSION}.txt").write_text(snapshot_text())
        SCHEMA_DOC.write_text(schema_doc())
    else:
        print(snapshot_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
