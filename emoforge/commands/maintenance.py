"""`emoforge verify` and `emoforge compact`: corpus maintenance (storage/shards/, storage/compaction.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from emoforge.commands.corpus import CORPUS_HELP, corpus_root
from emoforge.commands.locking import LOCKED_EXIT

Corpus = Annotated[str, typer.Argument(help=CORPUS_HELP)]
Wait = Annotated[bool, typer.Option("--wait", help="If another run is writing the corpus, wait for it to end.")]


def verify(
    corpus: Corpus,
    repair: Annotated[
        bool, typer.Option("--repair", help="Move the shards that fail to quarantine/; the next run redoes their rows.")
    ] = False,
    wait: Wait = False,
) -> None:
    """Hash every shard against the manifest (readers only check size and footer). Exit 1 on a problem."""
    from emoforge.storage.lock import CorpusLocked
    from emoforge.storage.shards import repair as repair_corpus
    from emoforge.storage.shards import verify as verify_corpus

    corpus = corpus_root(corpus)
    if repair:
        try:
            moved = repair_corpus(corpus, None if wait else 0.0)
        except CorpusLocked as exc:
            typer.echo(str(exc), err=True)
            raise typer.Exit(LOCKED_EXIT) from exc
        for name in moved:
            typer.echo(f"quarantined {name}")
    problems = verify_corpus(corpus, full=True)
    for problem in problems:
        typer.echo(problem)
    if problems:
        raise typer.Exit(1)
    typer.echo("ok: every shard matches its sha256")


def compact(
    corpus: Corpus,
    target_rows: Annotated[
        int | None, typer.Option(help="Rows per shard (default: storage.max_rows_per_shard).")
    ] = None,
    target_mb: Annotated[
        float | None, typer.Option(help="Uncompressed MB per shard (default: storage.max_bytes_per_shard).")
    ] = None,
    config: Annotated[Path | None, typer.Option("--config", "-c", help="YAML merged over the defaults.")] = None,
    wait: Wait = False,
) -> None:
    """Merge small shards and drop superseded row copies (each row id once), atomically."""
    from emoforge.flows.config import load_checked
    from emoforge.storage.compaction import compact as compact_corpus
    from emoforge.storage.lock import CorpusLocked

    corpus = corpus_root(corpus)
    cfg = load_checked(config)
    try:
        report = compact_corpus(
            corpus,
            cfg.storage,
            target_rows=target_rows,
            target_bytes=int(target_mb * (1 << 20)) if target_mb else None,
            lock_wait_s=None if wait else 0.0,
        )
    except CorpusLocked as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(LOCKED_EXIT) from exc
    typer.echo(json.dumps(report.model_dump(exclude={"replaced", "written"}), indent=2))


def register(app: typer.Typer) -> None:
    app.command("verify")(verify)
    app.command("compact")(compact)
