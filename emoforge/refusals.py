"""A refusal the CLI reports itself is one line: Prefect must not print its traceback first.

A typed refusal raised inside the annotate flow (another writer took the lock between the
CLI's check and the writer's, a full disk, an input outside the root, a planted link) fails
the flow, and Prefect logs the failure with its traceback at ERROR before the CLI prints its
own one-line message and exits. :func:`quiet_refusals` drops just those log records (the
exception is one of the given types) from Prefect's run loggers while the flow runs; every
other failure is still logged in full.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

# Loggers Prefect logs flow and task run failures on.
RUN_LOGGERS = ("prefect.flow_runs", "prefect.task_runs")


class _DropRefusals(logging.Filter):
    def __init__(self, types: tuple[type[BaseException], ...]) -> None:
        super().__init__()
        self.types = types
        self.names = tuple(t.__name__ for t in types)

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if exc is not None:
            return not isinstance(exc, self.types)
        # "Finished in state Failed('Task run encountered an exception CorpusLocked: ...')"
        message = record.getMessage()
        return not (message.startswith("Finished in state") and any(n in message for n in self.names))


@contextlib.contextmanager
def quiet_refusals(*types: type[BaseException]) -> Iterator[None]:
    """While the block runs, Prefect logs no failure caused by one of ``types``."""
    drop = _DropRefusals(types)
    loggers = [logging.getLogger(name) for name in RUN_LOGGERS]
    for logger in loggers:
        logger.addFilter(drop)
    try:
        yield
    finally:
        for logger in loggers:
            logger.removeFilter(drop)
