"""Prefect deployments of ``annotate_corpus``: scheduled (cron or interval) annotation jobs.

Two ways to run them, both backed by a Prefect server (``PREFECT_API_URL``):

* ``serve(specs)``: this process registers the deployments and executes their runs
  (``prefect.serve``); nothing else to start. The task runner (threads or Dask) comes
  from each spec's config and travels with the flow object.
* ``register(spec, work_pool=...)``: the deployment is registered on a ``process`` work
  pool and ``prefect worker start --pool <pool>`` executes it. The worker imports
  ``emoforge.flows.annotate.annotate_corpus`` by module path, so emoforge must be
  installed where the worker runs.

Every deployment has a concurrency limit of 1: two runs writing the same corpus would
race on its manifest, and a scheduled run that finds the previous one still busy waits.
Runs are incremental (``run.incremental``): only new or changed recordings do work.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from pydantic import BaseModel, Field, model_validator

from emoforge.flows.annotate import annotate_corpus
from emoforge.flows.config import load_checked
from emoforge.flows.runners import ensure_provider_limits, task_runner
from emoforge.flows.work import RetryPolicy

if TYPE_CHECKING:
    from prefect.deployments.runner import RunnerDeployment

log = logging.getLogger(__name__)

FLOW_NAME = "annotate_corpus"


class DeploymentSpec(BaseModel):
    """One scheduled annotation job: what to read, where to write, when, with which config."""

    name: str = Field(description="Deployment name; runs appear as 'annotate_corpus/<name>'.")
    inputs: list[str] = Field(min_length=1, description="Media files, folders or manifests (absolute).")
    out: str = Field(description="Corpus directory or fsspec URL.")
    config_path: str | None = Field(None, description="YAML merged over the defaults (absolute path).")
    overrides: dict[str, Any] | None = Field(None, description="Nested config overrides.")
    retry: RetryPolicy = Field("transient", description="Which committed failures a run redoes.")
    input_root: str | None = Field(
        None, description="Folder every local input must lie in; null = each manifest's or folder's own."
    )
    cron: str | None = Field(None, description="Cron schedule, e.g. '0 * * * *'.")
    interval_s: float | None = Field(None, gt=0, description="Interval schedule in seconds.")
    tags: list[str] = Field(default_factory=lambda: ["emoforge"], description="Prefect tags.")

    @model_validator(mode="after")
    def _one_schedule(self) -> DeploymentSpec:
        if self.cron and self.interval_s:
            raise ValueError("give either cron or interval_s, not both")
        return self

    def parameters(self) -> dict[str, Any]:
        """Flow parameters; local paths are made absolute so any working directory works."""
        return {
            "inputs": [_absolute(i) for i in self.inputs],
            "out": _absolute(self.out),
            "config_path": _absolute(self.config_path) if self.config_path else None,
            "overrides": self.overrides,
            "retry": self.retry,
            # only when set: deployments registered before the option keep their parameters
            **({"input_root": _absolute(self.input_root)} if self.input_root else {}),
        }


def _absolute(path: str) -> str:
    return path if "://" in path else str(Path(path).expanduser().resolve())


def _schedule(spec: DeploymentSpec) -> dict[str, Any]:
    if spec.cron:
        return {"cron": spec.cron}
    if spec.interval_s:
        return {"interval": timedelta(seconds=spec.interval_s)}
    return {}  # triggered only (UI, `prefect deployment run`, run_deployment)


def to_deployment(spec: DeploymentSpec) -> RunnerDeployment:
    """A served deployment; its flow carries the task runner named in the spec's config."""
    params = spec.parameters()
    config = load_checked(params["config_path"], spec.overrides)
    flow = annotate_corpus.with_options(task_runner=task_runner(config.run))
    # Prefect's sync/async dual API types this as "deployment | coroutine"; called from sync code it is the former.
    deployment = flow.to_deployment(
        name=spec.name,
        parameters=params,
        tags=spec.tags,
        concurrency_limit=1,
        description=f"Annotate {', '.join(params['inputs'])} into {params['out']}",
        **_schedule(spec),
    )
    return cast("RunnerDeployment", deployment)


def serve(specs: list[DeploymentSpec], limit: int | None = None) -> None:
    """Register the deployments and run their scheduled/triggered runs here (blocks).

    Args:
        specs: the jobs to serve.
        limit: most flow runs executing at once in this process.
    """
    from prefect import serve as prefect_serve

    deployments = [to_deployment(s) for s in specs]
    for spec in specs:
        config = load_checked(spec.parameters()["config_path"], spec.overrides)
        if config.run.provider_limits:
            ensure_provider_limits(config.run)
    prefect_serve(*deployments, limit=limit, print_starting_message=False)


def register(spec: DeploymentSpec, work_pool: str) -> str:
    """Register a deployment on a process work pool (created if missing); returns its id.

    ``prefect worker start --pool <work_pool>`` then runs it. The worker imports the flow
    by module path and runs it with its default task runner; set ``run.task_runner`` in
    the config only for ``serve``.
    """
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.deployments.runner import EntrypointType
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            client.read_work_pool(work_pool)
        except ObjectNotFound:
            client.create_work_pool(WorkPoolCreate(name=work_pool, type="process"))
    params = spec.parameters()
    config = load_checked(params["config_path"], spec.overrides)
    if config.run.provider_limits:
        ensure_provider_limits(config.run)
    deployment = annotate_corpus.to_deployment(
        name=spec.name,
        parameters=params,
        tags=spec.tags,
        concurrency_limit=1,
        work_pool_name=work_pool,
        entrypoint_type=EntrypointType.MODULE_PATH,
        description=f"Annotate {', '.join(params['inputs'])} into {params['out']}",
        **_schedule(spec),
    )
    return str(cast("RunnerDeployment", deployment).apply())
