"""`emoforge terms`: give a committed corpus its clips' terms of use without annotating again."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from emoforge.commands.locking import writer_lock


def terms(
    corpus: Annotated[Path, typer.Argument(help="Corpus directory.")],
    inputs: Annotated[list[str], typer.Argument(help="The media files, folders or manifests it was annotated from.")],
    input_root: Annotated[
        Path | None, typer.Option("--input-root", help="Folder every local input must lie in (as for annotate).")
    ] = None,
    config: Annotated[Path | None, typer.Option("--config", "-c", help="YAML with inputs.terms rules.")] = None,
) -> None:
    """Set the licence, consent, attribution and source_url of committed rows from the inputs'
    manifests, terms.json files and inputs.terms (new terms win field by field)."""
    from emoforge.configs import ConfigError
    from emoforge.flows.config import load_checked
    from emoforge.storage.inputs import InputError
    from emoforge.storage.terms_update import update_terms

    try:
        cfg = load_checked(config)
    except ConfigError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from exc
    with writer_lock(corpus, "terms"):
        try:
            done = update_terms(str(corpus), inputs, cfg.inputs, cfg.storage, input_root)
        except InputError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from exc
    typer.echo(f"{done.rows_updated} rows of {done.recordings_updated} recordings got new terms")
    for uri in done.unmatched:
        typer.echo(f"warning: {uri}: no committed recording has this path", err=True)


def register(app: typer.Typer) -> None:
    app.command("terms")(terms)
