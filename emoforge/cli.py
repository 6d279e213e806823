"""The ``emoforge`` command line. Commands only parse arguments and call flows or readers."""

from __future__ import annotations

import importlib
import json
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, cast

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

if TYPE_CHECKING:
    from emoforge.flows.work import RetryPolicy

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# Keep the progress bar readable: Prefect's per-task INFO lines and mediapipe/TFLite's
# glog warnings go to stderr by default. Users can raise them again with these variables.
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
os.environ.setdefault("GLOG_minloglevel", "2")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

app = typer.Typer(
    name="emoforge",
    help="Build emotion corpora from raw video and audio with a jury of AI annotators.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
console = Console(stderr=True)

# Sub-command modules each expose ``register(app)``; a missing optional one is not fatal.
COMMAND_MODULES = (
    "emoforge.commands.quality",
    "emoforge.commands.release",
    "emoforge.commands.schedule",
)


@app.callback()
def _main(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging.")] = False,
) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


@app.command()
def annotate(
    inputs: Annotated[list[str], typer.Argument(help="Media files, folders, or CSV/JSONL manifests.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Corpus directory (created; reruns resume).")],
    config: Annotated[Path | None, typer.Option("--config", "-c", help="YAML merged over the defaults.")] = None,
    retry: Annotated[str, typer.Option(help="Redo committed failures: transient, all, none.")] = "transient",
    workers: Annotated[int | None, typer.Option(help="Recordings processed in parallel.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Estimate calls, tokens and cost; write nothing.")] = False,
) -> None:
    """Annotate media into Parquet shards (resumable: rerun the same command after a crash)."""
    from emoforge.configs import ConfigError, load_config

    if retry not in ("transient", "all", "none"):
        raise typer.BadParameter("--retry must be transient, all or none")
    policy = cast("RetryPolicy", retry)
    overrides: dict[str, Any] = {"run": {"workers": workers}} if workers else {}
    try:
        cfg = load_config(config, overrides)
    except ConfigError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from exc
    if dry_run:
        from emoforge.flows.estimate import estimate_cost

        estimate = estimate_cost(inputs, cfg)
        typer.echo(estimate.model_dump_json(indent=2))
        return
    from emoforge.flows.annotate import add_progress_hook, annotate_corpus, remove_progress_hook
    from emoforge.flows.runners import task_runner

    with Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        TextColumn("{task.fields[last]}"), console=console, transient=False,
    ) as progress:
        bar = progress.add_task("annotating", total=None, last="")

        def hook(event: str, data: dict[str, Any]) -> None:
            if event == "start":
                progress.update(bar, total=data["total"])
            elif event == "recording":
                progress.update(bar, advance=1, last=Path(data["uri"]).name)

        add_progress_hook(hook)
        try:
            summary = annotate_corpus.with_options(task_runner=task_runner(cfg.run))(
                inputs=[str(i) for i in inputs],
                out=str(out),
                config_path=str(config) if config else None,
                overrides=overrides or None,
                retry=policy,
            )
        finally:
            remove_progress_hook(hook)
    _print_summary(summary.model_dump())
    typer.echo(f"shards:   {out}")
    typer.echo(f"manifest: {out / 'manifest.json'}")


def _print_summary(summary: dict[str, Any]) -> None:
    console.print(f"[bold]run[/bold] {summary['run_id']}")
    table = Table(show_header=False)
    for key in ("recordings", "rows_written", "rows_skipped", "needs_review"):
        table.add_row(key, str(summary[key]))
    for group in ("status", "failures", "annotations"):
        for k, v in sorted(summary[group].items()):
            table.add_row(f"{group}.{k}", str(v))
    console.print(table)


@app.command()
def inspect(
    corpus: Annotated[Path, typer.Argument(help="Corpus directory written by `emoforge annotate`.")],
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Summarise a corpus: rows, labels, failures, review queue, shards."""
    from emoforge.storage.summary import summarize

    info = summarize(str(corpus))
    if as_json:
        typer.echo(json.dumps(info, indent=2, default=str))
        return
    out = Console()
    out.print(f"[bold]{corpus}[/bold]  schema v{info['schema_version']}  "
              f"{info['shards']} shards, {info['rows']} rows, {info['runs']} runs")
    for title, key in (("status", "status"), ("labels", "labels"), ("failures", "failures"),
                       ("annotations", "annotations")):
        if info[key]:
            table = Table(title=title)
            table.add_column(title)
            table.add_column("rows", justify="right")
            for k, v in sorted(info[key].items(), key=lambda kv: -kv[1]):
                table.add_row(str(k), str(v))
            out.print(table)
    out.print(f"review queue: {info['needs_review']} segments; mean confidence: {info['mean_confidence']}")
    if info["problems"]:
        out.print(f"[red]integrity problems: {info['problems']}[/red]")


@app.command()
def demo(
    out: Annotated[Path, typer.Option("--out", "-o", help="Where to write sample media and the corpus.")] = Path(
        "out/demo"
    ),
) -> None:
    """Generate sample media (speech + video) and annotate it with the offline defaults."""
    from emoforge.samples import make_sample_media

    media = make_sample_media(out / "media")
    typer.echo(f"sample media: {', '.join(p.name for p in media)}")
    annotate(inputs=[str(out / "media")], out=out / "corpus", config=None, retry="transient", workers=None,
             dry_run=False)
    inspect(out / "corpus", as_json=False)


def _register_commands() -> None:
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        module.register(app)


_register_commands()

if __name__ == "__main__":
    app()
