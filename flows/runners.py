"""How a run executes: the task runner, and provider concurrency limits shared across runs.

The flow maps work per recording; each recording's phases are tasks, so with Dask each
worker process runs whole recordings and keeps its own tools' models (``leases.lease``
leases them to one task at a time and keeps them for the next). Provider limits are Prefect global concurrency
limits named ``emoforge-provider-{backend}``: every run talking to the same Prefect server
shares them, so two scheduled runs never exceed a provider's rate together.
"""

from __future__ import annotations

import ctypes
import functools
import logging
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import TYPE_CHECKING, Any

from emoforge.configs.agents import AgentsConfig
from emoforge.configs.run import RunConfig

if TYPE_CHECKING:
    from prefect.task_runners import TaskRunner

log = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
EXIT_INTERRUPTED = 130  # 128 + SIGINT, what shells report for a Ctrl-C'd command
LIMIT_PREFIX = "emoforge-provider-"


def dask_task_runner(run_config: RunConfig) -> Any:
    """A ``DaskTaskRunner``: the scheduler at ``run.dask_address``, else a LocalCluster.

    The local cluster has ``run.workers`` processes with ``run.threads_per_worker`` threads:
    processes, not threads, because the ASR and vision runtimes hold the GIL for long
    stretches and are not safe to share between threads.
    """
    from prefect_dask import DaskTaskRunner

    if run_config.dask_address:
        return DaskTaskRunner(address=run_config.dask_address)
    return DaskTaskRunner(
        cluster_class="emoforge.flows.runners.local_cluster",
        cluster_kwargs={
            "n_workers": run_config.workers,
            "threads_per_worker": run_config.threads_per_worker,
            "processes": True,
            "dashboard_address": None,
            "env": intra_op_env(run_config.workers * run_config.threads_per_worker),
        },
    )


def local_cluster(**cluster_kwargs: Any) -> Any:
    """A ``distributed.LocalCluster`` whose workers fork from a process that imported the tools' libraries.

    Spawned workers (Dask's default) each import torch, pyannote, CTranslate2 and the rest
    themselves; forked from one forkserver that imported them (``worker_preload``), they
    share those pages (docs/scaling.md, "Memory per Dask worker", has the measured cost).
    The start method is set for the whole process, so a nanny restarting a killed worker
    forks it the same way. Each worker still gets its own thread counts: the nanny sets
    ``env`` in the forked child, and ``worker_preload.dask_setup`` applies it there.
    """
    import dask
    import distributed.utils

    # distributed's functions are not annotated; mypy sees them through Any.
    dist: Any = distributed
    dask.config.set({"distributed.worker.multiprocessing-method": "forkserver"})
    # Dask sets its own preload list on first use; ours replaces it before the server starts.
    dist.utils.get_mp_context().set_forkserver_preload(["distributed", "emoforge.flows.worker_preload"])
    env = {**cluster_kwargs.pop("env", {}), **prefect_api_env()}
    return dist.LocalCluster(preload=["emoforge.flows.worker_preload"], env=env, **cluster_kwargs)


def prefect_api_env() -> dict[str, str]:
    """``PREFECT_API_URL`` for local workers: the API this process reports to, a temporary server included.

    Without it each worker process started a temporary API server of its own to report its
    task states (0.18 GB PSS each, measured with bench_pipeline's per-process peaks), and a
    forked worker exits without the ``atexit`` hook that stops it, leaving the server behind.
    """
    from prefect.settings import get_current_settings

    settings = get_current_settings()
    if settings.api.url:
        return {"PREFECT_API_URL": str(settings.api.url)}
    if not settings.server.ephemeral.enabled:
        return {}
    from prefect.server.api.server import SubprocessASGIServer

    server = SubprocessASGIServer()  # the process's one temporary server, which the flow then reuses
    server.start()
    return {"PREFECT_API_URL": server.api_url}


