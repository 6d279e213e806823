"""One writer per corpus: a second writer is refused (or waits), never interleaves shards."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import fsspec
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from emoforge.storage.lock import LOCK_NAME, CorpusLock, CorpusLocked, corpus_lock
from emoforge.storage.shards import CorpusWriter, read_manifest, read_table, update_manifest_stats, verify
from tests.s3_server import s3_server
from tests.storage.test_shards import cfg, make_row

REPO = Path(__file__).resolve().parents[2]

# A writer in its own process: opens the corpus (waiting for the lock if told to), signals
# it is open, waits for a go file, then commits rows [start, stop) one shard per 3 rows.
WRITER = textwrap.dedent(
    """
    import os, sys, time
    sys.path.insert(0, {repo!r})
    from tests.storage.test_shards import make_row, cfg
    from emoforge.storage.lock import CorpusLocked
    from emoforge.storage.shards import CorpusWriter
    root, run, start, stop, wait, go = sys.argv[1:7]
    try:
        w = CorpusWriter(root, cfg(max_rows_per_shard=3), run, lock_wait_s=None if wait == "wait" else 0.0)
    except CorpusLocked as exc:
        print("LOCKED", exc, flush=True)
        sys.exit(3)
    print("OPEN", flush=True)
    while not os.path.exists(go):
        time.sleep(0.01)
    for i in range(int(start), int(stop)):
        w.write([make_row(i, run=run)])
    w.close()
    print("DONE", flush=True)
    """
)


def _writer(tmp_path: Path, root: Path, run: str, rows: tuple[int, int], wait: bool) -> subprocess.Popen[str]:
    script = tmp_path / "writer.py"
    script.write_text(WRITER.format(repo=str(REPO)))
    args = [str(root), run, str(rows[0]), str(rows[1]), "wait" if wait else "nowait", str(tmp_path / "go")]
    return subprocess.Popen(
        [sys.executable, str(script), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def test_two_concurrent_writers_lose_nothing(tmp_path: Path) -> None:
    """Both open before either commits (the case that lost rows): the second waits for the
    first to close, then both runs' rows are in the corpus under distinct shard names."""
    root = tmp_path / "corpus"
    a = _writer(tmp_path, root, "run-a", (0, 10), wait=True)
    assert a.stdout is not None and a.stdout.readline().strip() == "OPEN"
    b = _writer(tmp_path, root, "run-b", (10, 25), wait=True)
    (tmp_path / "go").touch()
    for proc in (a, b):
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
    ids = read_table(str(root), columns=["row_id"]).column("row_id").to_pylist()
    assert sorted(ids) == sorted(make_row(i).row_id for i in range(25))
    physical = [rid for p in root.glob("shard-*.parquet") for rid in pq.read_table(p).column("row_id").to_pylist()]
    assert len(physical) == 25
    manifest = read_manifest(str(root))
    assert [r["status"] for r in manifest["runs"]] == ["finished", "finished"]
    assert len({s["name"] for s in manifest["shards"]}) == len(manifest["shards"]) == 4 + 5
    assert verify(str(root)) == []


def test_second_writer_refuses_naming_the_holder_and_leaves_the_live_run_alone(tmp_path: Path) -> None:
    root = tmp_path / "corpus"
    a = _writer(tmp_path, root, "run-a", (0, 6), wait=False)
    assert a.stdout is not None and a.stdout.readline().strip() == "OPEN"
    live_tmp = root / "shard-00000.parquet.tmp-424242-deadbeef"  # a live run's file in flight
    live_tmp.write_bytes(b"in flight")
    b = _writer(tmp_path, root, "run-b", (6, 9), wait=False)
    out, _ = b.communicate(timeout=60)
    assert b.returncode == 3
    assert out.startswith("LOCKED") and f"pid={a.pid}" in out and "--wait" in out
    assert live_tmp.exists(), "the refused writer's recovery deleted a live run's file"
    assert [r["status"] for r in read_manifest(str(root))["runs"]] == ["running"]
    live_tmp.unlink()
    (tmp_path / "go").touch()
    a.communicate(timeout=60)
    assert a.returncode == 0
    assert sorted(read_table(str(root), columns=["row_id"]).column("row_id").to_pylist()) == sorted(
        make_row(i).row_id for i in range(6)
    )


def test_a_sigkilled_holder_never_leaves_a_stale_lock(tmp_path: Path) -> None:
    root = tmp_path / "corpus"
    a = _writer(tmp_path, root, "run-a", (0, 3), wait=False)
    assert a.stdout is not None and a.stdout.readline().strip() == "OPEN"
    os.kill(a.pid, signal.SIGKILL)
    a.wait(timeout=30)
    assert json.loads((root / LOCK_NAME).read_text())["pid"] == a.pid  # the file stays; the lock does not
    w = CorpusWriter(str(root), cfg(), "run-b", lock_wait_s=0.0)
    w.write([make_row(0, run="run-b")])
    w.close()
    assert [r["status"] for r in read_manifest(str(root))["runs"]] == ["interrupted", "finished"]


