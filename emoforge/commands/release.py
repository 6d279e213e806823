"""`emoforge review export|import`, `emoforge export`, `emoforge evaluate`, `emoforge report`.

Commands parse arguments, call the workflows in ``emoforge.release`` and ``emoforge.review``,
and print; no logic lives here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from emoforge.commands.corpus import CORPUS_HELP, corpus_root
from emoforge.commands.locking import writer_lock

review_app = typer.Typer(help="Human verification round trip with Label Studio.", no_args_is_help=True)
ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="YAML merged over the defaults.")]
CorpusArg = Annotated[str, typer.Argument(help=CORPUS_HELP)]


def _release_config(config: Path | None, overrides: dict[str, Any] | None = None) -> Any:
    from emoforge.configs import ConfigError
    from emoforge.flows.config import load_checked

    try:
        loaded = load_checked(config, {"release": overrides} if overrides else None)
        return loaded
    except ConfigError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from exc


@review_app.command("export")
def review_export(
    corpus: CorpusArg,
    out: Annotated[Path, typer.Argument(help="Task file to write (JSON).")],
    to: Annotated[str, typer.Option("--to", help="Target tool (labelstudio).")] = "labelstudio",
    audit_fraction: Annotated[float | None, typer.Option(help="Share of unflagged rows to audit.")] = None,
    budget_minutes: Annotated[
        float | None,
        typer.Option(
            "--budget-minutes",
            min=0,
            help="Export the best N minutes of clips (expected label changes per minute, flagged or not; "
            "no audit sample) instead of every flagged row.",
        ),
    ] = None,
    media_dir: Annotated[
        Path | None,
        typer.Option("--media-dir", help="Where to cut each segment's clip and key frames (default: OUT-media/)."),
    ] = None,
    media_url_prefix: Annotated[
        str | None, typer.Option(help="URL prefix of media in tasks, e.g. /data/local-files/?d= (docs/release.md).")
    ] = None,
    media_root: Annotated[
        Path | None, typer.Option(help="Label Studio's LOCAL_FILES_DOCUMENT_ROOT: media paths become relative to it.")
    ] = None,
    config: ConfigOpt = None,
) -> None:
    """Write the review queue (plus an audit sample) as Label Studio tasks and labelling config,
    most expected label changes per minute of review first; each task plays its own segment.
    Rows a human already verified are not sent again."""
    from emoforge.review.exporter import LabelStudioExporter
    from emoforge.review.importer import corpus_taxonomy
    from emoforge.storage.shards import read_manifest, read_rows

    if to != "labelstudio":
        raise typer.BadParameter("only --to labelstudio is supported", param_hint="--to")
    corpus = corpus_root(corpus)
    review: dict[str, Any] = {"audit_fraction": audit_fraction, "media_url_prefix": media_url_prefix}
    review["media_root"] = str(media_root.resolve()) if media_root else None
    overrides = {k: v for k, v in review.items() if v is not None}
    cfg = _release_config(config, {"review": overrides} if overrides else None).release
    try:
        export = LabelStudioExporter(cfg.review).export(
            list(read_rows(str(corpus))),
            corpus_taxonomy(read_manifest(str(corpus))),
            budget_minutes=budget_minutes,
            media_dir=media_dir or out.parent / f"{out.stem}-media",
        )
    except ValueError as exc:  # a media folder outside media_root: Label Studio could not serve it
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    picked = "flagged" if budget_minutes is None else f"best of {budget_minutes:g} min"
    # no "-> OUT" here: with video and audio recordings OUT itself is not written (the lines below name the files)
    typer.echo(f"{len(export.tasks)} tasks ({export.queued} {picked}, {export.audit} audit)")
    if export.verified:
        typer.echo(f"{export.verified} rows already verified by a human: not sent again")
    typer.echo(f"queue: most expected label changes per minute first, ~{export.minutes:.1f} min of review")
    for project, path in export.write(out):
        typer.echo(
            f"{project.kind}: {len(project.tasks)} tasks -> {path}, labelling config -> {path.with_suffix('.xml')}"
        )
    for warning in export.warnings:
        typer.echo(f"warning: {warning}", err=True)


@review_app.command("import")
def review_import(
    corpus: CorpusArg,
    export_file: Annotated[Path, typer.Argument(help="Label Studio JSON export.")],
    strict: Annotated[bool, typer.Option(help="Exit 1 when any item could not be imported.")] = False,
    config: ConfigOpt = None,
) -> None:
    """Attach human labels from a Label Studio export and recompute human agreement."""
    from emoforge.quality.corpus_stats import store_human_agreement
    from emoforge.review.importer import ReviewImporter
    from emoforge.review.parser import load_export, task_file_reason

    corpus = corpus_root(corpus)
    reason = task_file_reason(load_export(export_file)[0])
    if reason:
        typer.echo(f"error: {export_file}: {reason}", err=True)
        raise typer.Exit(2)
    cfg = _release_config(config)
    with writer_lock(corpus, "review import"):
        report = ReviewImporter(cfg.release.review, cfg.storage).run(corpus, export_file)
        agreement, deciles = store_human_agreement(corpus, cfg.release.review)
    typer.echo(
        f"{report.imported} human labels imported into {report.rows_updated} rows "
        f"({report.already_present} already present) from {report.tasks} tasks"
    )
    for p in report.problems:
        typer.echo(f"  skipped task={p.task_id} annotation={p.annotation_id} row={p.row_id}: {p.kind}: {p.message}")
    c = agreement.vs_consensus
    typer.echo(f"human vs consensus: n={c.n} accuracy={c.accuracy} kappa={c.kappa} alpha={c.alpha}")
    for agent, s in agreement.vs_agents.items():
        typer.echo(f"human vs {agent}: n={s.n} accuracy={s.accuracy} kappa={s.kappa}")
    for key, ok in agreement.passed.items():
        typer.echo(f"{key}: {'n/a' if ok is None else ('PASS' if ok else 'FAIL')}")
    if deciles.reviewed:
        for line in deciles.table():
            typer.echo(line)
    if (strict or not report.tasks) and report.problems:  # nothing readable is a failed import
        raise typer.Exit(1)


def export(
    corpus: CorpusArg,
    out: Annotated[Path, typer.Option("--out", "-o", help="Release directory to write.")],
    seed: Annotated[int | None, typer.Option(help="Split seed (default from config).")] = None,
    all_rows: Annotated[bool, typer.Option("--all", help="Include failed and unverified flagged rows.")] = False,
    show_test_labels: Annotated[bool, typer.Option(help="Keep labels in the test split.")] = False,
    group_by: Annotated[
        list[str] | None,
        typer.Option(
            "--group-by", help="source and/or speaker (repeat); default from config. Recordings always group."
        ),
    ] = None,
    answers_out: Annotated[
        Path | None,
        typer.Option("--answers-out", help="Folder for the hidden test answers, outside --out (default: OUT-answers)."),
    ] = None,
    allow_unknown: Annotated[
        bool,
        typer.Option(
            "--allow-unknown",
            help="Publish rows whose licence or consent is unknown, under release.policy.unknown (default: withheld).",
        ),
    ] = False,
    hidden_ids: Annotated[
        str | None,
        typer.Option(
            "--hidden-ids",
            help="Names of hidden test rows: opaque, keep, or auto (opaque when a media path, source, speaker "
            "or id names a label); default from config (auto).",
        ),
    ] = None,
    config: ConfigOpt = None,
) -> None:
    """Write train/validation/test Parquet splits, checksums and a dataset card with its
    datasheet; each row's media is copied, linked, left out (features only) or the row withheld
    as release.policy says for its consent and licence. Hidden test answers go to a separate
    folder that is not part of the release."""
    from emoforge.release.export import export_corpus
    from emoforge.release.writer import ReleaseError

    overrides: dict[str, Any] = {}
    if seed is not None:
        overrides["seed"] = seed
    if all_rows:
        overrides["only_ok"] = False
    if show_test_labels:
        overrides["hide_test_labels"] = False
    if group_by is not None:
        overrides["group_by"] = [g for g in group_by if g != "recording"]
    if hidden_ids is not None:
        overrides["hidden_ids"] = hidden_ids  # validated by the config: a wrong value is one line, exit 2
    corpus = corpus_root(corpus)
    cfg = _release_config(config, overrides).release
    try:
        summary = export_corpus(
            corpus,
            out,
            cfg,
            warn=lambda line: typer.echo(f"warning: {line}", err=True),
            answers_out=answers_out,
            allow_unknown=allow_unknown,
        )
    except ReleaseError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    for split, counts in summary.counts.items():
        typer.echo(f"{split:<11}{sum(counts.values()):>6} rows  {dict(sorted(counts.items()))}")
    if summary.excluded:
        typer.echo(f"left out: {summary.excluded}")
    for c in summary.policy:
        typer.echo(
            f"terms: consent {c.consent}, licence {c.licence_class} -> {c.action} ({c.reason}): "
            f"{c.rows} rows, {c.recordings} recordings"
        )
    for warning in summary.warnings:
        typer.echo(f"warning: {warning}", err=True)
    typer.echo(f"release -> {out} ({len(summary.files)} files, SHA256SUMS)")
    if summary.answers:
        typer.echo(f"answers -> {summary.answers} (keep private: not part of the release)")


def evaluate(
    predictions: Annotated[Path, typer.Argument(help="Predictions (.jsonl/.json/.parquet) with row_id, label.")],
    answers: Annotated[Path, typer.Option("--answers", help="Answer file of a release (OUT-answers/test.jsonl).")],
    json_out: Annotated[Path | None, typer.Option("--json-out", help="Also write the metrics as JSON.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    corpus: Annotated[
        str | None,
        typer.Option("--corpus", help="Corpus holding the predicted rows: measure faithfulness by re-asking --agent."),
    ] = None,
    agent: Annotated[
        str | None, typer.Option("--agent", help="Jury agent (corpus config or --config) that made the predictions.")
    ] = None,
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="Config whose jury holds --agent (default: the corpus's).")
    ] = None,
    include_paid: Annotated[
        bool,
        typer.Option(
            "--include-paid", help="Also re-ask a paid LLM agent (2 + cited modalities calls per answer row)."
        ),
    ] = False,
    budget_usd: Annotated[
        float | None,
        typer.Option("--budget-usd", min=0, help="Most the paid re-asks may cost (needed with --include-paid)."),
    ] = None,
    trust_corpus_config: Annotated[
        bool,
        typer.Option(
            "--trust-corpus-config",
            help="Without --config, let the corpus's stored config name servers (base_url) and key variables "
            "(api_key_env): only for a corpus you made.",
        ),
    ] = False,
) -> None:
    """Accuracy, F1, set F1, ROUGE-L/BLEU of rationales, evidence coverage and faithfulness."""
    from emoforge.release.evaluate import Evaluator, load_answers, load_items
    from emoforge.release.reask import measure_faithfulness, stored_config, with_budget

    try:
        items, gold = load_items(predictions), load_answers(answers)
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    report = Evaluator().evaluate(items, gold)
    if (corpus is None) != (agent is None):
        typer.echo("--corpus and --agent go together: the agent is re-asked on the corpus's rows", err=True)
        raise typer.Exit(2)
    if include_paid and budget_usd is None:
        typer.echo("--include-paid needs --budget-usd: paid re-asks cost money per answer row", err=True)
        raise typer.Exit(2)
    if corpus is not None and agent is not None:
        root = corpus_root(corpus)
        # Only the answer rows: the other predicted rows' labels are public, and each costs calls.
        answered = {rid: item for rid, item in items.items() if rid in gold}
        try:
            cfg = _release_config(config) if config is not None else stored_config(root, trust_corpus_config)
            measured = measure_faithfulness(root, agent, with_budget(cfg, budget_usd), include_paid, answered)
        except ValueError as exc:  # ReaskRefused among them
            typer.echo(str(exc), err=True)
            raise typer.Exit(2) from exc
        report = report.with_measured(measured)
    if json_out:
        from emoforge.storage.safe_files import write_text

        write_text(json_out, report.model_dump_json(indent=2))
    typer.echo(report.model_dump_json(indent=2) if as_json else report.table())


def report(
    corpus: CorpusArg,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="HTML file (default CORPUS/report.html).")] = None,
    config: ConfigOpt = None,
    max_clips: Annotated[
        int,
        typer.Option(
            "--max-clips",
            min=0,
            help="Segments in the clip browser (<out stem>_clips/), most doubtful first; 0: no clip browser.",
        ),
    ] = 200,
) -> None:
    """Write an HTML corpus report with plots, and a clip browser beside it."""
    from emoforge.release.report import CorpusReporter
    from emoforge.storage.safe_files import UnsafePathError

    corpus = corpus_root(corpus)
    if out is None and "://" in corpus:
        typer.echo(f"error: {corpus} is remote: pass --out for the report", err=True)
        raise typer.Exit(2)
    cfg = _release_config(config).release
    try:
        path = CorpusReporter(cfg).write(corpus, out or Path(corpus) / "report.html", max_clips=max_clips)
    except UnsafePathError as exc:  # a corpus from someone else with links where the report goes
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    typer.echo(f"report -> {path}")
    if max_clips:
        typer.echo(f"clips  -> {path.parent / (path.stem + '_clips') / 'index.html'}")


def register(app: typer.Typer) -> None:
    app.add_typer(review_app, name="review")
    app.command("export")(export)
    app.command("evaluate")(evaluate)
    app.command("report")(report)
