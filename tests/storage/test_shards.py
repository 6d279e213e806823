"""Shard writer/reader: rolling, atomic commit, recovery after a kill, last-write-wins."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from emoforge.configs.storage import StorageConfig
from emoforge.storage.records import ErrorKind, Failure, RecordingRef, Segment, SegmentRow, Status
from emoforge.storage.shards import CorpusWriter, done_rows, read_manifest, read_rows, read_table, verify

REPO = Path(__file__).resolve().parents[2]


def make_row(i: int, run: str = "run-a", status: Status = Status.ok, kind: ErrorKind | None = None) -> SegmentRow:
    seg = Segment(
        id=f"rec-{i // 10}-{i % 10:05d}",
        recording_id=f"rec-{i // 10}",
        index=i % 10,
        start_s=i,
        end_s=i + 1.5,
        kind="speech",
    )
    failure = Failure(stage="annotate", kind=kind, message="x") if kind else None
    return SegmentRow(
        row_id=seg.id,
        run_id=run,
        status=status,
        failure=failure,
        recording=RecordingRef(id=seg.recording_id, uri="m.wav", sha256="00", segment_count=10),
        segment=seg,
        config_hash="h",
    )


def cfg(**kw: object) -> StorageConfig:
    return StorageConfig(**{"max_rows_per_shard": 4, "flush_interval_s": 3600, **kw})


def test_rows_roll_into_shards_with_manifest(tmp_path: Path) -> None:
    w = CorpusWriter(str(tmp_path), cfg(), "run-a", {"name": "t"}, "h")
    w.write(make_row(i) for i in range(10))
    w.close(counts={"rows": 10})
    m = read_manifest(str(tmp_path))
    assert [s["rows"] for s in m["shards"]] == [10]  # one write() call flushes once
    assert m["runs"][-1]["status"] == "finished" and m["runs"][-1]["config"] == {"name": "t"}
    assert sorted(r.row_id for r in read_rows(str(tmp_path))) == sorted(make_row(i).row_id for i in range(10))
    assert verify(str(tmp_path)) == []


def test_incremental_writes_roll_by_row_count(tmp_path: Path) -> None:
    w = CorpusWriter(str(tmp_path), cfg(), "run-a")
    for i in range(9):
        w.write([make_row(i)])
    w.close()
    assert [s["rows"] for s in read_manifest(str(tmp_path))["shards"]] == [4, 4, 1]
    assert sorted(p.name for p in tmp_path.glob("shard-*.parquet")) == [
        "shard-00000.parquet",
        "shard-00001.parquet",
        "shard-00002.parquet",
    ]


def test_last_write_wins_and_transient_failures_are_redone(tmp_path: Path) -> None:
    w = CorpusWriter(str(tmp_path), cfg(), "run-a")
    w.write(
        [
            make_row(0, status=Status.failed, kind=ErrorKind.timeout),
            make_row(1, status=Status.failed, kind=ErrorKind.corrupt_media),
            make_row(2),
        ]
    )
    w.close()
    state = done_rows(str(tmp_path))
    assert not state.rows[make_row(0).row_id].final  # timeout: resume retries it
    assert state.rows[make_row(1).row_id].final  # corrupt media: deterministic
    assert state.segment_counts == {"rec-0": 10}
    w = CorpusWriter(str(tmp_path), cfg(), "run-b")
    w.write([make_row(0, run="run-b")])
    w.close()
    table = read_table(str(tmp_path))
    assert table.num_rows == 3
    by_id = {r.row_id: r for r in read_rows(str(tmp_path))}
    assert by_id[make_row(0).row_id].run_id == "run-b" and by_id[make_row(0).row_id].status == Status.ok


def test_recovery_removes_temp_files_and_adopts_unlisted_shards(tmp_path: Path) -> None:
    w = CorpusWriter(str(tmp_path), cfg(), "run-a")
    w.write([make_row(i) for i in range(3)])
    w.flush()
    manifest_before = (tmp_path / "manifest.json").read_text()
    w.write([make_row(i) for i in range(3, 6)])
    w.flush()
    # Simulate a kill after the shard rename but before the manifest update,
    # plus a half-written temp shard from a later flush.
    (tmp_path / "manifest.json").write_text(manifest_before)
    (tmp_path / "shard-00002.parquet.tmp-999").write_bytes(b"partial")
    w2 = CorpusWriter(str(tmp_path), cfg(), "run-b")
    assert not list(tmp_path.glob("*.tmp-*"))
    assert [s["name"] for s in w2.manifest["shards"]] == ["shard-00000.parquet", "shard-00001.parquet"]
    assert w2.manifest["runs"][0]["status"] == "interrupted"
    assert len(done_rows(str(tmp_path)).rows) == 6
    w2.close()


def test_read_table_projects_columns_and_empty_corpus(tmp_path: Path) -> None:
    assert read_table(str(tmp_path), columns=["status"]).num_rows == 0
    w = CorpusWriter(str(tmp_path), cfg(), "run-a")
    w.write([make_row(0)])
    w.close()
    t = read_table(str(tmp_path), columns=["status"])
    assert t.column_names == ["status"]
    assert pq.read_table(tmp_path / "shard-00000.parquet").schema.metadata[b"emoforge.run_id"] == b"run-a"


WRITER_SCRIPT = textwrap.dedent(
    """
    import sys, time
    sys.path.insert(0, {repo!r})
    from tests.storage.test_shards import make_row, cfg
    from emoforge.storage.shards import CorpusWriter
    root, start = sys.argv[1], int(sys.argv[2])
    w = CorpusWriter(root, cfg(max_rows_per_shard=3), "run-kill")
    done = w.done().rows
    for i in range(start, 60):
        if make_row(i).row_id in done:
            continue
        w.write([make_row(i, run="run-kill")])
        print(i, flush=True)
        time.sleep(0.01)
    w.close()
    """
)


@pytest.mark.parametrize("kill_after", [4, 17, 31])
def test_sigkill_mid_write_then_resume_loses_and_duplicates_nothing(tmp_path: Path, kill_after: int) -> None:
    script = tmp_path / "writer.py"
    script.write_text(WRITER_SCRIPT.format(repo=str(REPO)))
    root = tmp_path / "corpus"
    proc = subprocess.Popen([sys.executable, str(script), str(root), "0"], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    for line in proc.stdout:
        if int(line) >= kill_after:
            os.kill(proc.pid, signal.SIGKILL)
            break
    proc.wait()
    before = done_rows(str(root)).rows
    assert 0 < len(before) < 60
    subprocess.run([sys.executable, str(script), str(root), "0"], check=True, capture_output=True, timeout=120)
    ids = read_table(str(root), columns=["row_id"]).column("row_id").to_pylist()
    assert sorted(ids) == sorted(make_row(i).row_id for i in range(60))
    # Physical rows: every committed row id appears exactly once across shards.
    physical = [
        rid for p in sorted(root.glob("shard-*.parquet")) for rid in pq.read_table(p).column("row_id").to_pylist()
    ]
    assert sorted(physical) == sorted(ids)
    assert verify(str(root)) == []
    runs = json.loads((root / "manifest.json").read_text())["runs"]
    assert [r["status"] for r in runs] == ["interrupted", "finished"]
