"""Tool instances leased to tasks: models load once per worker process, not once per run.

A *tool* is what a phase uses to do its job (the segmenter, the feature extractor, the jury,
the judge, the consensus builder); ``lease`` hands the calling task one instance of it."""

from __future__ import annotations

import functools
import threading
from collections import Counter
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

from emoforge.storage.records import RunContext

# (tool class, config reprs) -> instances not leased right now
_FREE: dict[tuple[Any, ...], list[Any]] = {}
_TOOLS_LOCK = threading.Lock()
_BUILDS: Counter[str] = Counter()
_HELD = threading.local()

T = TypeVar("T")
P = ParamSpec("P")
R = TypeVar("R")


def lease(tool: type[T], *args: Any, **kwargs: Any) -> T:
    """A tool instance leased to the calling task: models load once per worker, not per run.

    An instance serves one task at a time, because the vision and ASR runtimes are not safe
    to share between threads; the task's ``released`` wrapper hands it back when the task
    ends, and the next task with the same tool and config (any thread, any later run)
    takes it. So a process builds as many instances of a tool as tasks used it at once,
    and a long-lived process (Dask worker, ``serve``, notebook, benchmark) keeps them.
    """
    key = (tool, *(repr(_reusable(a)) for a in args), *(f"{k}={_reusable(v)!r}" for k, v in sorted(kwargs.items())))
    held: dict[tuple[Any, ...], Any] = _HELD.__dict__.setdefault("leases", {})
    if key in held:
        inst: T = held[key]
        return inst
    with _TOOLS_LOCK:
        free = _FREE.setdefault(key, [])
        pooled: T | None = free.pop() if free else None
    if pooled is None:
        pooled = tool(*args, **kwargs)
        with _TOOLS_LOCK:
            _BUILDS[tool.__name__] += 1
    held[key] = pooled
    return pooled


def released(fn: Callable[P, R]) -> Callable[P, R]:
    """Hand the tool instances a task leased back when it ends (however it ends)."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        finally:
            # Only module-level names here: Dask pickles this closure by value, and a lock or
            # thread-local in it would not pickle (importable functions go by reference).
            _return_leases()

    return wrapper


def _return_leases() -> None:
    held: dict[tuple[Any, ...], Any] = _HELD.__dict__.pop("leases", {})
    with _TOOLS_LOCK:
        for key, inst in held.items():
            _FREE.setdefault(key, []).append(inst)


def _reusable(arg: object) -> object:
    """The run id is left out of the key so a long-lived worker (a Dask worker serving
    several runs) keeps its models; tools use the context only for provenance, which
    carries the config hash and version but not the run id."""
    return arg.model_copy(update={"run_id": ""}) if isinstance(arg, RunContext) else arg


def tool_builds() -> dict[str, int]:
    """Tool instances built in this process, by class: how often models were loaded here."""
    with _TOOLS_LOCK:
        return dict(_BUILDS)
