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

import pytest
import yaml

from emoforge.storage.shards import read_manifest, read_table, verify
from tests.integration.orchestration.conftest import raw_row_ids, row_digest, stop_process
from tests.preprocess.test_remote_media import RangeHandler

KILL_ROUNDS = int(os.environ.get("EMOFORGE_KILL_ROUNDS", "2"))
KILL_SEEDS = (7, 11, *range(100, 100 + KILL_ROUNDS))[:KILL_ROUNDS]


def _annotate(inputs: Path, out: Path, config: Path) -> subprocess.Popen[bytes]:
    emoforge = str(Path(sys.executable).with_name("emoforge"))
    return subprocess.Popen(
        [emoforge, "annotate", str(inputs), "--out", str(out), "--config", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
        env=dict(os.environ),
    )


def _shards(out: Path) -> int:
    return len(list(out.glob("shard-*.parquet"))) if out.exists() else 0


def _kill_after_first_commit(proc: subprocess.Popen[bytes], out: Path, jitter_s: float = 0.0) -> int:
    """SIGKILL the run's process group once it has committed a shard (plus ``jitter_s``,
    maybe mid-shard); returns the shards on disk at the kill."""
    try:
        deadline = time.monotonic() + 400
        while _shards(out) == 0 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(jitter_s)
        killed_at = _shards(out)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        stop_process(proc)
    assert killed_at >= 1, (proc.stderr.read() if proc.stderr else b"").decode()[-2000:]
    return killed_at


@pytest.fixture(scope="module")
def one_row_shards(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Commit after every recording, so kills land between, during and after commits.

    One worker: recordings then finish (and commit) one at a time, spread over the run, so a
    kill a random moment after the first commit lands mid-run; with two, pairs commit
    together and a short corpus can be done before the kill. Resume does not depend on it.
    """
    path = tmp_path_factory.mktemp("kill-config") / "config.yaml"
    path.write_text(
        yaml.safe_dump({"storage": {"max_rows_per_shard": 1, "flush_interval_s": 0}, "run": {"workers": 1}})
    )
    return path


@pytest.mark.slow
@pytest.mark.parametrize("seed", KILL_SEEDS)
def test_sigkill_whole_run_then_resume(
    seed: int, clips: list[Path], reference_corpus: Path, one_row_shards: Path, tmp_path: Path
) -> None:
    rng = random.Random(seed)
    out = tmp_path / "corpus"
    # Wait for the first commit, then kill after a random extra delay (maybe mid-shard).
    killed_at = _kill_after_first_commit(_annotate(clips[0].parent, out, one_row_shards), out, rng.uniform(0.0, 1.5))
    interrupted = read_manifest(str(out))["runs"]
    assert interrupted and interrupted[-1]["status"] == "running"  # killed: nobody closed it

    resume = _annotate(clips[0].parent, out, one_row_shards)
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
    killed_at = _kill_after_first_commit(_annotate(https_manifest, out, one_row_shards), out)
    resume = _annotate(https_manifest, out, one_row_shards)
    _, err = resume.communicate(timeout=600)
    assert resume.returncode == 0, err.decode()[-3000:]
    assert row_digest(str(out)) == row_digest(str(reference_corpus)), f"killed after {killed_at} shards"
    ids = raw_row_ids(str(out))
    assert len(ids) == len(set(ids)) and verify(str(out)) == []
    uris = {r["uri"] for r in read_table(str(out), columns=["recording"]).column("recording").to_pylist()}
    assert all(u.startswith("http://127.0.0.1:") for u in uris)
