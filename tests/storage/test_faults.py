"""Fault injection on the shard store: damaged shards and manifests, a full disk, and
SIGKILL at random points. Each scenario ends with a corpus that lost and duplicated nothing.

``EMOFORGE_KILL_ROUNDS`` sets how many random kills the kill test makes (CI: a few; a
benchmark-style run: many).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from emoforge.storage.shards import (
    CorpusWriter,
    done_rows,
    read_manifest,
    read_rows,
    repair,
    update_manifest_stats,
    verify,
)
from tests.storage.test_shards import cfg, make_row

REPO = Path(__file__).resolve().parents[2]
N_ROWS = 12
KILL_ROUNDS = int(os.environ.get("EMOFORGE_KILL_ROUNDS", "3"))


def _all_ids(n: int = N_ROWS) -> list[str]:
    return sorted(make_row(i).row_id for i in range(n))


def _physical_ids(root: Path) -> list[str]:
    return [rid for p in sorted(root.glob("shard-*.parquet")) for rid in pq.read_table(p).column("row_id").to_pylist()]


def _corpus(root: Path) -> Path:
    """Three shards of 4 rows (rows 0-3, 4-7, 8-11)."""
    w = CorpusWriter(str(root), cfg(), "run-a")
    for i in range(N_ROWS):
        w.write([make_row(i)])
    w.close()
    assert [s["rows"] for s in read_manifest(str(root))["shards"]] == [4, 4, 4]
    return root


def _resume(root: Path, run: str = "run-b", n: int = N_ROWS) -> CorpusWriter:
    """What a rerun does: open, skip what is committed and final, redo the rest."""
    w = CorpusWriter(str(root), cfg(), run)
    done = w.done().rows
    w.write([make_row(i, run=run) for i in range(n) if make_row(i).row_id not in done])
    w.close()
    return w


def _assert_whole(root: Path, n: int = N_ROWS) -> None:
    """Every row once, each equal to what an uninterrupted run writes (but for its run id and write time)."""
    got = {r.row_id: r.model_dump(exclude={"run_id", "written_at"}) for r in read_rows(str(root))}
    assert got == {make_row(i).row_id: make_row(i).model_dump(exclude={"run_id", "written_at"}) for i in range(n)}
    physical = _physical_ids(root)
    assert len(physical) == len(set(physical)), "a row is committed twice"
    assert verify(str(root)) == []


@pytest.mark.parametrize("damage", ["flip", "truncate"])
def test_corrupt_shard_is_skipped_reported_quarantined_and_redone(tmp_path: Path, damage: str) -> None:
    root = _corpus(tmp_path / "corpus")
    bad = root / "shard-00001.parquet"
    data = bytearray(bad.read_bytes())
    if damage == "flip":
        data[len(data) // 2] ^= 0xFF
    else:
        data = data[: len(data) // 2]
    bad.write_bytes(bytes(data))
    # Readers: no crash, the shard's 4 rows read as missing, and verify names the shard.
    assert sorted(r.row_id for r in read_rows(str(root))) == _all_ids()[:4] + _all_ids()[8:]
    assert verify(str(root)) == [
        "shard-00001.parquet: sha256 mismatch (4 rows; `emoforge verify --repair` quarantines it, "
        "then rerun annotate to redo them)"
    ]
    # Moved aside (a flipped byte by the full check of `verify --repair`, a truncation by the
    # size check of any writer's open); its rows count as not done, so the rerun redoes them.
    if damage == "flip":
        assert repair(str(root)) == ["shard-00001.parquet"]
    w = CorpusWriter(str(root), cfg(), "run-b")
    assert len(w.done().rows) == 8
    assert not bad.exists() and len(list((root / "quarantine").glob("shard-00001.parquet.*"))) == 1
    reason = "sha256 mismatch" if damage == "flip" else "size mismatch"
    assert f"quarantined ({reason}" in verify(str(root))[0]
    w.close(status="interrupted")
    w = _resume(root)
    assert [s["name"] for s in w.manifest["shards"]] == [
        "shard-00000.parquet",
        "shard-00002.parquet",
        "shard-00003.parquet",
    ]  # never reuses 00001
    assert {r.run_id for r in read_rows(str(root)) if r.row_id in _all_ids()[4:8]} == {"run-b"}
    _assert_whole(root)
    assert read_manifest(str(root))["quarantined"][0]["redone_by"] == "run-b"


@pytest.mark.parametrize("damage", [b'{"format": "emoforge-cor', b"", b"\xff\xfe not json", b"[1, 2]"])
def test_corrupt_manifest_is_rebuilt_from_the_shards(tmp_path: Path, damage: bytes) -> None:
    root = _corpus(tmp_path / "corpus")
    (root / "manifest.json").write_bytes(damage)
    assert sorted(r.row_id for r in read_rows(str(root))) == _all_ids()
    assert "rebuilt from 3 shards" in verify(str(root))[0]
    w = _resume(root)
    assert w.manifest["rebuilt"]["shards"] == 3
    assert [p.read_bytes() for p in root.glob("manifest.json.corrupt-*")] == [damage]
    assert [r["run_id"] for r in read_manifest(str(root))["runs"]] == ["run-b"]
    assert {r.run_id for r in read_rows(str(root))} == {"run-a"}  # nothing needed redoing
    _assert_whole(root)


def test_stats_update_on_a_corrupt_manifest_saves_the_rebuilt_one(tmp_path: Path) -> None:
    root = _corpus(tmp_path / "corpus")
    (root / "manifest.json").write_bytes(b"{")
    update_manifest_stats(str(root), "agreement", {"alpha": 0.5})
    assert [p.read_bytes() for p in root.glob("manifest.json.corrupt-*")] == [b"{"]
    assert read_manifest(str(root))["stats"] == {"agreement": {"alpha": 0.5}}
    assert verify(str(root)) == [] and sorted(r.row_id for r in read_rows(str(root))) == _all_ids()


def test_missing_shard_is_reported_then_redone(tmp_path: Path) -> None:
    root = _corpus(tmp_path / "corpus")
    (root / "shard-00002.parquet").unlink()
    assert verify(str(root)) == ["shard-00002.parquet: missing (4 rows; rerun annotate to redo them)"]
    assert len(done_rows(str(root)).rows) == 8
    w = CorpusWriter(str(root), cfg(), "run-b")
    assert verify(str(root)) == ["shard-00002.parquet: quarantined (missing; moved to None); 4 rows not redone yet"]
    w.close(status="interrupted")
    _resume(root, "run-c")
    _assert_whole(root)


def test_inspect_and_export_survive_a_damaged_corpus(tmp_path: Path) -> None:
    from emoforge.cli import app

    root = _corpus(tmp_path / "corpus")
    (root / "shard-00000.parquet").write_bytes(b"PAR1 not really")
    (root / "shard-00002.parquet").unlink()
    runner = CliRunner()
    result = runner.invoke(app, ["inspect", str(root), "--json"])
    assert result.exit_code == 0, result.output
    info = json.loads(result.output)
    assert info["rows"] == 4
    assert [p.split(":")[0] for p in info["problems"]] == ["shard-00000.parquet", "shard-00002.parquet"]
    result = runner.invoke(app, ["export", str(root), "--out", str(tmp_path / "release"), "--all"])
    assert result.exit_code == 0, result.output
    assert "shard-00000.parquet: sha256 mismatch" in result.output


# A writer limited to FILE_LIMIT bytes per file (RLIMIT_FSIZE; SIGXFSZ ignored so the write
# fails with EFBIG, as a full disk fails with ENOSPC): the first shard fits, the big one not.
DISK_FULL = textwrap.dedent(
    """
    import resource, signal, sys
    sys.path.insert(0, {repo!r})
    from tests.storage.test_shards import make_row, cfg
    from emoforge.storage.shards import CorpusWriter
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit}))
    w = CorpusWriter(sys.argv[1], cfg(max_rows_per_shard=1000, compression="none"), "run-full")
    try:
        w.write([make_row(0, run="run-full")])
        w.flush()
        print("FIRST", flush=True)
        w.write([make_row(i, run="run-full") for i in range(1, {n})])
        w.flush()
    except BaseException:
        w.close(status="interrupted")
        raise
    """
)


def _shard_size(root: Path, n: int) -> int:
    w = CorpusWriter(str(root), cfg(max_rows_per_shard=100_000, compression="none"), "probe")
    w.write([make_row(i) for i in range(n)])
    w.close()
    return (root / "shard-00000.parquet").stat().st_size


def test_disk_full_mid_write_leaves_no_partial_file_and_the_rerun_completes(tmp_path: Path) -> None:
    root = tmp_path / "corpus"
    n = 2000
    small, big = _shard_size(tmp_path / "probe1", 1), _shard_size(tmp_path / "probe2", n)
    limit = (small + big) // 2  # the 1-row shard fits, the big one fails part-way through
    script = tmp_path / "full.py"
    script.write_text(DISK_FULL.format(repo=str(REPO), limit=limit, n=n))
    proc = subprocess.run(
        [sys.executable, str(script), str(root)], capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 1 and proc.stdout == "FIRST\n", proc.stderr
    assert "CorpusWriteError: [Errno 27] could not commit 1999 rows" in proc.stderr and "File too large" in proc.stderr
    assert sorted(p.name for p in root.iterdir()) == [".emoforge.lock", "manifest.json", "shard-00000.parquet"]
    assert read_manifest(str(root))["runs"][0]["status"] == "running"  # its close could not commit either
    assert len(done_rows(str(root)).rows) == 1
    assert verify(str(root)) == []
    _resume(root, n=n)
    _assert_whole(root, n=n)
    assert [r["status"] for r in read_manifest(str(root))["runs"]] == ["interrupted", "finished"]


# Commits one row at a time (2 rows a shard), so a kill lands anywhere: mid-shard, between
# the shard rename and the manifest update, or inside the manifest write.
KILLED_WRITER = textwrap.dedent(
    """
    import sys, time
    sys.path.insert(0, {repo!r})
    from tests.storage.test_shards import make_row, cfg
    from emoforge.storage.shards import CorpusWriter
    root, run, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    w = CorpusWriter(root, cfg(max_rows_per_shard=2), run)
    done = w.done().rows
    print("OPEN", flush=True)
    for i in range(n):
        if make_row(i).row_id not in done:
            w.write([make_row(i, run=run)])
            time.sleep(0.01)
    w.close()
    """
)


def test_sigkill_at_random_points_then_resume(tmp_path: Path) -> None:
    """``KILL_ROUNDS`` runs each SIGKILLed a random moment after opening; then one clean run.

    Run k has rows [0, 20 (k + 1)) to write (20 new ones plus what earlier kills left), so
    every round has work in flight when the kill comes. Whatever the kills hit, the resumed
    corpus holds every row exactly once (logically and physically), verifies clean, has no
    temporary file left and every killed run is marked interrupted.
    """
    rng = random.Random(int(os.environ.get("EMOFORGE_KILL_SEED", "20261128")))
    root = tmp_path / "corpus"
    script = tmp_path / "killed.py"
    script.write_text(KILLED_WRITER.format(repo=str(REPO)))
    killed = 0
    for k in range(KILL_ROUNDS):
        proc = subprocess.Popen(
            [sys.executable, str(script), str(root), f"run-kill{k}", str(20 * (k + 1))],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert proc.stdout is not None and proc.stdout.readline() == "OPEN\n"
        try:
            proc.wait(timeout=rng.uniform(0.0, 0.4))
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            killed += 1
        proc.wait(timeout=30)
        proc.stdout.close()
    n = 20 * (KILL_ROUNDS + 1)
    subprocess.run(
        [sys.executable, str(script), str(root), "run-final", str(n)], check=True, capture_output=True, timeout=120
    )
    _assert_whole(root, n)
    assert len(_physical_ids(root)) == n
    assert not list(root.glob("*.tmp-*"))
    statuses = [r["status"] for r in read_manifest(str(root))["runs"]]
    assert statuses[-1] == "finished" and set(statuses) <= {"interrupted", "finished"}
    # A kill can land after a run's close (during interpreter exit): then it finished.
    assert killed > 0 and statuses.count("interrupted") > 0
