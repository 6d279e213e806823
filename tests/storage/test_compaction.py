"""`emoforge compact`: small shards merged, superseded copies dropped, each row id once for any
Parquet reader, the manifest's history kept, and a SIGKILL at any step leaves a whole corpus."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from emoforge.storage.compaction import compact
from emoforge.storage.records import ErrorKind, Status
from emoforge.storage.shards import CorpusWriter, read_manifest, read_rows, verify
from tests.storage.test_faults import _physical_ids
from tests.storage.test_shards import cfg, make_row

REPO = Path(__file__).resolve().parents[2]
N = 40


def _fragmented(root: Path) -> dict[str, str]:
    """20 shards of 2 rows (run-a; every fifth row a timeout), then run-b redoes the 8
    timeouts in 4 more shards: 48 physical rows for 40 ids. Returns row id -> run of its newest copy."""
    w = CorpusWriter(str(root), cfg(max_rows_per_shard=2), "run-a")
    for i in range(N):
        failed = i % 5 == 0
        kind = ErrorKind.timeout if failed else None
        w.write([make_row(i, status=Status.failed if failed else Status.ok, kind=kind)])
    w.close()
    w = CorpusWriter(str(root), cfg(max_rows_per_shard=2), "run-b")
    for rid in sorted(r for r, d in w.done().rows.items() if not d.final):
        w.write([make_row(int(rid.split("-")[1]) * 10 + int(rid[-5:]), run="run-b")])
    w.close()
    return {r.row_id: r.run_id for r in read_rows(str(root))}


def _logical(root: Path) -> dict[str, str]:
    return {r.row_id: r.run_id for r in read_rows(str(root))}


def test_compaction_merges_small_shards_and_drops_superseded_copies(tmp_path: Path) -> None:
    root = tmp_path / "corpus"
    newest = _fragmented(root)
    assert len(newest) == N and sum(run == "run-b" for run in newest.values()) == 8
    glob = str(root / "shard-*.parquet")
    # Before: a plain Parquet reader sees the 8 stale failures beside their retries.
    assert duckdb.sql(f"select count(*), count(distinct row_id) from read_parquet('{glob}')").fetchall() == [(48, 40)]
    before = read_manifest(str(root))
    report = compact(str(root), cfg(), target_rows=16)
    assert (report.shards_before, report.shards_after) == (24, 3)
    assert (report.rows_read, report.rows_written, report.rows_dropped) == (48, 40, 8)
    assert _logical(root) == newest
    assert duckdb.sql(f"select count(*), count(distinct row_id) from read_parquet('{glob}')").fetchall() == [(40, 40)]
    failed = duckdb.sql(f"select count(*) from read_parquet('{glob}') where status = 'failed'").fetchall()
    assert failed == [(0,)]
    assert sorted(p.name for p in root.glob("shard-*.parquet")) == [
        "shard-00024.parquet",
        "shard-00025.parquet",
        "shard-00026.parquet",
    ]
    manifest = read_manifest(str(root))
    assert [s["rows"] for s in manifest["shards"]] == [16, 16, 8]
    (history,) = manifest["compactions"]
    assert [e["sha256"] for e in history["replaced"]] == [s["sha256"] for s in before["shards"]]
    assert history["rows_dropped"] == 8 and "compacting" not in manifest
    assert [r["run_id"] for r in manifest["runs"]] == ["run-a", "run-b"]  # compaction records no run
    assert verify(str(root)) == []
    # A second compaction finds nothing to do; a new writer never reuses a replaced number.
    assert compact(str(root), cfg(), target_rows=16).replaced == []
    w = CorpusWriter(str(root), cfg(), "run-c")
    w.write([make_row(N, run="run-c")])
    w.close()
    assert read_manifest(str(root))["shards"][-1]["name"] == "shard-00027.parquet"


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    batches=st.lists(st.lists(st.integers(0, 15), min_size=1, max_size=6), min_size=1, max_size=6),
    target=st.integers(1, 8),
)
def test_compaction_keeps_the_newest_copy_of_every_row_once(
    tmp_path_factory: pytest.TempPathFactory, batches: list[list[int]], target: int
) -> None:
    """Any sequence of commits (a shard each, ids repeating across them), any target size:
    the same rows read back, and the folder holds each id once."""
    root = tmp_path_factory.mktemp("corpus")
    w = CorpusWriter(str(root), cfg(max_rows_per_shard=1000), "run-w")
    for k, batch in enumerate(batches):
        w.write([make_row(i, run=f"run-{k}") for i in batch])
        w.flush()
    w.close()
    newest = _logical(root)
    compact(str(root), cfg(), target_rows=target)
    assert _logical(root) == newest
    assert sorted(_physical_ids(root)) == sorted(newest)
    assert verify(str(root)) == []


def test_compaction_keeps_big_clean_shards(tmp_path: Path) -> None:
    root = tmp_path / "corpus"
    w = CorpusWriter(str(root), cfg(max_rows_per_shard=10), "run-a")
    w.write([make_row(i) for i in range(10)])
    w.write([make_row(i) for i in range(10, 12)])
    w.flush()
    w.write([make_row(i) for i in range(12, 14)])
    w.close()
    report = compact(str(root), cfg(), target_rows=10)
    assert report.replaced == ["shard-00001.parquet", "shard-00002.parquet"]
    assert [s["name"] for s in read_manifest(str(root))["shards"]] == ["shard-00000.parquet", "shard-00003.parquet"]
    assert len(_logical(root)) == 14 and verify(str(root)) == []


def test_emoforge_compact_command(tmp_path: Path) -> None:
    from emoforge.cli import app

    root = tmp_path / "corpus"
    newest = _fragmented(root)
    result = CliRunner().invoke(app, ["compact", str(root), "--target-rows", "100"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert (report["shards_before"], report["shards_after"], report["rows_dropped"]) == (24, 1, 8)
    assert _logical(root) == newest


# Compacts and SIGKILLs itself from its own log handler right after the chosen step (the
# journal, the k-th new shard, the manifest switch): a real kill -9 at an exact point, which
# a kill from outside cannot hit in a compaction that takes milliseconds.
KILLED_COMPACTION = textwrap.dedent(
    """
    import logging, os, signal, sys
    sys.path.insert(0, {repo!r})
    from tests.storage.test_shards import cfg
    from emoforge.storage.compaction import compact
    after, seen = sys.argv[2], []

    class KillAfter(logging.Handler):
        def emit(self, record):
            seen.append(record.getMessage())
            step = after.split()
            hit = (
                sum(": wrote shard" in m for m in seen) == int(step[1]) if step[0] == "wrote" else after in seen[-1]
            )
            if hit:
                os.kill(os.getpid(), signal.SIGKILL)

    log = logging.getLogger("emoforge.storage.compaction")
    log.setLevel(logging.INFO)
    log.addHandler(KillAfter())
    compact(sys.argv[1], cfg(), target_rows=8)
    """
)


@pytest.mark.parametrize("after", ["rewriting", "wrote 1", "wrote 3", "wrote 5", "switched"])
def test_sigkill_during_compaction_leaves_a_whole_corpus(tmp_path: Path, after: str) -> None:
    root = tmp_path / "corpus"
    newest = _fragmented(root)
    script = tmp_path / "compact.py"
    script.write_text(KILLED_COMPACTION.format(repo=str(REPO)))
    proc = subprocess.run(
        [sys.executable, str(script), str(root), after], capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    manifest = read_manifest(str(root))
    assert ("compacting" in manifest) == (after != "switched")
    # Readers see every row once, from the old shards or the new ones, even before recovery.
    assert _logical(root) == newest
    # The next writer recovers: rolls back or finishes the compaction, leaves no stray file.
    w = CorpusWriter(str(root), cfg(), "run-c")
    w.close()
    manifest = read_manifest(str(root))
    assert {p.name for p in root.iterdir() if p.name.startswith("shard-")} == {s["name"] for s in manifest["shards"]}
    assert len(manifest["shards"]) == (5 if after == "switched" else 24)
    assert _logical(root) == newest and verify(str(root)) == []
    compact(str(root), cfg(), target_rows=8)
    assert sorted(_physical_ids(root)) == sorted(newest) and verify(str(root)) == []
    assert _logical(root) == newest
