"""`emoforge agreement DIR` and `emoforge aggregate DIR`.

Commands parse arguments, call ``emoforge.agents`` (agreement, aggregation, calibration),
print, and store the results in the corpus manifest; no statistics are computed here.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Annotated, Any

import typer

from emoforge.commands.corpus import CORPUS_HELP, corpus_root
from emoforge.commands.locking import writer_lock

ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="YAML merged over the defaults.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the full report as JSON.")]
CorpusArg = Annotated[str, typer.Argument(help=CORPUS_HELP)]


def _config(path: Path | None) -> Any:
    from emoforge.configs import ConfigError, load_config

    try:
        return load_config(path)
    except ConfigError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from exc


def _rows(corpus: str) -> list[Any]:
    from emoforge.storage.shards import read_rows

    return list(read_rows(corpus))


def _ctx(cfg: Any) -> Any:
    import emoforge
    from emoforge.configs import config_hash
    from emoforge.storage.records import RunContext

    return RunContext(run_id="aggregate", config_hash=config_hash(cfg), emoforge_version=emoforge.__version__)


def _fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3f}"


def agreement(
    corpus: CorpusArg,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Inter-annotator agreement (alpha, kappa, Spearman; per pair, annotator, modality; vs humans)."""
    from emoforge.quality.agreement import corpus_agreement
    from emoforge.quality.review_priority import priority_deciles
    from emoforge.storage.shards import update_manifest_stats

    corpus = corpus_root(corpus)
    cfg = _config(config)
    with writer_lock(corpus, "agreement"):
        rows = _rows(corpus)
        report = corpus_agreement(rows, human_review=cfg.release.review)
        data = report.model_dump(mode="json")
        update_manifest_stats(str(corpus), "agreement", data)
        deciles = priority_deciles(rows, cfg.release.review)
        update_manifest_stats(str(corpus), "review_priority", deciles.model_dump(mode="json"))
    if as_json:
        typer.echo(json.dumps(data, indent=2))
        return
    typer.echo(
        f"{report.n_segments} segments, {report.n_annotations} valid annotations, agents: {', '.join(report.agents)}"
    )
    for name, value in report.alpha.items():
        typer.echo(f"  Krippendorff's alpha {name:<20} {_fmt(value)}")
    typer.echo(f"  Fleiss' kappa (labels)              {_fmt(report.fleiss_kappa)}")
    for pair in report.pairs:
        typer.echo(
            f"  {pair.a} vs {pair.b}: n={pair.n} kappa={_fmt(pair.kappa)} "
            f"spearman(valence)={_fmt(pair.spearman_valence)}"
        )
    for agent, stats in report.per_annotator.items():
        typer.echo(
            f"  {agent} vs consensus: n={stats.n} failed={stats.failed} "
            f"acc={_fmt(stats.accuracy_vs_consensus)} kappa={_fmt(stats.kappa_vs_consensus)}"
        )
    for modality, where in report.per_modality.items():
        typer.echo(f"  where {modality} is available: n={where.n_segments} alpha={_fmt(where.alpha_nominal)}")
    if report.human:
        vs = report.human["vs_consensus"]
        typer.echo(f"  pipeline vs human: n={vs['n']} kappa={_fmt(vs['kappa'])} accuracy={_fmt(vs['accuracy'])}")
    if deciles.reviewed:
        for line in deciles.table():
            typer.echo(line)
    typer.echo(f"stored under stats.agreement (and stats.review_priority) in {corpus}/manifest.json")


def _references(path: Path | None) -> dict[str, str] | None:
    if path is None:
        return None
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    if rows and not {"segment_id", "label"} <= set(rows[0]):
        raise typer.BadParameter("needs columns segment_id,label", param_hint="--references")
    return {r["segment_id"]: r["label"] for r in rows}