def intra_op_env(parallel_tasks: int) -> dict[str, str]:
    """Thread counts for the math runtimes (torch, CTranslate2, BLAS) of one worker process.

    Dask's nanny pins them to 1 per worker, which leaves cores idle when workers are fewer
    than cores (one worker on two cores ran ASR single-threaded); more than cores / tasks
    only oversubscribes. So: the machine's cores shared evenly by the tasks that run at once.
    """
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    n = str(max(1, cores // max(1, parallel_tasks)))
    return {"OMP_NUM_THREADS": n, "MKL_NUM_THREADS": n, "OPENBLAS_NUM_THREADS": n}


def task_runner(run_config: RunConfig) -> TaskRunner[Any]:
    """The task runner ``run.task_runner`` names (threads by default)."""
    if run_config.task_runner == "dask":
        runner: TaskRunner[Any] = dask_task_runner(run_config)
        return runner
    from prefect.task_runners import ThreadPoolTaskRunner

    return ThreadPoolTaskRunner(max_workers=run_config.workers)


def provider_limit_names(agents: AgentsConfig, run_config: RunConfig) -> list[str]:
    """Limit names the annotate stage must hold: remote backends of the jury that have a limit."""
    from emoforge.agents.providers import provider

    backends = sorted({a.backend for a in agents.jury if provider(a.backend).remote})
    return [f"{LIMIT_PREFIX}{b}" for b in backends if b in run_config.provider_limits]


def provider_slots(agents: AgentsConfig, run_config: RunConfig) -> AbstractContextManager[Any]:
    """Hold one slot of each provider limit while a recording is annotated.

    Non-strict: a limit missing on the server (never created) does not block the run.
    """
    names = provider_limit_names(agents, run_config)
    if not names:
        return nullcontext()
    from prefect.concurrency.sync import concurrency

    return concurrency(names, occupy=1, timeout_seconds=run_config.provider_limit_timeout_s, strict=False)


def ensure_provider_limits(run_config: RunConfig) -> dict[str, int]:
    """Create or update the global concurrency limits on the Prefect server (idempotent).

    Returns:
        limit name -> slots, as now set on the server.
    """
    from prefect.client.orchestration import get_client

    wanted = {f"{LIMIT_PREFIX}{backend}": slots for backend, slots in sorted(run_config.provider_limits.items())}
    with get_client(sync_client=True) as client:
        for name, slots in wanted.items():
            client.upsert_global_concurrency_limit_by_name(name, slots)
    return wanted


def _die_with_parent(prctl: Any, parent_pid: int) -> None:
    """In a forked child before exec: ask the kernel for SIGTERM when the parent thread dies.

    ``prctl`` is looked up in the parent: loading a library between fork and exec can
    deadlock on a lock another thread of the parent held at fork time.
    """
    prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(0)


class _TiedSubprocess:
    """Prefect's server module's view of ``subprocess``: Popen children die with this process.

    Prefect starts its temporary server with a plain ``subprocess.Popen`` and stops it only
    at exit (``atexit``), so a SIGKILLed CLI left a uvicorn server running; this adds
    PR_SET_PDEATHSIG to that one call site and leaves every other ``subprocess`` use alone.
    """

    def __getattr__(self, name: str) -> Any:
        return getattr(subprocess, name)

    @staticmethod
    def Popen(*args: Any, **kwargs: Any) -> subprocess.Popen[Any]:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
        kwargs.setdefault("preexec_fn", functools.partial(_die_with_parent, prctl, os.getpid()))
        return subprocess.Popen(*args, **kwargs)


def start_temporary_server() -> bool:
    """Start Prefect's temporary API server now, tied to this process (Linux), if a run would.

    Must be called from the main thread: the kernel's parent-death signal fires when the
    *thread* that forked the child exits, and Prefect would otherwise fork it from whichever
    thread first needs the API. Prefect reuses this instance for the run (one per process).
    Without ``prctl`` (not Linux) the server stays as Prefect starts it, stopped at exit.

    Returns:
        True when a temporary server was started here; False when an API URL is set, the
        ephemeral server is disabled, or this is not the main thread of a Linux process.
    """
    from prefect.settings import get_current_settings

    settings = get_current_settings()
    if settings.api.url or not settings.server.ephemeral.enabled:
        return False
    if not sys.platform.startswith("linux") or threading.current_thread() is not threading.main_thread():
        return False
    import prefect.server.api.server as prefect_server

    prefect_server.subprocess = _TiedSubprocess()  # type: ignore[assignment]
    prefect_server.SubprocessASGIServer().start()
    return True


@contextmanager
def prompt_interrupt(grace_s: float | None = None, notice: Callable[[], None] | None = None) -> Iterator[None]:
    """Ctrl-C ends the run within a few seconds (``grace_s``), leaving the corpus resumable.

    The first Ctrl-C raises KeyboardInterrupt in the main thread as usual: the flow marks its
    run interrupted after committing what finished. But Python then waits for the worker
    threads, and a phase inside native code (hashing a huge file, a decoder, a model) cannot
    be interrupted: the process used to run on until that phase ended. A watchdog therefore
    ends the process ``grace_s`` seconds after the first Ctrl-C, and a second Ctrl-C ends it at once.
    Nothing is lost either way: committed shards are durable, and an uncommitted recording is
    redone on resume, as after kill -9.

    Args:
        grace_s: seconds between the first Ctrl-C and the forced exit; default
            ``$EMOFORGE_INTERRUPT_GRACE_S`` or 5.
        notice: called at the first Ctrl-C (the CLI tells the user what happens next).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    grace = grace_s if grace_s is not None else float(os.environ.get("EMOFORGE_INTERRUPT_GRACE_S", "5"))
    previous = signal.getsignal(signal.SIGINT)
    pressed = threading.Event()

    def force_exit() -> None:
        log.info("phases still running %.0fs after Ctrl-C; exiting without waiting for them", grace)
        logging.shutdown()
        os._exit(EXIT_INTERRUPTED)

    def on_sigint(signum: int, frame: Any) -> None:
        if pressed.is_set():
            force_exit()
        pressed.set()
        if notice is not None:
            notice()
        timer = threading.Timer(grace, force_exit)
        timer.daemon = True
        timer.start()
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, on_sigint)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
