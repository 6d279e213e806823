"""SIGKILL a whole `emoforge annotate` run at random points; the resumed run loses and
duplicates nothing and ends with the rows of an uninterrupted run.

``EMOFORGE_KILL_ROUNDS`` sets how many kill-and-resume rounds run (default 2, as in CI; a
benchmark-style run sets many). The first two seeds are fixed, later ones follow on.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from functools import partial
from http.server import ThreadingHTTPServer
from pathlib import Path

import fsspec
import pytest

from emoforge.storage.shards import read_manifest, read_table, verify
from tests.integration.orchestration.conftest import raw_row_ids, row_digest, stop_process
from tests.preprocess.test_remote_media import RangeHandler

KILL_ROUNDS = int(os.environ.get("EMOFORGE_KILL_ROUNDS", "2"))
KILL_SEEDS = (7, 11, *range(100, 100 + KILL_ROUNDS))[:KILL_ROUNDS]


def annotate(inputs: str | Path, out: str | Path, config: Path) -> subprocess.Popen[bytes]:
    """``emoforge annotate INPUT --out OUT --config CONFIG`` in a process group of its own."""
    emoforge = str(Path(sys.executable).with_name("emoforge"))
    return subprocess.Popen(
        [emoforge, "annotate", str(inputs), "--out", str(out), "--config", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
        env=dict(os.environ),
    )


def committed_shards(out: str | Path) -> int:
    """Shards renamed into place under ``out`` (a folder or an fsspec URL), listed afresh."""
    fs, base = fsspec.core.url_to_fs(str(out))
    fs.invalidate_cache()  # an object store's listing is cached per filesystem instance
    return len(fs.glob(f"{base.rstrip('/')}/shard-*.parquet"))


def kill_after_first_commit(proc: subprocess.Popen[bytes], out: str | Path, jitter_s: float = 0.0) -> int:
    """SIGKILL the run's process group once it has committed a shard (plus ``jitter_s``,
    maybe mid-shard); returns the shards committed at the kill."""
    try:
        deadline = time.monotonic() + 400
        while committed_shards(out) == 0 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(jitter_s)
        killed_at = committed_shards(out)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        stop_process(proc)
    assert killed_at >= 1, (proc.stderr.read() if proc.stderr else b"").decode()[-2000:]
    return killed_at


@pytest.mark.slow
@pytest.mark.parametrize("seed", KILL_SEEDS)
def test_sigkill_whole_run_then_resume(
    seed: int, clips: list[Path], reference_corpus: Path, one_row_shards: Path, tmp_path: Path
) -> None:
    rng = random.Random(seed)
    out = tmp_path / "corpus"
    # Wait for the first commit, then kill after a random extra delay (maybe mid-shard).
    killed_at = kill_after_first_commit(annotate(clips[0].parent, out, one_row_shards), out, rng.uniform(0.0, 1.5))
    interrupted = read_manifest(str(out))["runs"]
    assert interrupted and interrupted[-1]["status"] == "running"  # killed: nobody closed it

    resume = annotate(clips[0].parent, out, one_row_shards)
    _, err = resume.communicate(timeout=600)
    assert resume.returncode == 0, err.decode()[-3000:]

    assert row_digest(str(out)) == row_digest(str(reference_corpus)), f"killed after {killed_at} shards"
    ids = raw_row_ids(str(out))
    assert len(ids) == len(set(ids)), "a committed row was written again"
    assert verify(str(out)) == []
    runs = read_manifest(str(out))["runs"]
    assert [r["status"] for r in runs] == ["interrupted", "finished"]


@pytest.fixture()
def https_manifest(clips: list[Path], tmp_path: Path) -> Iterator[Path]:
    """The clips served by a local HTTP server that answers byte ranges, listed by URL."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(RangeHandler, directory=str(clips[0].parent)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    manifest = tmp_path / "clips.jsonl"
    base = f"http://127.0.0.1:{httpd.server_address[1]}"
    manifest.write_text("".join(json.dumps({"uri": f"{base}/{c.name}"}) + "\n" for c in clips))
    yield manifest
    httpd.shutdown()
    httpd.server_close()


@pytest.mark.slow
def test_sigkill_a_run_reading_urls_then_resume(
    https_manifest: Path, reference_corpus: Path, one_row_shards: Path, tmp_path: Path
) -> None:
    """The same clips read by URL (spooled per task): killed after its first commit and
    resumed, the run ends with the rows of the uninterrupted local run."""
    out = tmp_path / "corpus"
    killed_at = kill_after_first_commit(annotate(https_manifest, out, one_row_shards), out)
    resume = annotate(https_manifest, out, one_row_shards)
    _, err = resume.communicate(timeout=600)
    assert resume.returncode == 0, err.decode()[-3000:]
    assert row_digest(str(out)) == row_digest(str(reference_corpus)), f"killed after {killed_at} shards"
    ids = raw_row_ids(str(out))
    assert len(ids) == len(set(ids)) and verify(str(out)) == []
    uris = {r["uri"] for r in read_table(str(out), columns=["recording"]).column("recording").to_pylist()}
    assert all(u.startswith("http://127.0.0.1:") for u in uris)