def aggregate(
    corpus: CorpusArg,
    config: ConfigOpt = None,
    judge: Annotated[str | None, typer.Option(help="Use this judge's verdicts as weights.")] = None,
    references: Annotated[
        Path | None, typer.Option(help="CSV segment_id,label of known labels (default: human labels).")
    ] = None,
    min_labelled: Annotated[
        int, typer.Option(help="Refit the pooled vote's per-agent weights with at least this many labelled segments.")
    ] = 30,
    as_json: JsonOpt = False,
) -> None:
    """Corpus-level aggregation (majority, judge-weighted, Dawid-Skene, MACE), the pooled vote
    refitted on human labels, and judge calibration."""
    import fsspec
    import pyarrow as pa
    import pyarrow.parquet as pq

    from emoforge.agents.providers import vote_sources
    from emoforge.agents.recognizers.base import vote_priors
    from emoforge.quality.aggregation.corpus import SIDECAR, CorpusAggregator
    from emoforge.quality.aggregation.pool_fit import PoolRefitter
    from emoforge.quality.calibration import calibration_report, references_from_rows
    from emoforge.quality.label_quality import corpus_label_quality, write_corpus_scores
    from emoforge.storage.shards import update_manifest_stats, write_atomic

    corpus = corpus_root(corpus)
    cfg = _config(config)
    with writer_lock(corpus, "aggregate"):
        rows = _rows(corpus)
        result = CorpusAggregator(cfg.aggregation, judge=judge).run(rows)
        refs = _references(references)
        pool_fit, refitted = PoolRefitter(
            cfg.aggregation,
            _ctx(cfg),
            cfg.agents.taxonomy.labels,
            vote_priors(cfg.agents),
            min_labelled=min_labelled,
            sources=vote_sources(),
        ).run(rows, refs if refs is not None else references_from_rows(rows))
        result = result.model_copy(update={"labels": [*result.labels, *refitted]})
        fs, base = fsspec.core.url_to_fs(str(corpus))
        sink = pa.BufferOutputStream()
        pq.write_table(result.to_table(), sink, compression="zstd")
        # Temp name and rename: a planted aggregation.parquet link is replaced, not written through.
        write_atomic(fs, f"{base.rstrip('/')}/{SIDECAR}", sink.getvalue().to_pybytes())
        stats: dict[str, Any] = {m: s.model_dump(mode="json") for m, s in result.stats.items()}
        stats["sidecar"] = SIDECAR
        update_manifest_stats(str(corpus), "aggregation", stats)
        update_manifest_stats(str(corpus), "pool_fit", pool_fit.model_dump(mode="json"))
        quality = corpus_label_quality(rows, cfg.aggregation, cfg.agents.taxonomy.labels, sources=vote_sources())
        rescored = write_corpus_scores(str(corpus), rows, quality, cfg.storage)
        label_quality = quality.model_dump(mode="json", exclude={"scores"}) | {
            "rows_scored": len(quality.scores),
            "rows_rewritten": rescored,
        }
        update_manifest_stats(str(corpus), "label_quality", label_quality)
        calibration = calibration_report(rows, refs, cfg.aggregation.corpus_methods, judge)
        if calibration.n_labelled_segments:
            update_manifest_stats(str(corpus), "calibration", calibration.model_dump(mode="json"))
    if as_json:
        payload = {
            "aggregation": stats,
            "calibration": calibration.model_dump(mode="json"),
            "label_quality": label_quality,
        }
        typer.echo(json.dumps(payload | {"pool_fit": pool_fit.model_dump(mode="json")}, indent=2))
        return
    for method, s in result.stats.items():
        typer.echo(
            f"{method:<12} tasks={s.n_tasks} vs consensus={_fmt(s.agree_with_consensus)} "
            f"vs majority={_fmt(s.agree_with_majority)} confidence={_fmt(s.mean_confidence)}"
        )
    typer.echo(f"{len(result.labels)} labels -> {corpus}/{SIDECAR}")
    if quality.scores:
        weights = ", ".join(f"{k}={v:.2f}" for k, v in quality.annotator_weights.items())
        typer.echo(
            f"label quality ({quality.scores[next(iter(quality.scores))].method}) refitted on the corpus: "
            f"{len(quality.scores)} rows scored, {rescored} rewritten; annotator weights {weights}"
        )
    else:
        typer.echo(f"label quality not refitted on the corpus ({quality.skipped}); rows keep their phase-5 scores")
    if calibration.n_labelled_segments:
        typer.echo(
            f"calibration on {calibration.n_labelled_segments} labelled segments: "
            f"AUROC(S_final)={_fmt(calibration.auroc['s_final'])}"
        )
        for name, acc in calibration.aggregator_accuracy.items():
            typer.echo(f"  accuracy {name:<16} {_fmt(acc)}")
        typer.echo(
            f"  consensus macro-F1={_fmt(calibration.consensus_macro_f1)} ECE={_fmt(calibration.consensus_ece)} "
            f"labels no annotator gave={calibration.consensus_not_given}"
        )
        for name, acc in calibration.annotator_accuracy.items():
            typer.echo(
                f"  annotator {name:<15} accuracy={_fmt(acc)} "
                f"macro-F1={_fmt(calibration.annotator_macro_f1.get(name))} "
                f"ECE={_fmt(calibration.annotator_ece.get(name))}"
            )
    if pool_fit.fitted:
        typer.echo(
            f"pooled vote refitted on {pool_fit.n_labelled} labelled segments ({pool_fit.n_folds} folds by "
            f"{pool_fit.fold_by}): accuracy {_fmt(pool_fit.accuracy_before)} -> {_fmt(pool_fit.accuracy_after)}, "
            f"ECE {_fmt(pool_fit.ece_before)} -> {_fmt(pool_fit.ece_after)} (sidecar method pooled_fitted); "
            "to use it per segment in the next runs, add to the config:"
        )
        typer.echo(pool_fit.yaml())
    elif pool_fit.n_labelled:
        typer.echo(
            f"pooled vote not refitted: {pool_fit.n_labelled} labelled segments < {pool_fit.min_labelled} "
            "(--min-labelled)"
        )


def register(app: typer.Typer) -> None:
    """Add `agreement` and `aggregate` to the root CLI."""
    app.command("agreement")(agreement)
    app.command("aggregate")(aggregate)
