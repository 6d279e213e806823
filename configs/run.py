"""Execution config: task runner, workers, retries, timeouts, provider limits, incremental runs."""

from typing import Literal

from pydantic import Field

from emoforge.configs.base import Section


class RunConfig(Section):
    task_runner: Literal["thread", "dask"] = Field(
        "thread", description="thread: one process; dask: Dask workers (a LocalCluster or dask_address)."
    )
    workers: int = Field(1, ge=1, description="Parallel recordings (threads, or Dask worker processes).")
    threads_per_worker: int = Field(
        1, ge=1, description="Threads per Dask worker; each thread loads its own copy of the stage models."
    )
    dask_address: str | None = Field(None, description="Existing Dask scheduler; null = local cluster.")
    task_retries: int = Field(1, ge=0, description="Prefect retries for transient task failures.")
    retry_delay_s: float = Field(2.0, ge=0, description="Seconds between Prefect task retries.")
    task_timeout_s: float | None = Field(
        None, gt=0, description="Per-task (one stage of one recording) timeout; null = none."
    )
    retry_failed: bool = Field(True, description="On resume, redo rows whose failure was transient.")
    incremental: bool = Field(
        True,
        description="Skip recordings whose content hash is fully committed before any task is submitted.",
    )
    provider_limits: dict[str, int] = Field(
        default_factory=dict,
        description=(
            "Prefect global concurrency limit per remote backend (openai, openai_compatible, gemini): "
            "recordings annotated at once by that provider, shared by every run against one server."
        ),
    )
    provider_limit_timeout_s: float | None = Field(
        None, gt=0, description="Give up waiting for a provider slot after this long (a timeout failure)."
    )
