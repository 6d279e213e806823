"""How a run executes: the task runner, and provider concurrency limits shared across runs.

The flow maps work per recording; each recording's stages are tasks, so with Dask each
worker process runs whole recordings and keeps its own stage models (``tasks.stage``
leases them to one task at a time and keeps them for the next). Provider limits are Prefect global concurrency
limits named ``emoforge-provider-{backend}``: every run talking to the same Prefect server
shares them, so two scheduled runs never exceed a provider's rate together.
"""

from __future__ import annotations

import logging
import os
from contextlib import AbstractContextManager, nullcontext
from typing import TYPE_CHECKING, Any

from emoforge.configs.agents import AgentsConfig
from emoforge.configs.run import RunConfig

if TYPE_CHECKING:
    from prefect.task_runners import TaskRunner

log = logging.getLogger(__name__)

REMOTE_BACKENDS = frozenset({"openai", "openai_compatible", "gemini"})
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
        cluster_class="distributed.LocalCluster",
        cluster_kwargs={
            "n_workers": run_config.workers,
            "threads_per_worker": run_config.threads_per_worker,
            "processes": True,
            "dashboard_address": None,
            "env": intra_op_env(run_config.workers * run_config.threads_per_worker),
        },
    )


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
    backends = sorted({a.backend for a in agents.jury if a.backend in REMOTE_BACKENDS})
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
