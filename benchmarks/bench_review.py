"""Does the review queue put the wrong labels first? -> benchmarks/results/review.json.

    .venv/bin/python benchmarks/bench_review.py [--sets simulated,crema_d,ravdess]

On corpora whose true labels are known, the consensus labels that are wrong are what a
reviewer can fix. Each ordering of the queue is scored by how many of them it puts in front:

* ``label_quality``: expected label changes per minute from the score stored at phase 5
  (``Consensus.label_quality``, CROWDLAB at segment scope; ``emoforge/quality/review_priority.py``);
* ``label_quality_corpus``: the same after ``emoforge aggregate`` refits CROWDLAB across the corpus;
* ``needs_review``: today's queue, the flagged rows first (row-id order, as ``review export``
  wrote them), then the rest;
* ``confidence``: 1 - the consensus confidence per minute (the simplest score, for comparison);
* ``random``: the mean of 200 random orders;
* ``oracle``: the ceiling, every wrong label first (shortest clips first).

Reported per ordering: wrong labels among the first k% of the queue, and labels fixed in the
first hour of review (minutes per clip from ``release.review``: 2 plays + 30 s reading), with
the ratio to random. Sets:

* ``simulated``: ``tests/quality/corpus.py`` (the quality tests' corpus: four face annotators
  of known accuracy, the real offline judge and consensus), 5 seeds x 1,000 segments of 2 s.
* ``crema_d``: three simulated annotators per CREMA-D clip (voice, face, audio-visual), each
  drawing its label from the clip's real human votes in its mode, with the confidence
  calibrated on the even actors (as ``bench_quality.py``); the odd actors' clips, 5 seeds. The
  vote table has no durations: every clip counts 2.5 s (CREMA-D clips run about 1-5 s).
* ``ravdess``: RAVDESS actors 1-12 (720 clips), the real recognizers' votes (voice_model out of
  fold by actor + text_model, ``quality_sets.ravdess_juries``), the real judge and consensus,
  real clip durations.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
sys.path.insert(0, str(REPO))

from emoforge.agents.providers import vote_sources  # noqa: E402
from emoforge.configs.release import ReviewConfig  # noqa: E402
from emoforge.quality.review_priority import QueueItem, review_order, within_budget  # noqa: E402
from emoforge.storage.records import SegmentRow  # noqa: E402

OUT = REPO / "benchmarks" / "results" / "review.json"
TOP = (5, 10, 20, 30, 50)
REVIEW = ReviewConfig()


def with_corpus_scores(rows: list[SegmentRow], labels: Sequence[str]) -> list[SegmentRow]:
    """The rows as ``emoforge aggregate`` leaves them: label quality refitted on the corpus."""
    from emoforge.configs.quality import AggregationConfig
    from emoforge.quality.label_quality import corpus_label_quality

    scores = corpus_label_quality(rows, AggregationConfig(), labels, sources=vote_sources()).scores
    out = []
    for r in rows:
        if r.consensus is not None and r.row_id in scores:
            r = r.model_copy(update={"consensus": r.consensus.model_copy(update={"label_quality": scores[r.row_id]})})
        out.append(r)
    return out


def flag_order(rows: list[SegmentRow]) -> list[QueueItem]:
    """Today's queue: flagged rows first in row-id order (as ``review export`` wrote them)."""
    items = review_order(rows, REVIEW)
    return sorted(items, key=lambda x: (not (x.row.consensus and x.row.consensus.needs_review), x.row.row_id))


def confidence_order(rows: list[SegmentRow]) -> list[QueueItem]:
    plain = [
        r.model_copy(update={"consensus": r.consensus.model_copy(update={"label_quality": None})})
        for r in rows
        if r.consensus is not None
    ]
    return review_order(plain, REVIEW)


