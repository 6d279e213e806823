"""The one Prefect task every phase runs in: names, retries, leases.

``phase_task`` takes the recording's ``RecordingWork``, the phase class and the run's
``PhaseEnv``, and runs the phase through ``run_phase``, which captures what the phase raised
as a typed failure, so nothing is dropped. ``pipeline.configured`` gives each phase its
copy of the task, named after the phase. Prefect retries a task only for causes known to
be transient.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import Task, task
from prefect.cache_policies import NO_CACHE

from emoforge.flows.leases import released
from emoforge.flows.phase import Phase, PhaseEnv, run_phase
from emoforge.flows.work import RecordingWork
from emoforge.storage.records import ErrorKind


def escaped_kind(state_name: str | None) -> ErrorKind:
    """Kind of a phase task that failed past its retries (its exception escaped the phase).

    Prefect names a run that passed ``timeout_seconds`` ``TimedOut``: that may pass, so it is
    retried on resume. A crash or a lost worker (``state_name`` None) is ``internal``."""
    return ErrorKind.timeout if state_name == "TimedOut" else ErrorKind.internal


def _transient(task_: object, task_run: object, state: Any) -> bool:
    """Retry only exceptions whose cause is known to pass (I/O hiccups, timeouts)."""
    try:
        state.result()
    except (TimeoutError, ConnectionError):
        return True
    except Exception:
        return False  # anything else is deterministic: retrying would fail the same way
    return False


@task(cache_policy=NO_CACHE, retry_condition_fn=_transient, retries=1)
@released
def phase_task(work: RecordingWork, phase: type[Phase], env: PhaseEnv) -> RecordingWork:
    return run_phase(phase(env), work)


PhaseTask = Task[[RecordingWork, type[Phase], PhaseEnv], RecordingWork]


def named(phase: PhaseTask, uri: str) -> PhaseTask:
    """The task with its runs named after the recording (braces escaped for Prefect's format)."""
    label = Path(uri).name.replace("{", "{{").replace("}", "}}")
    return phase.with_options(task_run_name=f"{phase.name}[{label}]")
