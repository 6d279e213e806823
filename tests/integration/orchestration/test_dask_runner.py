"""Recordings mapped over a Dask LocalCluster with two worker processes.

The cluster is made here and handed to the flow by address (``run.dask_address``), so the
test can ask each worker afterwards how often it built each stage (models load in the
stage constructors), and can SIGKILL a worker in the middle of a run.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import distributed
import pytest

from emoforge.configs import load_config
from emoforge.flows.annotate import RunSummary, annotate_corpus
from emoforge.flows.leases import tool_builds
from emoforge.flows.runners import dask_task_runner, local_cluster, task_runner
from tests.integration.orchestration.conftest import raw_row_ids, row_digest


@pytest.fixture(scope="module")
def cluster(prefect_api: str) -> Iterator[tuple[Any, Any]]:
    # The runner's own kind of cluster: workers forked from the preloaded forkserver, a
    # killed one forked again by its nanny.
    with (
        local_cluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as local,
        distributed.Client(local) as client,
    ):
        yield local, client


def _run(address: str, inputs: list[str], out: str, cache: str | None = None) -> RunSummary:
    overrides: dict[str, Any] = {"run": {"task_runner": "dask", "dask_address": address, "workers": 2}}
    if cache:
        # The jury is keyed by its response cache folder (per corpus unless configured).
        overrides["agents"] = {"cache": {"path": cache}}
    runner = task_runner(load_config(None, overrides).run)
    return annotate_corpus.with_options(task_runner=runner)(inputs=inputs, out=out, overrides=overrides)


def test_dask_task_runner_from_config() -> None:
    local = dask_task_runner(load_config(None, {"run": {"task_runner": "dask", "workers": 3}}).run)
    env = local.cluster_kwargs.pop("env")
    assert local.cluster_kwargs == {
        "n_workers": 3,
        "threads_per_worker": 1,
        "processes": True,
        "dashboard_address": None,
    }
    assert env["OMP_NUM_THREADS"] == str(max(1, len(os.sched_getaffinity(0)) // 3))
    assert local.cluster_class == "emoforge.flows.runners.local_cluster"
    remote = dask_task_runner(load_config(None, {"run": {"dask_address": "tcp://10.0.0.1:8786"}}).run)
    assert remote.address == "tcp://10.0.0.1:8786"


def _torch_threads() -> tuple[str, int]:
    return os.environ["OMP_NUM_THREADS"], __import__("torch").get_num_threads()


@pytest.mark.parametrize("workers", [1, 2])
def test_workers_get_the_cores_shared_out_to_their_math_runtimes(workers: int) -> None:
    """Dask pins OMP/MKL threads to 1 per worker; our cluster shares the cores out instead,
    also for workers forked from a forkserver whose libraries loaded with other counts (one
    forkserver serves both clusters here)."""
    run = load_config(None, {"run": {"task_runner": "dask", "workers": workers}}).run
    with local_cluster(**dask_task_runner(run).cluster_kwargs) as local, distributed.Client(local) as client:
        in_workers = set(client.run(_torch_threads).values())
        in_a_task = client.submit(_torch_threads, pure=False).result()  # a task runs on another thread
    n = max(1, len(os.sched_getaffinity(0)) // workers)
    assert in_workers == {(str(n), n)}
    assert in_a_task == (str(n), n)


def test_local_workers_fork_with_the_tools_libraries_imported_and_report_to_our_api(prefect_api: str) -> None:
    """The workers share the pages of torch, pyannote, CTranslate2 ... with the forkserver
    that imported them (``flows/worker_preload.py``) instead of importing them each, and
    report to this process's Prefect API instead of starting a server each."""
    kwargs = dask_task_runner(load_config(None, {"run": {"task_runner": "dask", "workers": 2}}).run).cluster_kwargs
    with local_cluster(**kwargs) as local, distributed.Client(local) as client:
        loaded = client.run(lambda: {m for m in ("torch", "pyannote.audio", "faster_whisper") if m in sys.modules})
        parents = set(client.run(os.getppid).values())
        apis = set(client.run(lambda: os.environ.get("PREFECT_API_URL")).values())
    assert list(loaded.values()) == [{"torch", "pyannote.audio", "faster_whisper"}] * 2
    assert os.getpid() not in parents  # forked by the forkserver, not spawned by this process
    assert apis == {prefect_api}


@pytest.mark.slow
def test_two_workers_same_rows_models_loaded_once_per_worker(
    cluster: tuple[Any, Any], clips: list[Path], reference_corpus: Path, tmp_path: Path
) -> None:
    local, client = cluster
    cache = str(tmp_path / "responses")
    summary = _run(local.scheduler_address, [str(clips[0].parent)], str(tmp_path / "a"), cache)
    assert summary.recordings == 4
    assert row_digest(str(tmp_path / "a")) == row_digest(str(reference_corpus))

    builds: dict[str, dict[str, int]] = client.run(tool_builds)
    assert len(builds) == 2
    # One worker thread each: every tool class built at most once per worker process,
    # although four recordings (24 phase tasks) went through them.
    assert all(n == 1 for per_worker in builds.values() for n in per_worker.values()), builds
    assert 1 <= sum(b.get("Segmenter", 0) for b in builds.values()) <= 2

    # A second run on the same workers reuses the loaded models.
    _run(local.scheduler_address, [str(clips[0].parent)], str(tmp_path / "b"), cache)
    assert client.run(tool_builds) == builds
    assert row_digest(str(tmp_path / "b")) == row_digest(str(reference_corpus))


@pytest.mark.slow
def test_sigkill_a_worker_mid_run_loses_and_duplicates_nothing(
    cluster: tuple[Any, Any], clips: list[Path], reference_corpus: Path, tmp_path: Path
) -> None:
    local, client = cluster
    out = str(tmp_path / "corpus")
    result: dict[str, Any] = {}

    def run() -> None:
        try:
            result["summary"] = _run(local.scheduler_address, [str(clips[0].parent)], out)
        except BaseException as exc:  # re-raised in the test thread below
            result["error"] = exc

    pids: dict[str, int] = client.run(os.getpid)
    thread = threading.Thread(target=run)
    thread.start()
    # Kill a worker while it is executing stage tasks of this run.
    deadline = time.monotonic() + 300
    victim = None
    while victim is None and time.monotonic() < deadline and thread.is_alive():
        busy = client.processing()
        victim = next((w for w, tasks in busy.items() if tasks), None)
        time.sleep(0.2)
    assert victim is not None, "no worker ever got a task"
    os.kill(pids[victim], signal.SIGKILL)
    thread.join(timeout=600)
    assert not thread.is_alive()
    if "error" in result:
        raise result["error"]
    # The nanny restarted the worker and Dask re-ran the lost tasks elsewhere.
    assert row_digest(out) == row_digest(str(reference_corpus))
    ids = raw_row_ids(out)
    assert len(ids) == len(set(ids))
