"""Thin Prefect tasks around the stages (``flows/stages.py``): names, retries, leases.

Each task takes and returns the recording's ``RecordingWork`` and runs one stage through
``run_stage``, which captures what the stage raised as a typed failure, so nothing is
dropped. A task is named after its phase, like the stage class and the failure ``stage``
string. Prefect retries a task only for causes known to be transient.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from emoforge.configs import PipelineConfig
from emoforge.configs.run import RunConfig
from emoforge.flows.leases import released, stage, stage_builds
from emoforge.flows.stages import (
    Aggregate,
    Annotate,
    Judge,
    Preprocess,
    Probe,
    Sampling,
    failure_kind,
    response_cache,
    run_stage,
)
from emoforge.flows.work import RecordingWork, RetryPolicy
from emoforge.storage.records import ErrorKind, RunContext
from emoforge.storage.shards import CorpusState

# Re-exported: the leases, and the failure typing the flow and tests use, live beside the stages.
__all__ = [
    "TASK_OPTS", "aggregate", "annotate", "configured", "escaped_kind", "failure_kind", "judge", "named",
    "preprocess", "probe", "released", "response_cache", "sample", "stage", "stage_builds",
]  # fmt: skip


def escaped_kind(state_name: str | None) -> ErrorKind:
    """Kind of a stage task that failed past its retries (its exception escaped the stage).

    Prefect names a run that passed ``timeout_seconds`` ``TimedOut``: that may pass, so it is
    retried on resume. A crash or a lost worker (``state_name`` None) is ``internal``."""
    return ErrorKind.timeout if state_name == "TimedOut" else ErrorKind.internal


def _transient(task_: Any, task_run: Any, state: Any) -> bool:
    """Retry only exceptions whose cause is known to pass (I/O hiccups, timeouts)."""
    try:
        state.result()
    except (TimeoutError, ConnectionError):
        return True
    except Exception:
        return False  # anything else is deterministic: retrying would fail the same way
    return False


TASK_OPTS: dict[str, Any] = {
    "cache_policy": NO_CACHE,
    "retry_condition_fn": _transient,
    "retries": 1,
}


@task(name=Probe.name, **TASK_OPTS)
@released
def probe(work: RecordingWork, config: PipelineConfig) -> RecordingWork:
    return run_stage(Probe(config), work)


@task(name=Sampling.name, **TASK_OPTS)
@released
def sample(
    work: RecordingWork, config: PipelineConfig, ctx: RunContext, state: CorpusState, retry: RetryPolicy
) -> RecordingWork:
    return run_stage(Sampling(config, ctx, state, retry), work)


@task(name=Preprocess.name, **TASK_OPTS)
@released
def preprocess(work: RecordingWork, config: PipelineConfig, ctx: RunContext) -> RecordingWork:
    return run_stage(Preprocess(config, ctx), work)


@task(name=Annotate.name, **TASK_OPTS)
@released
def annotate(
    work: RecordingWork, config: PipelineConfig, ctx: RunContext, cache_dir: str, out: str | None = None
) -> RecordingWork:
    return run_stage(Annotate(config, ctx, cache_dir, out), work)


@task(name=Judge.name, **TASK_OPTS)
@released
def judge(work: RecordingWork, config: PipelineConfig, ctx: RunContext, cache_dir: str | None = None) -> RecordingWork:
    return run_stage(Judge(config, ctx, cache_dir), work)


@task(name=Aggregate.name, **TASK_OPTS)
@released
def aggregate(work: RecordingWork, config: PipelineConfig, ctx: RunContext) -> RecordingWork:
    return run_stage(Aggregate(config, ctx), work)


STAGE_TASKS = (probe, sample, preprocess, annotate, judge, aggregate)  # in phase order (stages.PHASES)


def configured(run: RunConfig) -> dict[str, Any]:
    """The stage tasks with retries and timeouts from the run config, by phase name.

    Task runs are named ``{phase}[{file name}]`` (see ``named``) so the Prefect UI reads
    like a log of recordings."""
    opts: dict[str, Any] = {"retries": run.task_retries, "retry_delay_seconds": run.retry_delay_s}
    if run.task_timeout_s is not None:
        opts["timeout_seconds"] = run.task_timeout_s
    return {s.name: s.with_options(**opts) for s in STAGE_TASKS}


def named(stage_task: Any, uri: str) -> Any:
    """The task with its runs named after the recording (braces escaped for Prefect's format)."""
    label = Path(uri).name.replace("{", "{{").replace("}", "}}")
    return stage_task.with_options(task_run_name=f"{stage_task.name}[{label}]")
