"""Reads that cost what they return: readers check a shard by size and footer and read only
the columns asked for (page CRCs guard the pages read); the full sha256 is `emoforge verify`'s."""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow.parquet as pq
from typer.testing import CliRunner

from emoforge.storage.records import Features, KeyFrame, SegmentRow
from emoforge.storage.shards import CorpusWriter, done_rows, read_manifest, read_rows, read_table, verify
from tests.storage.test_shards import cfg, make_row

JPEG_COLUMN = "features.keyframes.list.element.jpeg"


def _with_jpeg(i: int, run: str = "run-a") -> SegmentRow:
    """A row carrying a 16 kB key frame (random bytes: incompressible, like a JPEG)."""
    row = make_row(i, run=run)
    frame = KeyFrame(t_s=float(i), score=1.0, reason="peak", jpeg=os.urandom(16_000))
    return row.model_copy(update={"features": Features(segment_id=row.row_id, keyframes=[frame])})


def _corpus(root: Path, n: int = 8) -> Path:
    w = CorpusWriter(str(root), cfg(max_rows_per_shard=4), "run-a")
    for i in range(n):
        w.write([_with_jpeg(i)])
    w.close()
    return root


def _flip_in_column(shard: Path, column: str) -> None:
    """Flip one byte in the middle of ``column``'s data in the shard's first row group."""
    meta = pq.read_metadata(shard).row_group(0)
    chunk = next(meta.column(i) for i in range(meta.num_columns) if meta.column(i).path_in_schema == column)
    start = chunk.dictionary_page_offset if chunk.has_dictionary_page else chunk.data_page_offset
    at = start + chunk.total_compressed_size // 2
    data = bytearray(shard.read_bytes())
    data[at] ^= 0xFF
    shard.write_bytes(bytes(data))


def test_a_flipped_byte_in_a_column_not_read_costs_nothing_and_the_full_check_finds_it(tmp_path: Path) -> None:
    root = _corpus(tmp_path / "corpus")
    _flip_in_column(root / "shard-00001.parquet", JPEG_COLUMN)
    ids = sorted(make_row(i).row_id for i in range(8))
    # Resume and projected reads never touch the key frames: all 8 rows, nothing hashed.
    assert sorted(done_rows(str(root)).rows) == ids
    assert sorted(read_table(str(root), columns=["status"]).column("status").to_pylist()) == ["ok"] * 8
    assert verify(str(root), full=False) == []
    # A reader of the damaged column meets the page CRC and skips the shard.
    assert sorted(r.row_id for r in read_rows(str(root))) == ids[:4]
    # The full check hashes every byte.
    assert verify(str(root)) == [
        "shard-00001.parquet: sha256 mismatch (4 rows; `emoforge verify --repair` quarantines it, "
        "then rerun annotate to redo them)"
    ]


def test_truncated_shard_fails_the_cheap_check_and_a_writer_quarantines_it(tmp_path: Path) -> None:
    root = _corpus(tmp_path / "corpus")
    shard = root / "shard-00000.parquet"
    size = shard.stat().st_size
    shard.write_bytes(shard.read_bytes()[: size - 100])
    assert verify(str(root), full=False) == [
        f"shard-00000.parquet: size mismatch ({size - 100} bytes, the manifest recorded {size}) "
        "(4 rows skipped; rerun annotate to quarantine it and redo them)"
    ]
    assert len(done_rows(str(root)).rows) == 4
    w = CorpusWriter(str(root), cfg(), "run-b")
    assert [q["name"] for q in w.manifest["quarantined"]] == ["shard-00000.parquet"]
    assert len(w.done().rows) == 4
    w.close(status="interrupted")


def test_a_rewritten_shard_of_the_same_size_fails_the_footer_check(tmp_path: Path) -> None:
    """Same size, different footer (another shard's rows): the recorded row count catches it."""
    root = tmp_path / "corpus"
    w = CorpusWriter(str(root), cfg(max_rows_per_shard=3), "run-a")
    for i in range(5):
        w.write([make_row(i)])
    w.close()
    first, second = root / "shard-00000.parquet", root / "shard-00001.parquet"
    data = second.read_bytes()
    size = first.stat().st_size
    first.write_bytes(data[:size] if len(data) >= size else data + b"\0" * (size - len(data)))
    problems = verify(str(root), full=False)
    assert len(problems) == 1 and problems[0].startswith("shard-00000.parquet: ")
    assert "unreadable" in problems[0] or "row count mismatch" in problems[0]


def test_emoforge_verify_hashes_repairs_and_the_rerun_redoes(tmp_path: Path) -> None:
    from emoforge.cli import app

    root = _corpus(tmp_path / "corpus")
    runner = CliRunner()
    result = runner.invoke(app, ["verify", str(root)])
    assert result.exit_code == 0 and "ok: every shard matches its sha256" in result.output, result.output
    _flip_in_column(root / "shard-00000.parquet", JPEG_COLUMN)
    result = runner.invoke(app, ["verify", str(root)])
    assert result.exit_code == 1 and result.output.startswith("shard-00000.parquet: sha256 mismatch"), result.output
    result = runner.invoke(app, ["verify", str(root), "--repair"])
    assert result.exit_code == 1, result.output  # the quarantined rows are not redone yet
    assert result.output.splitlines()[0] == "quarantined shard-00000.parquet"
    assert [r["run_id"] for r in read_manifest(str(root))["runs"]] == ["run-a"]  # repair records no run
    w = CorpusWriter(str(root), cfg(), "run-b")
    done = w.done().rows
    w.write([_with_jpeg(i, run="run-b") for i in range(8) if make_row(i).row_id not in done])
    w.close()
    result = runner.invoke(app, ["verify", str(root)])
    assert result.exit_code == 0, result.output
    assert sorted((r.row_id, r.run_id) for r in read_rows(str(root))) == sorted(
        (make_row(i).row_id, "run-b" if i < 4 else "run-a") for i in range(8)
    )


def test_nested_columns_read_only_their_fields(tmp_path: Path) -> None:
    root = _corpus(tmp_path / "corpus")
    table = read_table(str(root), columns=["recording.id", "recording.segment_count"])
    assert table.column_names == ["recording"]
    assert table.column("recording").type.names == ["id", "segment_count"]
    assert table.column("recording").to_pylist()[:2] == [{"id": "rec-0", "segment_count": 10}] * 2
