"""Stage instances leased to tasks: models load once per worker process, not once per run."""

from __future__ import annotations

import functools
import threading
from collections import Counter
from collections.abc import Callable
from typing import Any, TypeVar

from emoforge.storage.records import RunContext

# (stage class, config reprs) -> instances not leased right now
_FREE: dict[tuple[Any, ...], list[Any]] = {}
_STAGES_LOCK = threading.Lock()
_BUILDS: Counter[str] = Counter()
_HELD = threading.local()


def stage(cls: type, *args: Any) -> Any:
    """A stage instance leased to the calling task: models load once per worker, not per run.

    An instance serves one task at a time, because the vision and ASR runtimes are not safe
    to share between threads; the task's ``released`` wrapper hands it back when the task
    ends, and the next task with the same stage and config (any thread, any later run)
    takes it. So a process builds as many instances of a stage as tasks ran it at once,
    and a long-lived process (Dask worker, ``serve``, notebook, benchmark) keeps them.
    """
    key = (cls, *(repr(_reusable(a)) for a in args))
    held: dict[tuple[Any, ...], Any] = _HELD.__dict__.setdefault("leases", {})
    if key in held:
        return held[key]
    with _STAGES_LOCK:
        free = _FREE.setdefault(key, [])
        inst = free.pop() if free else None
    if inst is None:
        inst = cls(*args)
        with _STAGES_LOCK:
            _BUILDS[cls.__name__] += 1
    held[key] = inst
    return inst


F = TypeVar("F", bound=Callable[..., Any])


def released(fn: F) -> F:
    """Hand the stage instances a task leased back when it ends (however it ends)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        finally:
            # Only module-level names here: Dask pickles this closure by value, and a lock or
            # thread-local in it would not pickle (importable functions go by reference).
            _return_leases()

    return wrapper  # type: ignore[return-value]


def _return_leases() -> None:
    held: dict[tuple[Any, ...], Any] = _HELD.__dict__.pop("leases", {})
    with _STAGES_LOCK:
        for key, inst in held.items():
            _FREE.setdefault(key, []).append(inst)


def _reusable(arg: Any) -> Any:
    """The run id is left out of the key so a long-lived worker (a Dask worker serving
    several runs) keeps its models; stages use the context only for provenance, which
    carries the config hash and version but not the run id."""
    return arg.model_copy(update={"run_id": ""}) if isinstance(arg, RunContext) else arg


def stage_builds() -> dict[str, int]:
    """Stage instances built in this process, by class: how often models were loaded here."""
    with _STAGES_LOCK:
        return dict(_BUILDS)
