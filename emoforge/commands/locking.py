"""The corpus lock for commands that write a corpus: a refusal is a message and exit code 3."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import typer

LOCKED_EXIT = 3


@contextlib.contextmanager
def writer_lock(corpus: Path | str, command: str, wait: bool = False) -> Iterator[None]:
    """Hold ``corpus``'s lock for the block; print who holds it and exit 3 if another run does.

    A local path that is not a directory is not locked (nor created): the command reports
    that it is not a corpus.
    """
    from emoforge.storage import lock

    if "://" not in str(corpus) and not Path(corpus).is_dir():
        yield
        return
    from emoforge.storage.safe_files import UnsafePathError

    try:
        release = lock.acquire(str(corpus), command, None if wait else 0.0)
    except lock.CorpusLocked as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(LOCKED_EXIT) from exc
    except UnsafePathError as exc:  # a corpus from someone else with a planted link
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    try:
        yield
    finally:
        release()
