"""The corpus argument of every command that reads one: resolved by one rule, refused with exit 2."""

from __future__ import annotations

from pathlib import Path

import typer

NOT_A_CORPUS_EXIT = 2
CORPUS_HELP = "Corpus folder, its file:// or other fsspec URL, or the folder holding exactly one corpus."


def corpus_root(arg: str | Path) -> str:
    """``arg`` resolved by ``emoforge.storage.locate``; a note goes to stderr, a refusal exits 2."""
    from emoforge.storage.locate import NotACorpus, locate_corpus

    try:
        location = locate_corpus(arg)
    except NotACorpus as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(NOT_A_CORPUS_EXIT) from exc
    if location.note:
        typer.echo(f"note: {location.note}", err=True)
    return location.root
