"""``Consensus.label_quality`` was added within schema v1: shards written before it still load
(the field reads as None), also next to newer shards, as ``read_table`` concatenates them."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from emoforge.storage import schema
from emoforge.storage.records import LabelQuality
from tests.release.factory import make_row


def _without_label_quality(table: pa.Table) -> pa.Table:
    """The table as emoforge wrote it before the field existed."""
    column = table.column("consensus").combine_chunks()
    keep = [i for i in range(column.type.num_fields) if column.type.field(i).name != "label_quality"]
    old = pa.StructArray.from_arrays(
        [column.field(i) for i in keep],
        fields=[column.type.field(i) for i in keep],
        mask=column.is_null(),
    )
    return table.set_column(table.schema.get_field_index("consensus"), "consensus", old)


def test_old_shard_without_the_field_loads(tmp_path: Path) -> None:
    old_row = make_row("old", 0, "sad")
    new_row = make_row("new", 0, "happy")
    assert new_row.consensus is not None
    quality = LabelQuality(score=0.42, method="crowdlab-v1", scope="corpus", fitted_rows=2)
    new_row = new_row.model_copy(update={"consensus": new_row.consensus.model_copy(update={"label_quality": quality})})
    old = _without_label_quality(schema.rows_to_table([old_row]))
    assert "label_quality" not in [f.name for f in old.schema.field("consensus").type]
    pq.write_table(old, tmp_path / "old.parquet")
    old = pq.read_table(tmp_path / "old.parquet")
    assert schema.table_to_rows(old) == [old_row]
    # Old and new shards side by side, in both orders (shards.read_table's concatenation).
    new = schema.rows_to_table([new_row])
    for tables in ([old, new], [new, old]):
        rows = {r.row_id: r for r in schema.table_to_rows(pa.concat_tables(tables, promote_options="default"))}
        assert rows["old-00000"].consensus is not None and rows["old-00000"].consensus.label_quality is None
        assert rows["new-00000"] == new_row