def test_lock_is_exclusive_across_threads_and_reentrant_within_one(tmp_path: Path) -> None:
    root = str(tmp_path)
    with corpus_lock(root, "outer"):
        with corpus_lock(root, "inner"):  # the writer inside a command that holds the lock
            update_manifest_stats(root, "k", 1)
        refused: list[BaseException] = []

        def other() -> None:
            try:
                CorpusWriter(root, cfg(), "run-x")
            except CorpusLocked as exc:
                refused.append(exc)

        thread = threading.Thread(target=other)
        thread.start()
        thread.join(timeout=30)
        assert len(refused) == 1 and "command=outer" in str(refused[0])
    w = CorpusWriter(root, cfg(), "run-y")  # released by the outer block
    w.close()
    assert read_manifest(root)["stats"] == {"k": 1}


def test_wait_blocks_until_the_holder_releases(tmp_path: Path) -> None:
    holder = CorpusLock(str(tmp_path), "holder")
    holder.acquire()
    opened = threading.Event()

    def waiter() -> None:
        CorpusWriter(str(tmp_path), cfg(), "run-w", lock_wait_s=None).close()
        opened.set()

    thread = threading.Thread(target=waiter)
    thread.start()
    assert not opened.wait(0.5)  # still held: the waiter must not have opened
    holder.release()
    thread.join(timeout=30)
    assert opened.is_set()


@pytest.mark.parametrize(
    ("argv", "what"),
    [
        (["agreement", "{root}"], "agreement"),
        (["aggregate", "{root}"], "aggregate"),
        (["review", "import", "{root}", "{root}/export.json"], "review import"),
        (["annotate", "{root}/media.wav", "--out", "{root}"], "annotate"),
    ],
)
def test_every_writing_command_refuses_while_another_run_holds_the_corpus(
    tmp_path: Path, argv: list[str], what: str
) -> None:
    from emoforge.cli import app

    w = CorpusWriter(str(tmp_path), cfg(), "run-a")
    w.write([make_row(0)])
    w.close()
    (tmp_path / "export.json").write_text("[]")
    (tmp_path / "media.wav").write_bytes(b"RIFF")  # never read: the refusal comes first
    before = (tmp_path / "manifest.json").read_bytes()
    holder = CorpusLock(str(tmp_path), "annotate run-live")
    holder.acquire()
    try:
        result = CliRunner().invoke(app, [a.format(root=tmp_path) for a in argv])
    finally:
        holder.release()
    assert result.exit_code == 3, (what, result.output)
    said = " ".join(result.output.split())  # rich wraps long lines
    assert "being written by another emoforge run" in said and "command=annotate run-live" in said
    assert (tmp_path / "manifest.json").read_bytes() == before


def test_a_writer_closed_from_another_thread_releases_the_lock(tmp_path: Path) -> None:
    opened: list[CorpusWriter] = []
    thread = threading.Thread(target=lambda: opened.append(CorpusWriter(str(tmp_path), cfg(), "run-a")))
    thread.start()
    thread.join(timeout=30)
    opened[0].close()  # this thread never took the lock: the writer's own release must run
    CorpusWriter(str(tmp_path), cfg(), "run-b", lock_wait_s=0.0).close()
    assert [r["status"] for r in read_manifest(str(tmp_path))["runs"]] == ["finished", "finished"]


def test_object_store_lock_takes_over_only_stale_holders() -> None:
    """fsspec URLs have no flock: the lock file names its holder; a dead pid on this host, or
    another host's lock older than ``stale_after_s``, is stale and taken over."""
    root = "memory://lock-stale"
    fs = fsspec.filesystem("memory")
    path = f"/lock-stale/{LOCK_NAME}"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    old = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 7200))
    cases = [
        ({"pid": int(dead.stdout), "host": socket.gethostname(), "since": now}, True),
        ({"pid": os.getpid(), "host": socket.gethostname(), "since": old}, False),  # alive here: never stale
        ({"pid": 1, "host": "other-host", "since": now}, False),
        ({"pid": 1, "host": "other-host", "since": old}, True),
    ]
    for holder, stale in cases:
        fs.pipe(path, json.dumps(holder).encode())
        lock = CorpusLock(root, "taker", stale_after_s=3600)
        if stale:
            lock.acquire(0)
            assert lock.holder()["command"] == "taker"
            lock.release()
            assert not fs.exists(path)
        else:
            with pytest.raises(CorpusLocked, match=f"pid={holder['pid']}"):
                lock.acquire(0)
    fs.rm("/lock-stale", recursive=True)


@pytest.mark.slow
def test_an_s3_lock_is_seen_through_a_cached_listing_of_the_corpus() -> None:
    """s3fs caches a folder's listing per filesystem instance: a listing taken before another
    host's writer locked the corpus must not hide that lock (a real S3 server: moto's)."""
    import s3fs

    with s3_server():
        fs = s3fs.S3FileSystem()  # the instance the lock's URL resolves to
        fs.mkdir("emoforge-lock-cache")
        fs.pipe_file("emoforge-lock-cache/corpus/manifest.json", b"{}")
        assert fs.ls("emoforge-lock-cache/corpus") == ["emoforge-lock-cache/corpus/manifest.json"]  # cached
        other_host = s3fs.S3FileSystem(skip_instance_cache=True)
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        holder = {"pid": 1, "host": "other-host", "since": now, "token": "theirs"}
        other_host.pipe_file(f"emoforge-lock-cache/corpus/{LOCK_NAME}", json.dumps(holder).encode())
        with pytest.raises(CorpusLocked, match="host=other-host"):
            CorpusLock("s3://emoforge-lock-cache/corpus").acquire(0)
