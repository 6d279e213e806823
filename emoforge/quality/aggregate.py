"""The corpus-level aggregation workflow behind ``emoforge aggregate``.

Over a written corpus: every configured corpus aggregator (``CorpusAggregator``), the pooled
vote refitted on known labels (``PoolRefitter``), written together as the sidecar Parquet
file; the label quality refitted on the corpus, rewriting the rows' scores; and the judge's
calibration against known labels. Each result is also stored under ``stats`` in the corpus
manifest. The caller holds the corpus lock and supplies what lives above this layer: the
agents' output priors.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from emoforge.configs import PipelineConfig
from emoforge.quality.aggregation.corpus import SIDECAR, CorpusAggregation
from emoforge.quality.aggregation.pool_fit import PoolFit
from emoforge.quality.calibration import CalibrationReport
from emoforge.quality.label_quality import CorpusLabelQuality
from emoforge.quality.vote_source import VoteSource


@dataclass(frozen=True)
class AggregateReport:
    """What ``aggregate_corpus`` computed and stored."""

    aggregation: CorpusAggregation
    stats: dict[str, Any]  # as stored under stats.aggregation
    pool_fit: PoolFit
    quality: CorpusLabelQuality
    label_quality: dict[str, Any]  # as stored under stats.label_quality
    calibration: CalibrationReport


def aggregate_corpus(
    corpus: str,
    config: PipelineConfig,
    priors: Mapping[str, Mapping[str, float]],
    sources: Mapping[str, VoteSource],
    judge: str | None = None,
    references: Mapping[str, str] | None = None,
    min_labelled: int = 30,
) -> AggregateReport:
    """Run the module docstring's steps on ``corpus``.

    Args:
        corpus: corpus root (local or fsspec URL); the caller holds its writer lock.
        config: its pipeline config (aggregation, taxonomy, storage).
        priors: agent -> output prior (``agents.recognizers.vote_priors``).
        sources: backend -> what its votes rest on (``agents.providers.vote_sources``).
        judge: use this judge's verdicts as weights when rows carry several.
        references: segment id -> known label (default: the rows' human labels).
        min_labelled: fewest labelled segments the pooled vote is refitted on.
    """
    import fsspec
    import pyarrow as pa
    import pyarrow.parquet as pq

    import emoforge
    from emoforge.configs import config_hash
    from emoforge.quality.aggregation.corpus import CorpusAggregator
    from emoforge.quality.aggregation.pool_fit import PoolRefitter
    from emoforge.quality.calibration import calibration_report, references_from_rows
    from emoforge.quality.label_quality import corpus_label_quality, write_corpus_scores
    from emoforge.storage.records import RunContext
    from emoforge.storage.shards import read_rows, update_manifest_stats, write_atomic

    rows = list(read_rows(corpus))
    result = CorpusAggregator(config.aggregation, judge=judge).run(rows)
    ctx = RunContext(run_id="aggregate", config_hash=config_hash(config), emoforge_version=emoforge.__version__)
    labels = config.agents.taxonomy.labels
    pool_fit, refitted = PoolRefitter(
        config.aggregation, ctx, labels, priors, min_labelled=min_labelled, sources=sources
    ).run(rows, references if references is not None else references_from_rows(rows))
    result = result.model_copy(update={"labels": [*result.labels, *refitted]})
    fs, base = fsspec.core.url_to_fs(corpus)
    sink = pa.BufferOutputStream()
    pq.write_table(result.to_table(), sink, compression="zstd")
    # Temp name and rename: a planted aggregation.parquet link is replaced, not written through.
    write_atomic(fs, f"{base.rstrip('/')}/{SIDECAR}", sink.getvalue().to_pybytes())
    stats: dict[str, Any] = {m: s.model_dump(mode="json") for m, s in result.stats.items()}
    stats["sidecar"] = SIDECAR
    update_manifest_stats(corpus, "aggregation", stats)
    update_manifest_stats(corpus, "pool_fit", pool_fit.model_dump(mode="json"))
    quality = corpus_label_quality(rows, config.aggregation, labels, sources=sources)
    rescored = write_corpus_scores(corpus, rows, quality, config.storage)
    label_quality = quality.model_dump(mode="json", exclude={"scores"}) | {
        "rows_scored": len(quality.scores),
        "rows_rewritten": rescored,
    }
    update_manifest_stats(corpus, "label_quality", label_quality)
    calibration = calibration_report(rows, references, config.aggregation.corpus_methods, judge)
    if calibration.n_labelled_segments:
        update_manifest_stats(corpus, "calibration", calibration.model_dump(mode="json"))
    return AggregateReport(result, stats, pool_fit, quality, label_quality, calibration)
