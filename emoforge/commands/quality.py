"""`emoforge agreement DIR` and `emoforge aggregate DIR`.

Commands parse arguments, call the workflows in ``emoforge.quality`` under the corpus lock,
and print what they stored in the corpus manifest; no statistics are computed here.
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
    from emoforge.configs import ConfigError
    from emoforge.flows.config import load_checked

    try:
        config = load_checked(path)
        return config
    except ConfigError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from exc


def _fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3f}"


def agreement(
    corpus: CorpusArg,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Inter-annotator agreement (alpha, kappa, Spearman; per pair, annotator, modality; vs humans)."""
    from emoforge.quality.corpus_stats import store_agreement

    corpus = corpus_root(corpus)
    cfg = _config(config)
    with writer_lock(corpus, "agreement"):
        report, deciles = store_agreement(corpus, cfg.release.review)
    if as_json:
        typer.echo(json.dumps(report.model_dump(mode="json"), indent=2))
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
    """Corpus-level aggregation (every aggregator in aggregation.corpus_methods), the pooled vote
    refitted on human labels, and judge calibration."""
    from emoforge.agents.providers import vote_sources
    from emoforge.agents.recognizers.base import vote_priors
    from emoforge.quality.aggregate import aggregate_corpus
    from emoforge.quality.aggregation.corpus import SIDECAR

    corpus = corpus_root(corpus)
    cfg = _config(config)
    refs = _references(references)
    with writer_lock(corpus, "aggregate"):
        done = aggregate_corpus(corpus, cfg, vote_priors(cfg.agents), vote_sources(), judge, refs, min_labelled)
    result, quality, label_quality = done.aggregation, done.quality, done.label_quality
    calibration, pool_fit = done.calibration, done.pool_fit
    if as_json:
        payload = {
            "aggregation": done.stats,
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
            f"{len(quality.scores)} rows scored, {label_quality['rows_rewritten']} rewritten; "
            f"annotator weights {weights}"
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
