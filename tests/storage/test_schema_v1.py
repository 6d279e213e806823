"""Schema v2 gave recordings their terms of use and annotations their domain check.

v1 rows and corpora still read: terms unknown, no domain check."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from typer.testing import CliRunner

from emoforge.storage import schema
from emoforge.storage.records import SCHEMA_VERSION, RecordingRef, Segment, SegmentRow, Status, Terms
from emoforge.storage.shards import CorpusWriter, read_manifest, read_rows, rebuild_manifest, write_manifest
from emoforge.storage.summary import summarize
from tests.storage.test_shards import cfg

CC_BY = Terms(licence="CC-BY-4.0", consent="publish", attribution="A. Person", source_url="https://example.org/a")


def _row(i: int, terms: Terms | None = None) -> SegmentRow:
    seg = Segment(id=f"rec-{i}-00000", recording_id=f"rec-{i}", index=0, start_s=0.0, end_s=1.5, kind="speech")
    ref = RecordingRef(id=seg.recording_id, uri=f"m{i}.wav", sha256=f"{i:02d}", segment_count=1)
    if terms is not None:
        ref = ref.model_copy(update={"terms": terms})
    return SegmentRow(row_id=seg.id, run_id="run-v1", status=Status.ok, recording=ref, segment=seg, config_hash="h")


def _v1_schema() -> pa.Schema:
    """The v1 row layout: v2's without ``recording.terms`` and ``annotations[].domain``
    (checked against the v1 snapshot)."""
    recording = schema.ROW_SCHEMA.field("recording")
    v1_recording = recording.with_type(pa.struct([f for f in recording.type if f.name != "terms"]))
    annotations = schema.ROW_SCHEMA.field("annotations")
    item = annotations.type.value_field
    v1_item = item.with_type(pa.struct([f for f in item.type if f.name != "domain"]))
    v1_annotations = annotations.with_type(pa.list_(v1_item))
    replaced = {"recording": v1_recording, "annotations": v1_annotations}
    fields = [replaced.get(f.name, f) for f in schema.ROW_SCHEMA]
    return pa.schema(fields, metadata={"emoforge.schema_version": "1"})


def _v1_table(rows: list[SegmentRow]) -> pa.Table:
    data = schema.rows_to_table(rows).to_pylist()
    for d in data:
        d["schema_version"] = 1
        del d["recording"]["terms"]
        for a in d["annotations"] or []:
            del a["domain"]
    return pa.Table.from_pylist(data, schema=_v1_schema())


def test_v1_layout_is_the_committed_v1_snapshot() -> None:
    assert SCHEMA_VERSION == 2
    v1 = _v1_schema().to_string(show_field_metadata=False, show_schema_metadata=True) + "\n"
    assert v1 == (schema.SNAPSHOT_DIR / "v1.txt").read_text()


def test_a_v1_row_reads_with_unknown_terms() -> None:
    (data,) = _v1_table([_row(1)]).to_pylist()
    assert "terms" not in data["recording"]
    row = schema.row_from_dict(data)
    assert row.schema_version == 2
    assert row.recording.terms == Terms()
    assert row.recording.terms.consent == "unknown" and row.recording.terms.licence is None


def test_v2_terms_round_trip() -> None:
    (back,) = schema.table_to_rows(schema.rows_to_table([_row(2, CC_BY)]))
    assert back.recording.terms == CC_BY


def _v1_corpus(root: Path, rows: list[SegmentRow]) -> None:
    """A corpus as emoforge with schema v1 wrote it: a v1 shard, a v1 manifest."""
    root.mkdir()
    pq.write_table(_v1_table(rows), root / "shard-00000.parquet")
    manifest = rebuild_manifest(str(root), "written by the test")
    for key in ("rebuilt", "_unsaved_rebuild"):
        manifest.pop(key)
    manifest["schema_version"] = manifest["shards"][0]["schema_version"] = 1
    write_manifest(str(root), manifest)


def test_a_v1_corpus_reads_and_takes_v2_rows(tmp_path: Path) -> None:
    from emoforge.cli import app

    root = tmp_path / "corpus"
    _v1_corpus(root, [_row(1), _row(2)])
    assert [r.recording.terms for r in read_rows(str(root))] == [Terms(), Terms()]
    # A newer run appends v2 rows beside the v1 shard: both read, each with its own terms.
    writer = CorpusWriter(str(root), cfg(), "run-v2")
    writer.write([_row(3, CC_BY), _row(2, CC_BY)])  # rec-2 redone with terms: the newest row wins
    writer.close()
    assert read_manifest(str(root))["schema_version"] == 1  # the corpus's own record is left as written
    terms = {r.row_id: r.recording.terms for r in read_rows(str(root))}
    assert terms == {"rec-1-00000": Terms(), "rec-2-00000": CC_BY, "rec-3-00000": CC_BY}
    info = summarize(str(root))
    assert info["terms"] == [
        {"licence": "CC-BY-4.0", "consent": "publish", "recordings": 2, "rows": 2},
        {"licence": "(unknown)", "consent": "unknown", "recordings": 1, "rows": 1},
    ]
    res = CliRunner().invoke(app, ["inspect", str(root)])
    assert res.exit_code == 0, res.output
    assert "terms of use (licence, consent)" in res.output
    assert "CC-BY-4.0" in res.output and "(unknown)" in res.output
