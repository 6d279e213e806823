"""Execution config: task runner, workers, retries, timeouts."""

from typing import Literal

from pydantic import Field

from emoforge.configs.base import Section


class RunConfig(Section):
    task_runner: Literal["thread", "dask"] = "thread"
    workers: int = Field(1, ge=1, description="Parallel recordings (threads or Dask workers).")
    dask_address: str | None = Field(None, description="Existing Dask scheduler; null = local cluster.")
    task_retries: int = Field(1, ge=0, description="Prefect retries for transient task failures.")
    task_timeout_s: float | None = Field(None, description="Per-recording stage timeout.")
    retry_failed: bool = Field(True, description="On resume, redo rows whose failure was transient.")