def measure(rows: list[SegmentRow], truth: dict[str, str], labels: Sequence[str], seed: int) -> dict[str, Any]:
    """Every ordering's catch of wrong consensus labels (module docstring)."""
    orders: dict[str, list[QueueItem]] = {
        "label_quality": review_order(rows, REVIEW),
        "label_quality_corpus": review_order(with_corpus_scores(rows, labels), REVIEW),
        "needs_review": flag_order(rows),
        "confidence": confidence_order(rows),
    }
    rng = np.random.default_rng(seed)
    base = orders["label_quality"]
    randoms = [[base[i] for i in rng.permutation(len(base))] for _ in range(200)]
    wrong_ids = {
        r.row_id
        for r in rows
        if r.consensus and r.consensus.primary_label and r.consensus.primary_label != truth[r.row_id]
    }
    n, n_wrong = len(base), len(wrong_ids)

    def catch(order: list[QueueItem]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k in TOP:
            head = order[: round(n * k / 100)]
            out[f"wrong_in_top_{k}pct"] = sum(x.row.row_id in wrong_ids for x in head)
        hour = within_budget(order, 60.0)
        out["fixed_first_hour"] = sum(x.row.row_id in wrong_ids for x in hour)
        out["clips_first_hour"] = len(hour)
        return out

    # The ceiling: an order that knew which labels are wrong (the shortest of them first).
    orders["oracle"] = sorted(base, key=lambda x: (x.row.row_id not in wrong_ids, x.minutes, x.row.row_id))
    result: dict[str, Any] = {name: catch(order) for name, order in orders.items()}
    caught = [catch(order) for order in randoms]
    result["random"] = {key: float(np.mean([c[key] for c in caught])) for key in caught[0]}
    flagged = sum(bool(r.consensus and r.consensus.needs_review) for r in rows)
    return {"n": n, "wrong": n_wrong, "flagged": flagged, "orders": result}


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean over seeds, and each ordering's first-hour fixes and top-k catch relative to random."""
    orders = runs[0]["orders"]
    mean = {
        name: {key: round(float(np.mean([r["orders"][name][key] for r in runs])), 2) for key in orders[name]}
        for name in orders
    }
    rand = mean["random"]
    for name, stats in mean.items():
        if name == "random":
            continue
        stats["vs_random_first_hour"] = (
            round(stats["fixed_first_hour"] / rand["fixed_first_hour"], 2) if rand["fixed_first_hour"] else None
        )
        for k in TOP:
            key = f"wrong_in_top_{k}pct"
            stats[f"vs_random_top_{k}pct"] = round(stats[key] / rand[key], 2) if rand[key] else None
    return {
        "n": round(float(np.mean([r["n"] for r in runs])), 1),
        "wrong": round(float(np.mean([r["wrong"] for r in runs])), 1),
        "flagged": round(float(np.mean([r["flagged"] for r in runs])), 1),
        "seeds": len(runs),
        "orders": mean,
    }


# --------------------------------------------------------------------------- sets


def simulated(seeds: int = 5, n: int = 1000) -> dict[str, Any]:
    from tests.quality.corpus import LABELS, simulated_rows

    runs = []
    for seed in range(seeds):
        rows, truth = simulated_rows(n=n, seed=100 + seed, human_every=n + 1)
        runs.append(measure(rows, truth, LABELS, seed))
    return summarise(runs)


def bench_row(
    seg: Any, anns: list[Any], consensus: Any, uri: str, features: Any = None, verdicts: list[Any] | None = None
) -> SegmentRow:
    """A committed-looking row of a benchmark corpus (what the review queue and deciles read)."""
    from emoforge.storage.records import RecordingRef, Status

    return SegmentRow(
        row_id=seg.id, run_id="bench-review", status=Status.ok, segment=seg, features=features,
        annotations=anns, verdicts=verdicts or [], consensus=consensus,
        recording=RecordingRef(id=seg.recording_id, uri=uri, sha256="0" * 64), config_hash="bench",
    )  # fmt: skip


def crema_d(seeds: int = 5, duration_s: float = 2.5) -> dict[str, Any]:
    from bench_quality import crema_votes, ctx

    from emoforge.configs.quality import AggregationConfig
    from emoforge.quality.consensus import ConsensusBuilder
    from emoforge.storage.records import Annotation, Segment

    crema = crema_votes()
    votes, names, counts, test, precision = crema.votes, crema.names, crema.counts, crema.test, crema.precision
    taxonomy = crema.taxonomy
    # No judge reads these simulated answers; their confidences are calibrated, so none is discounted.
    from emoforge.configs.agents import TaxonomyConfig

    builder = ConsensusBuilder(
        AggregationConfig(judge_discount="none"), ctx(), TaxonomyConfig(labels=taxonomy), sources=vote_sources()
    )
    runs = []
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        rows, truth = [], {}
        for c in test:
            seg = Segment(
                id=f"crema-{c.lower().replace('_', '-')}-00000",
                recording_id=f"crema-{c.lower().replace('_', '-')}",
                index=0,
                start_s=0.0,
                end_s=duration_s,
                kind="full",
            )
            truth[seg.id] = names[str(counts["av"].loc[c, "truth"])]
            anns = []
            for mode, frame in counts.items():
                n = frame.loc[c, votes].to_numpy(dtype=float)
                if n.sum() <= 0:
                    continue
                label = names[votes[int(rng.choice(len(votes), p=n / n.sum()))]]
                anns.append(
                    Annotation(
                        id=f"{seg.id}-{mode}",
                        segment_id=seg.id,
                        agent=mode,
                        backend="simulated",
                        labels=[label],
                        primary_label=label,
                        confidence=precision[mode][label],
                        provenance=ctx().provenance(stage="annotate", model=f"crema-d-{mode}-votes"),
                    )
                )
            rows.append(bench_row(seg, anns, builder.build(seg, None, anns, []), f"{c}.flv"))
        runs.append(measure(rows, truth, taxonomy, seed))
    return summarise(runs) | {"clip_duration_s": duration_s}


def ravdess() -> dict[str, Any]:
    from bench_quality import ctx
    from quality_sets import ravdess_juries

    from emoforge.agents.judge import Judge
    from emoforge.agents.recognizers.base import output_prior
    from emoforge.configs.agents import TaxonomyConfig
    from emoforge.configs.quality import AggregationConfig, JudgeConfig
    from emoforge.quality.consensus import ConsensusBuilder

    jury = ravdess_juries()
    judge = Judge(JudgeConfig(), ctx())
    backends = {a.agent: a.backend for j in jury["juries"] for a in j}
    priors = {name: p for name, b in backends.items() if (p := output_prior(b, None)) is not None}
    builder = ConsensusBuilder(AggregationConfig(), ctx(), TaxonomyConfig(), priors, sources=vote_sources())
    rows, truth = [], {}
    for seg, feats, anns, t in zip(jury["segments"], jury["features"], jury["juries"], jury["truth"], strict=True):
        verdicts = judge.score(seg, feats, list(anns))
        truth[seg.id] = t
        consensus = builder.build(seg, feats, list(anns), verdicts)
        rows.append(bench_row(seg, list(anns), consensus, f"{seg.recording_id}.flac", feats, verdicts))
    durations = [r.segment.duration_s for r in rows if r.segment]
    return summarise([measure(rows, truth, TaxonomyConfig().labels, 0)]) | {
        "mean_clip_duration_s": round(float(np.mean(durations)), 2)
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sets", default="simulated,crema_d,ravdess")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    runners: dict[str, Callable[[], dict[str, Any]]] = {"simulated": simulated, "crema_d": crema_d, "ravdess": ravdess}
    previous = json.loads(args.out.read_text()) if args.out.exists() else {}
    sets = dict(previous.get("sets", {}))
    timings = dict(previous.get("seconds", {}))
    for name in [s for s in args.sets.split(",") if s]:
        t0 = time.perf_counter()
        print(f"[review] {name} ...", file=sys.stderr, flush=True)
        sets[name] = runners[name]()
        timings[name] = round(time.perf_counter() - t0, 1)
    result = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "command": "benchmarks/bench_review.py --sets " + args.sets,
        "protocol": (__doc__ or "").split("\n\n")[1],
        "review_minutes": {"plays_per_clip": REVIEW.plays_per_clip, "reading_overhead_s": REVIEW.reading_overhead_s},
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "load_avg": os.getloadavg()},
        "seconds": timings,
        "sets": sets,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    for name, s in sets.items():
        for order, stats in s["orders"].items():
            print(
                f"{name:<10} {order:<21} first hour {stats['fixed_first_hour']:>6} fixed "
                f"(x{stats.get('vs_random_first_hour', 1.0)} random), top 10% {stats['wrong_in_top_10pct']}",
                file=sys.stderr,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
