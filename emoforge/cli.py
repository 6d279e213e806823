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

from emoforge.commands.corpus import CORPUS_HELP, corpus_root

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
    "emoforge.commands.maintenance",
    "emoforge.commands.quality",
    "emoforge.commands.release",
    "emoforge.commands.schedule",
    "emoforge.commands.terms",
)


@app.callback()
def _main(
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Debug logging, and native libraries' log lines on the terminal.")
    ] = False,
) -> None:
    if not verbose:
        from emoforge.nativelog import route_native_stderr

        route_native_stderr()  # before basicConfig: its handler keeps the stream it is given
    existing = set(logging.getLogger().handlers)
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for handler in set(logging.getLogger().handlers) - existing:
        # A library that sets its own logger to INFO (pytorch_lightning) would still print here.
        handler.setLevel(logging.DEBUG if verbose else logging.WARNING)
    from emoforge.storage.secrets import SECRET_FILTER

    for handler in logging.getLogger().handlers:
        # On the handler, not a logger: third-party loggers (openai, httpx, prefect) that log a
        # request with its key pass through here too.
        if SECRET_FILTER not in handler.filters:
            handler.addFilter(SECRET_FILTER)


@app.command()
def annotate(
    inputs: Annotated[
        list[str],
        typer.Argument(help="Media files, folders, CSV/JSONL manifests, or URLs (one ending in / is a folder)."),
    ],
    # A str, not a Path: Path("s3://bucket/corpus") would collapse the URL to "s3:/bucket/corpus".
    out: Annotated[str, typer.Option("--out", "-o", help="Corpus directory or fsspec URL (created; reruns resume).")],
    config: Annotated[Path | None, typer.Option("--config", "-c", help="YAML merged over the defaults.")] = None,
    retry: Annotated[str, typer.Option(help="Redo committed failures: transient, all, none.")] = "transient",
    workers: Annotated[int | None, typer.Option(help="Recordings processed in parallel.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Estimate calls, tokens and cost; write nothing.")] = False,
    wait: Annotated[bool, typer.Option("--wait", help="If another run is writing --out, wait for it to end.")] = False,
    input_root: Annotated[
        Path | None,
        typer.Option(
            "--input-root",
            help="Folder every local input must lie in (default: each manifest's or folder's own); "
            "inputs outside it become outside_input_root failure rows and are never read.",
        ),
    ] = None,
) -> None:
    """Annotate media into Parquet shards (resumable: rerun the same command after a crash)."""
    from emoforge.configs import ConfigError
    from emoforge.flows.config import load_checked

    if retry not in ("transient", "all", "none"):
        raise typer.BadParameter("--retry must be transient, all or none")
    policy = cast("RetryPolicy", retry)
    overrides: dict[str, Any] = {"run": {"workers": workers}} if workers else {}
    try:
        cfg = load_checked(config, overrides)
    except ConfigError as exc:
        console.print(f"error: {exc}", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(2) from exc
    from emoforge.storage.inputs import MEDIA_SUFFIXES, InputError, discover_inputs

    try:  # a missing path is reported before a run is recorded or Prefect starts
        found = discover_inputs(inputs, input_root, cfg.inputs)
    except InputError as exc:
        console.print(f"error: {exc}", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(2) from exc
    if not found:  # an empty corpus would say nothing of why
        console.print(
            f"error: no media in {', '.join(inputs)} (a folder is searched for "
            f"{', '.join(sorted(MEDIA_SUFFIXES))} files)",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(2)
    if dry_run:
        from emoforge.flows.estimate import estimate_cost

        estimate = estimate_cost(inputs, cfg, input_root)
        typer.echo(estimate.model_dump_json(indent=2))
        if estimate.ceiling:
            typer.echo("adaptive policy: these figures are the ceiling (every agent on every segment)", err=True)
        for line in estimate.provider_problems:
            typer.echo(f"warning: {line} (annotate refuses to run until it is fixed)", err=True)
        return
    from emoforge.agents.preflight import provider_problems

    problems = provider_problems(cfg)  # before the first call: no run of typed model_unavailable rows
    for problem in problems:
        console.print(f"error: {problem.line()}", markup=False, highlight=False, soft_wrap=True)
    if problems:
        raise typer.Exit(2)
    from emoforge.flows.annotate import annotate_corpus
    from emoforge.flows.runners import EXIT_INTERRUPTED, prompt_interrupt, start_temporary_server, task_runner
    from emoforge.refusals import quiet_refusals
    from emoforge.storage.lock import CorpusLocked, wait_until_free
    from emoforge.storage.safe_files import UnsafePathError
    from emoforge.storage.shards import CorpusWriteError

    lock_wait_s = None if wait else 0.0
    try:  # refuse before Prefect starts; the writer takes the lock itself (and catches a race)
        wait_until_free(out, lock_wait_s)
    except CorpusLocked as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(3) from exc
    except UnsafePathError as exc:  # links planted in a corpus from someone else
        console.print(f"error: {exc}", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(2) from exc

    def notice() -> None:
        console.print(
            f"interrupted: stopping; finished recordings are committed. Rerun the same command to resume {out}",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )

    try:
        refusals = (CorpusLocked, InputError, CorpusWriteError, UnsafePathError)
        with prompt_interrupt(notice=notice), quiet_refusals(*refusals):
            start_temporary_server()  # from the main thread, so it dies with this process
            summary = _run_annotate(annotate_corpus.with_options(task_runner=task_runner(cfg.run)), {
                "inputs": [str(i) for i in inputs], "out": out, "config_path": str(config) if config else None,
                "overrides": overrides or None, "retry": policy, "lock_wait_s": lock_wait_s,
                "input_root": str(input_root) if input_root else None,
            })  # fmt: skip
    except KeyboardInterrupt:
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except (CorpusLocked, InputError, UnsafePathError) as exc:
        console.print(f"error: {exc}", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(3 if isinstance(exc, CorpusLocked) else 2) from exc
    except CorpusWriteError as exc:  # disk full: committed rows are intact, the rerun resumes
        console.print(f"error: {exc}", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(1) from exc
    _print_summary(summary.model_dump())
    typer.echo(f"shards:   {out.rstrip('/')}/shard-*.parquet ({len(summary.shards)} files)")
    typer.echo(f"manifest: {out.rstrip('/')}/manifest.json")


def _run_annotate(flow: Any, params: dict[str, Any]) -> Any:
    """Run the annotate flow with a progress bar fed by its progress events."""
    from emoforge.flows.annotate import add_progress_hook, remove_progress_hook

    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[last]}"),
        console=console,
        transient=False,
    ) as progress:
        bar = progress.add_task("annotating", total=None, last="")

        def hook(event: str, data: dict[str, Any]) -> None:
            if event == "start":
                progress.update(bar, total=data["total"])
            elif event == "recording":
                progress.update(bar, advance=1, last=Path(data["uri"]).name)

        add_progress_hook(hook)
        try:
            return flow(**params)
        finally:
            remove_progress_hook(hook)


def _print_summary(summary: dict[str, Any]) -> None:
    console.print(f"[bold]run[/bold] {summary['run_id']}")
    table = Table(show_header=False)
    for key in ("recordings", "rows_written", "rows_skipped", "needs_review"):
        table.add_row(key, str(summary[key]))
    if summary.get("rows_pending"):  # batch-mode votes at the provider: rerun to collect them
        table.add_row("rows_pending", str(summary["rows_pending"]))
    if summary.get("recordings_waiting"):  # not decoded: every batch they wait on is still running
        table.add_row("recordings_waiting", str(summary["recordings_waiting"]))
    for group in ("status", "failures", "annotations"):
        for k, v in sorted(summary[group].items()):
            table.add_row(f"{group}.{k}", str(v))
    console.print(table)
    if summary.get("ledger"):
        _print_ledger(summary["ledger"])
    _print_failures(summary["run_id"], summary.get("out", ""), summary.get("failure_digest") or {})


def _print_failures(run_id: str, out: str, digest: dict[str, Any]) -> None:
    """Per failure kind, the first files and why (storage/failures.py), and where to see them all."""
    from emoforge.storage.failures import FailureDigest

    lines = FailureDigest.model_validate(digest).lines()
    if not lines:
        return
    console.print(
        f"failures of {run_id} (first files per kind; all of them: emoforge inspect {out} --failures):",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )
    for line in lines:
        console.print(f"  {line}", markup=False, highlight=False, soft_wrap=True)


def _print_ledger(ledger: dict[str, Any], out: Console | None = None) -> None:
    """The cost ledger (storage/ledger.py): per agent, per token part, per labelled segment."""
    out = out or console
    per = ledger["per_labelled_segment"]
    asked = ledger["calls"] + ledger["calls_saved"]
    saved = f"{ledger['calls_saved']} saved ({ledger['calls_saved'] / asked:.0%})" if asked else "0 saved"
    out.print(
        f"jury: {ledger['segments']} segments ({', '.join(f'{k} {v}' for k, v in sorted(ledger['stops'].items()))}); "
        f"calls {ledger['calls']} made, {saved}; cost {ledger['cost_usd']:.4f} USD "
        f"(~{ledger['saved_usd']:.4f} saved); per labelled segment: "
        + ("n/a (none labelled)" if per["cost_usd"] is None else f"{per['cost_usd']} USD, {per['calls']} calls"),
        markup=False,
        highlight=False,
        soft_wrap=True,
    )
    if ledger["by_agent"]:
        table = Table(title="cost ledger")
        for col in ("agent", "asked", "skipped", "calls", "cached", "in tokens", "out tokens", "USD"):
            table.add_column(col, justify="left" if col == "agent" else "right")
        for name, a in sorted(ledger["by_agent"].items()):
            table.add_row(
                name, *(str(a[k]) for k in ("asked", "skipped", "calls", "cached", "input_tokens", "output_tokens")),
                f"{a['cost_usd']:.4f}",
            )  # fmt: skip
        out.print(table)
    if ledger["by_part"]:
        out.print("tokens by part: " + ", ".join(f"{k} {v}" for k, v in sorted(ledger["by_part"].items())))


@app.command()
def inspect(
    corpus: Annotated[str, typer.Argument(help=CORPUS_HELP)],
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    failures: Annotated[
        bool, typer.Option("--failures", help="List every failure: kind, file and its one-line reason.")
    ] = False,
) -> None:
    """Summarise a corpus: rows, labels, failures, review queue, shards."""
    from emoforge.storage.summary import summarize

    corpus = corpus_root(corpus)
    if failures:
        _list_failures(corpus, as_json)
        return
    info = summarize(corpus)
    if as_json:
        typer.echo(json.dumps(info, indent=2, default=str))
        return
    out = Console()
    out.print(
        f"[bold]{corpus}[/bold]  schema v{info['schema_version']}  "
        f"{info['shards']} shards, {info['rows']} rows, {info['runs']} runs"
    )
    for title, key in (
        ("status", "status"),
        ("labels (a human's where verified)", "labels"),
        ("failures", "failures"),
        ("failed annotations and judgements", "failure_kinds"),
        ("annotations", "annotations"),
        ("review reasons (segments)", "review_reasons"),
    ):
        if info[key]:
            table = Table(title=title)
            table.add_column(title)
            table.add_column("rows", justify="right")
            for k, v in sorted(info[key].items(), key=lambda kv: -kv[1]):
                table.add_row(str(k), str(v))
            out.print(table)
    out.print(
        f"review queue: {info['needs_review']} segments waiting ({info['verified']} verified by a human); "
        f"mean confidence: {info['mean_confidence']}"
    )
    far = info["off_domain"]
    if far["segments"]:
        out.print(
            f"off-domain: {far['segments']} segments ({far['share']:.0%}) where a trained recognizer's input was "
            "unlike its training data (" + ", ".join(f"{k} {v}" for k, v in sorted(far["by_agent"].items())) + ")"
        )
    if info["terms"]:
        _print_terms(info["terms"], out)
    if info["jury"]["segments"]:
        _print_ledger(info["jury"], out)
    if info.get("batches"):
        _print_batches(info["batches"], out)
    if info["problems"]:
        out.print(f"[red]integrity problems: {info['problems']}[/red]")
    if info["failures"] or info["failure_kinds"]:
        hint = f"each failure, its file and why: emoforge inspect {corpus} --failures"
        out.print(hint, markup=False, highlight=False)


def _list_failures(corpus: str, as_json: bool) -> None:
    from emoforge.storage.failures import failure_examples
    from emoforge.storage.shards import read_rows

    examples = sorted(failure_examples(read_rows(corpus)), key=lambda e: (e.kind, e.file, e.row_id))
    if as_json:
        typer.echo(json.dumps([e.model_dump() for e in examples], indent=2))
        return
    for e in examples:
        typer.echo(f"{e.kind}\t{e.row_id}\t{e.line()}")
    typer.echo(f"{len(examples)} failures")


def _print_terms(terms: list[dict[str, Any]], out: Console) -> None:
    """The corpus by licence and consent: what `emoforge export` may publish (release.policy)."""
    table = Table(title="terms of use (licence, consent)")
    for col in ("licence", "consent", "recordings", "rows"):
        table.add_column(col, justify="right" if col in ("recordings", "rows") else "left")
    for t in terms:
        table.add_row(t["licence"], t["consent"], str(t["recordings"]), str(t["rows"]))
    out.print(table)


def _print_batches(batches: list[dict[str, Any]], out: Console) -> None:
    """Provider batches not yet collected (storage/batches.py); state as last polled."""
    table = Table(title="pending batches (collected by the next `emoforge annotate` into this corpus)")
    for col in ("agent", "provider", "id", "requests", "age", "state"):
        table.add_column(col, justify="right" if col in ("requests", "age") else "left")
    for b in batches:
        age = int(b["age_s"])
        shown = f"{age // 3600}h{age % 3600 // 60:02d}m" if age >= 3600 else f"{age // 60}m{age % 60:02d}s"
        table.add_row(b["agent"], b["provider"], b["id"], str(b["requests"]), shown, b["state"])
    out.print(table)


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
    annotate(
        inputs=[str(out / "media")],
        out=str(out / "corpus"),
        config=None,
        retry="transient",
        workers=None,
        dry_run=False,
        wait=False,
    )
    typer.echo(f"labels, failures, review queue: emoforge inspect {out / 'corpus'}")


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
