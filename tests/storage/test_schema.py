"""The explicit Arrow schema: pinned snapshot, docs in sync, lossless round trips."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings

from emoforge.storage import schema
from emoforge.storage.records import SCHEMA_VERSION, SegmentRow
from tests.storage.strategies import rows


def test_schema_matches_committed_snapshot() -> None:
    snap = schema.SNAPSHOT_DIR / f"v{SCHEMA_VERSION}.txt"
    assert snap.read_text() == schema.snapshot_text(), (
        "records changed without regenerating the schema: bump SCHEMA_VERSION if the row layout "
        "changed, add an upgrade, then run `python -m emoforge.storage.schema --write`"
    )


def test_schema_doc_in_sync() -> None:
    assert schema.SCHEMA_DOC.read_text() == schema.schema_doc()


def test_every_record_field_is_documented() -> None:
    lines = schema.schema_doc().splitlines()
    undocumented = [line for line in lines if line.startswith("| `") and line.endswith("|  |")]
    assert not undocumented, undocumented


def test_maps_are_stored_as_key_value_lists() -> None:
    dist = schema.ROW_SCHEMA.field("consensus").type.field("distribution").type
    assert pa.types.is_list(dist)
    assert [dist.value_type.field(i).name for i in range(2)] == ["key", "value"]


@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(row=rows())
def test_row_round_trip_through_parquet(row: SegmentRow, tmp_path_factory: pytest.TempPathFactory) -> None:
    table = schema.rows_to_table([row])
    assert table.schema.equals(schema.ROW_SCHEMA, check_metadata=False)
    path = tmp_path_factory.mktemp("rt") / "x.parquet"
    pq.write_table(table, path)
    back = schema.table_to_rows(pq.read_table(path))
    assert back == [row]


def test_newer_schema_version_is_refused() -> None:
    with pytest.raises(ValueError, match="schema_version"):
        schema.row_from_dict({"schema_version": SCHEMA_VERSION + 1, "row_id": "x"})


def test_old_version_rows_are_upgraded(monkeypatch: pytest.MonkeyPatch) -> None:
    """An upgrader registered for v(N-1) runs on read; the row comes back at vN."""
    row = SegmentRow.model_validate_json(
        '{"row_id":"r-1-recording","run_id":"run","status":"failed",'
        '"failure":{"stage":"probe","kind":"corrupt_media","message":"bad"},'
        '"recording":{"id":"r-1","uri":"x","sha256":"00"},"config_hash":"h"}'
    )
    data = schema.rows_to_table([row]).to_pylist()[0]
    data["schema_version"] = SCHEMA_VERSION - 1
    data["legacy_field"] = "dropped by the upgrade"

    def upgrade(d: dict) -> dict:
        d = dict(d)
        d.pop("legacy_field")
        d["schema_version"] = SCHEMA_VERSION
        return d

    monkeypatch.setitem(schema.UPGRADES, SCHEMA_VERSION - 1, upgrade)
    assert schema.row_from_dict(data) == row


@settings(max_examples=30, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(row=rows())
def test_row_round_trip_through_json(row: SegmentRow) -> None:
    """JSON (caches, exports) must carry binary key frames too."""
    assert SegmentRow.model_validate_json(row.model_dump_json()) == row
