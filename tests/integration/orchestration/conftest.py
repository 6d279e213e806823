"""Scale-out fixtures: a real Prefect server on 127.0.0.1 (SQLite, temp PREFECT_HOME), short
espeak clips, and a reference corpus from one uninterrupted run.

Every flow in this folder talks to that server (in-process through ``temporary_settings``,
subprocesses and Dask workers through the environment), so no test pays for an
ephemeral server of its own. Everything started here is stopped by its pid at the end.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fsspec
import pytest
import yaml

from tests.conftest import espeak

CLIP_TEXTS = (
    "I can not believe it, this is wonderful news.",
    "Leave me alone. I am so angry with you right now.",
    "The weather is grey and I feel tired and sad.",
    "What a surprise, I did not expect to see you here.",
)
SERVER_START_S = 180.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as resp:
            return bool(resp.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def stop_process(proc: subprocess.Popen[Any], grace_s: float = 15.0) -> None:
    """SIGTERM the process group we started, then SIGKILL what is left."""
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=grace_s)


@pytest.fixture(scope="session")
def prefect_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("prefect-home")


@pytest.fixture(scope="session", autouse=True)
def prefect_api(prefect_home: Path) -> Iterator[str]:
    """`prefect server start` on a free 127.0.0.1 port; its URL is the API for the session."""
    from prefect.settings import PREFECT_API_URL, PREFECT_HOME, temporary_settings

    port = _free_port()
    url = f"http://127.0.0.1:{port}/api"
    env = {
        **os.environ,
        "PREFECT_HOME": str(prefect_home),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_API_URL": url,
        "PREFECT_UI_ENABLED": "false",
    }
    log = open(prefect_home / "server.log", "wb")  # noqa: SIM115 - closed after the server stops
    prefect = str(Path(sys.executable).with_name("prefect"))
    proc = subprocess.Popen(
        [prefect, "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + SERVER_START_S
    while not _healthy(url):
        if proc.poll() is not None or time.monotonic() > deadline:
            stop_process(proc)
            log.close()
            raise RuntimeError(f"prefect server did not start: {(prefect_home / 'server.log').read_text()[-3000:]}")
        time.sleep(0.5)
    # Subprocesses and Dask workers read the environment; this process reads the settings.
    saved = {k: os.environ.get(k) for k in ("PREFECT_API_URL", "PREFECT_HOME")}
    os.environ["PREFECT_API_URL"] = url
    os.environ["PREFECT_HOME"] = str(prefect_home)
    try:
        with temporary_settings(updates={PREFECT_API_URL: url, PREFECT_HOME: str(prefect_home)}):
            try:
                yield url
            finally:
                from prefect.logging.handlers import APILogWorker

                # Send buffered run logs to this server now; after the settings are
                # restored a late flush would start an ephemeral server of its own.
                APILogWorker.drain_all(timeout=5)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        stop_process(proc)
        log.close()


@pytest.fixture(scope="session")
def clips(generated_dir: Path) -> list[Path]:
    """Four ~3 s espeak-ng utterances (16 kHz mono WAV), one per file."""
    folder = generated_dir / "scale-clips"
    folder.mkdir(exist_ok=True)
    return [espeak(text, folder / f"clip{i}.wav") for i, text in enumerate(CLIP_TEXTS)]


def copy_clips(clips: list[Path], dest: Path, n: int | None = None) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    for clip in clips[:n]:
        shutil.copy2(clip, dest / clip.name)
    return dest


@pytest.fixture(scope="module")
def one_row_shards(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A config that commits after every recording, so kills land between, during and after
    commits.

    One worker: recordings then finish (and commit) one at a time, spread over the run, so a
    kill a random moment after the first commit lands mid-run; with two, pairs commit
    together and a short corpus can be done before the kill. Resume does not depend on it.
    """
    path = tmp_path_factory.mktemp("kill-config") / "config.yaml"
    path.write_text(
        yaml.safe_dump({"storage": {"max_rows_per_shard": 1, "flush_interval_s": 0}, "run": {"workers": 1}})
    )
    return path


@pytest.fixture(scope="session")
def reference_corpus(clips: list[Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The four clips annotated in one uninterrupted in-process run (thread runner)."""
    from emoforge.flows.annotate import annotate_corpus

    out = tmp_path_factory.mktemp("reference") / "corpus"
    annotate_corpus(inputs=[str(clips[0].parent)], out=str(out))
    return out


def row_digest(root: str) -> dict[str, tuple[Any, ...]]:
    """row_id -> what must not depend on how the run was executed."""
    from emoforge.storage.shards import read_table

    table = read_table(root, columns=["row_id", "status", "failure", "segment", "consensus"]).to_pylist()
    out = {}
    for row in table:
        failure = row["failure"]
        seg = row["segment"]
        cons = row["consensus"]
        out[row["row_id"]] = (
            row["status"],
            failure["kind"] if failure else None,
            (seg["start_s"], seg["end_s"]) if seg else None,
            cons["primary_label"] if cons else None,
        )
    return out


def raw_row_ids(root: str) -> list[str]:
    """Row ids in every committed shard, duplicates included (what a naive reader would see)."""
    import pyarrow.parquet as pq

    from emoforge.storage.shards import shard_paths

    fs, _ = fsspec.core.url_to_fs(root)
    ids: list[str] = []
    for path in shard_paths(root):  # paths of fs (a URL's without its scheme)
        with fs.open(path, "rb") as fh:
            ids.extend(pq.read_table(fh, columns=["row_id"]).column("row_id").to_pylist())
    return ids
