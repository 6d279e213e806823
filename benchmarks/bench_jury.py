"""Full jury vs adaptive jury: paid calls, cost and accuracy -> benchmarks/results/jury.json.

    .venv/bin/python benchmarks/bench_jury.py [--segments 600] [--seeds 3] [--sets ...]

Both policies see the same votes: every annotator's answer on every segment is drawn once
per seed, then the full jury asks everyone and the adaptive jury (``agents/adaptive.py``)
asks what its policy buys. What runs is the real thing: ``AdaptiveJury`` on a real ``Jury``
(pool, ledger), the offline rules judge, the pooled ``ConsensusBuilder``; only the
annotators are scripted (``tests/agents/scripted_jury.py``), with known accuracy and price.

Sets:
* ``simulated``: a corpus with known truth (tests/quality/corpus.py): faces whose action
  units show the true emotion (at a random strength), two free calibrated recognizers
  (face 0.60, voice 0.50 accuracy) and three paid LLM agents (0.70, 0.80, 0.90 accuracy at
  0.0003, 0.001 and 0.01 USD a call). Each stated confidence is the agent's accuracy;
  rationales cite the action units of the label given (wrong answers cite what the face
  does not show, so the judge can object), a quarter of them vague. Segment difficulty
  after GLAD (Whitehill et al. 2009); ``simulated_uniform``: every segment equally hard;
  ``simulated_no_judge``: ``simulated`` with the judge and its discount off.
* ``crema_d``: real human votes (``$EMOFORGE_FIXTURES/labels/crema_d_tabulated_votes.csv``,
  as in bench_quality.py): per clip, a free voice-only and a free face-only rater and three
  paid audio-visual raters, each one label drawn from that clip's real votes in its mode,
  with the confidence P(intended | label) of its mode measured on the even actors; scored
  on the odd actors. The policy's accuracies are the modes' measured accuracies.
* ``ravdess``: the fixtures with the offline jury. RAVDESS actors 1-12 (720 clips), the
  free round being the real offline agents' real answers (voice_model out of fold by actor,
  text_model; as in bench_quality.py), then the three paid agents of ``simulated``, scripted
  (no API here) without rationales, so the judge is off.

Per set and objective (``usd``, the default, and ``calls``): accuracy of the consensus (all
segments, and the labelled ones: not in the review queue), paid calls, USD, USD and calls
per labelled segment, the review queue, and a sweep of the objective's knob. Besides the
sets, ``bayes_reference``: the same plan where its model is exact (``bayes_reference``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from emoforge.agents.adaptive import AdaptiveJury  # noqa: E402
from emoforge.agents.judge import Judge  # noqa: E402
from emoforge.agents.policy import AdaptivePolicy, Offer  # noqa: E402
from emoforge.agents.providers import vote_sources  # noqa: E402
from emoforge.configs.agents import AdaptiveConfig, TaxonomyConfig  # noqa: E402
from emoforge.configs.quality import AggregationConfig, JudgeConfig  # noqa: E402
from emoforge.quality.consensus import ConsensusBuilder  # noqa: E402
from emoforge.storage.records import Cue, Features, RunContext, Segment  # noqa: E402
from tests.agents.scripted_jury import ScriptedAnnotator, scripted_jury  # noqa: E402

OUT = REPO / "benchmarks" / "results" / "jury.json"
CTX = RunContext(run_id="bench-jury", config_hash="bench", emoforge_version="bench")
# The adaptive policy as benchmarked: the shipped defaults (configs/agents.py AdaptiveConfig).
POLICY = AdaptiveConfig()


def fixtures() -> Path:
    return Path(os.environ.get("EMOFORGE_FIXTURES", REPO.parent / "shared" / "fixtures")).resolve()


@dataclass(frozen=True)
class Juror:
    name: str
    backend: str
    price_usd: float  # per call; 0 = free (offline)
    accuracy: float  # the policy's calibrated accuracy of its votes


@dataclass
class Case:
    """One seed of one set: segments, truth, jurors and the votes they will give."""

    labels: list[str]
    segments: list[tuple[Segment, Features]]
    truth: dict[str, str]
    jurors: list[Juror]
    votes: dict[str, dict[str, tuple[str, float]]]  # juror -> segment id -> (label, confidence)
    rationale: Callable[[Segment, str], tuple[list[str], list[Cue]]] | None = None
    judge: bool = True
    aggregation: AggregationConfig = field(default_factory=AggregationConfig)
    priors: dict[str, dict[str, float]] = field(default_factory=dict)  # agent -> output prior (recognizers)
    replay: dict[str, dict[str, Any]] = field(default_factory=dict)  # free agent -> segment id -> real Annotation


class Replay(ScriptedAnnotator):
    """A free agent that answers with the real annotation an offline agent gave the segment."""

    def __init__(self, name: str, answers: dict[str, Any], ctx: RunContext, backend: str) -> None:
        super().__init__(name, {}, 0.0, ctx, backend)
        self.answers = answers

    def annotate(self, segment: Segment, features: Features, clip: Any = None) -> Any:
        return self.answers[segment.id]


def run_policy(case: Case, policy: str, config: AdaptiveConfig = POLICY) -> dict[str, Any]:
    """The metrics of one policy on one case (module docstring)."""
    annotators = [
        Replay(j.name, case.replay[j.name], CTX, j.backend)
        if j.name in case.replay
        else ScriptedAnnotator(j.name, case.votes[j.name], j.price_usd, CTX, j.backend, case.rationale)
        for j in case.jurors
    ]
    jury = scripted_jury(annotators, CTX, case.labels)
    judge = Judge(JudgeConfig(), CTX) if case.judge else None
    score = judge.score if judge is not None else (lambda s, f, a: [])
    taxonomy = TaxonomyConfig(labels=case.labels, embedding_model=None)
    builder = ConsensusBuilder(case.aggregation, CTX, taxonomy, case.priors, sources=vote_sources())
    try:
        if policy == "full":
            results: list[tuple[list[Any], Any]] = [(jury.annotate(s, f), None) for s, f in case.segments]
        else:
            accuracy = {j.name: j.accuracy for j in case.jurors if j.price_usd > 0}
            rule = AdaptivePolicy(config.model_copy(update={"accuracy": accuracy}), len(case.labels))
            results = list(AdaptiveJury(jury, rule, score, builder.build).run(case.segments))
    finally:
        jury.close()
    right, right_labelled, review, stops = [], [], 0, Counter()
    for (seg, feats), (anns, decision) in zip(case.segments, results, strict=True):
        consensus = builder.build(seg, feats, anns, score(seg, feats, anns))  # the judge and aggregate phases
        in_review = consensus.needs_review or (decision is not None and decision.route == "review")
        ok = consensus.primary_label == case.truth[seg.id]
        right.append(ok)
        if in_review:
            review += 1
        else:
            right_labelled.append(ok)
        stops[decision.stop if decision is not None else "full_jury"] += 1
    calls = sum(len(a.calls) for a in annotators)
    cost = sum(len(a.calls) * a.price_usd for a in annotators)
    labelled = len(case.segments) - review
    return {
        "segments": len(case.segments),
        "accuracy": float(np.mean(right)),
        "accuracy_labelled": float(np.mean(right_labelled)) if right_labelled else None,
        "paid_calls": calls,
        "paid_calls_per_segment": calls / len(case.segments),
        "cost_usd": cost,
        "review_queue": review,
        "labelled": labelled,
        "cost_per_labelled_segment_usd": cost / labelled if labelled else None,
        "calls_per_labelled_segment": calls / labelled if labelled else None,
        "calls_by_agent": {a.name: len(a.calls) for a in annotators if a.price_usd > 0},
        "stops": dict(stops),
    }


def compare(
    cases: Sequence[Case], config: AdaptiveConfig = POLICY, full: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """Both policies on every case, averaged over the cases (seeds), and the targets.
    ``full``: the full jury's runs of the same cases, when already computed."""
    runs = {
        "full": full if full is not None else [run_policy(case, "full") for case in cases],
        "adaptive": [run_policy(case, "adaptive", config) for case in cases],
    }
    out: dict[str, Any] = {name: _mean(rs) for name, rs in runs.items()}
    full_mean, adaptive = out["full"], out["adaptive"]
    saved = 1 - adaptive["paid_calls"] / full_mean["paid_calls"] if full_mean["paid_calls"] else 0.0
    drop = round(100 * (full_mean["accuracy"] - adaptive["accuracy"]), 2)
    out["paid_calls_saved"] = round(saved, 4)
    out["cost_saved"] = round(1 - adaptive["cost_usd"] / full_mean["cost_usd"], 4) if full_mean["cost_usd"] else 0.0
    out["accuracy_drop_points"] = drop
    out["review_queue_change"] = round(adaptive["review_queue"] - full_mean["review_queue"], 2)
    out["targets"] = {
        "paid_calls_saved_at_least_40pct": saved >= 0.40,
        "accuracy_drop_at_most_1_point": drop <= 1.0,
        "review_queue_no_larger": adaptive["review_queue"] <= full_mean["review_queue"],
    }
    out["_full_runs"] = runs["full"]
    return out


# Each objective's knob, swept with the rest as shipped (configs/agents.py AdaptiveConfig).
SWEEPS: dict[str, tuple[str, tuple[float, ...]]] = {
    "usd": ("label_value_usd", (0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0)),
    "calls": ("min_gain_per_call", (0.01, 0.02, 0.05, 0.1, 0.15)),
}
KEYS = ("paid_calls_saved", "cost_saved", "accuracy_drop_points", "review_queue_change", "targets")


def evaluate(cases: Sequence[Case]) -> dict[str, Any]:
    """The full jury; the adaptive one under each objective as shipped (``usd`` is the
    default), and the trade-off as that objective's knob moves."""
    first = compare(cases)
    full = first.pop("_full_runs")
    out: dict[str, Any] = {"full": first["full"]}
    for objective, (knob, values) in SWEEPS.items():
        shipped = POLICY.model_copy(update={"objective": objective})
        r = first if objective == POLICY.objective else compare(cases, shipped, full)
        block = {"adaptive": r["adaptive"], **{k: r[k] for k in KEYS}, "sweep": []}
        for value in values:
            if value == getattr(shipped, knob):
                swept = r
            else:
                swept = compare(cases, shipped.model_copy(update={knob: value}), full)
            block["sweep"].append({knob: value, **{k: swept[k] for k in KEYS}})
        out[f"adaptive_{objective}"] = block
    out["n_segments"], out["seeds"] = len(cases[0].segments), len(cases)
    return out


def _mean(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in runs[0].items():
        if isinstance(value, dict):
            keys = sorted({k for r in runs for k in r[key]})
            out[key] = {k: round(float(np.mean([r[key].get(k, 0) for r in runs])), 4) for k in keys}
        elif value is None or any(r[key] is None for r in runs):
            out[key] = None
        else:
            out[key] = round(float(np.mean([r[key] for r in runs])), 6 if "usd" in key else 4)
    return out


# --------------------------------------------------------------------------- simulated


def p_correct(ability: float, ease: np.ndarray, k: int) -> np.ndarray:
    """GLAD's P(right) = sigmoid(ability * ease) (Whitehill et al. 2009), rescaled to ``k``
    labels so that an impossible segment (ease 0) is answered at chance."""
    return 1.0 / k + (1.0 - 1.0 / k) * (2.0 / (1.0 + np.exp(-ability * ease)) - 1.0)


def ability_for(accuracy: float, ease: np.ndarray, k: int) -> float:
    """The GLAD ability whose mean accuracy over ``ease`` is ``accuracy`` (bisection)."""
    lo, hi = 0.0, 100.0
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if p_correct(mid, ease, k).mean() < accuracy else (lo, mid)
    return (lo + hi) / 2


def simulated(n: int, seed: int, difficulty: bool = True) -> Case:
    """Known truth, faces showing it, two free recognizers and three paid LLM agents.

    With ``difficulty``, segments differ in how hard they are (GLAD: each segment an ease
    drawn from Exp(1), each agent an ability set so that its mean accuracy is the nominal
    one; a hard segment also shows its emotion weakly on the face). Without it every agent
    is right with its nominal accuracy on every segment alike.
    """
    from tests.quality.corpus import AUS, REASONS, VAGUE, _features

    labels = sorted(AUS)
    jurors = [
        Juror("face", "face_model", 0.0, 0.60),
        Juror("voice", "voice_model", 0.0, 0.50),
        Juror("mini", "openai", 0.0003, 0.70),
        Juror("flash", "gemini", 0.001, 0.80),
        Juror("pro", "openai", 0.01, 0.90),
    ]
    rng = np.random.default_rng(seed)
    ease = rng.exponential(1.0, size=n) if difficulty else np.full(n, np.inf)
    right_p = {
        j.name: p_correct(ability_for(j.accuracy, ease, len(labels)), ease, len(labels))
        if difficulty
        else np.full(n, j.accuracy)
        for j in jurors
    }
    segments, truth = [], {}
    votes: dict[str, dict[str, tuple[str, float]]] = {j.name: {} for j in jurors}
    vague: set[tuple[str, str]] = set()
    for i in range(n):
        true = labels[int(rng.integers(0, len(labels)))]
        seg = Segment(
            id=f"sim-{seed:04d}-{i:05d}", recording_id=f"sim-{seed:04d}", index=i, start_s=2.0 * i,
            end_s=2.0 * i + 2.0, kind="visual",
        )  # fmt: skip
        strength = 0.25 + 0.75 * float(ease[i] / (1.0 + ease[i])) if difficulty else float(rng.uniform(0.25, 1.0))
        segments.append((seg, _features(seg.id, true, strength)))
        truth[seg.id] = true
        for j in jurors:
            wrong = [k for k in labels if k != true]
            label = true if rng.random() < right_p[j.name][i] else wrong[int(rng.integers(0, len(wrong)))]
            votes[j.name][seg.id] = (label, j.accuracy)
            if rng.random() < 0.25:
                vague.add((seg.id, label))

    def rationale(segment: Segment, label: str) -> tuple[list[str], list[Cue]]:
        step, au = (VAGUE, None) if (segment.id, label) in vague else REASONS[label]
        cues = [Cue(modality="face", cue=f"{au} active", feature=au)] if au else []
        return [step, f"Step 2: Therefore the label is {label}."], cues

    return Case(labels, segments, truth, jurors, votes, rationale)


# --------------------------------------------------------------------------- CREMA-D


def crema_d_cases(seeds: int, limit: int | None) -> list[Case]:
    """Juries drawn from the real CREMA-D votes (module docstring), one case per seed."""
    from bench_quality import crema_votes

    crema = crema_votes()
    votes, names, counts, precision, accuracy = crema.votes, crema.names, crema.counts, crema.precision, crema.accuracy
    test = crema.test[:limit]
    jurors = [
        Juror("voice", "openai", 0.0, accuracy["voice"]),
        Juror("face", "openai", 0.0, accuracy["face"]),
        Juror("av1", "openai", 0.001, accuracy["av"]),
        Juror("av2", "openai", 0.002, accuracy["av"]),
        Juror("av3", "openai", 0.004, accuracy["av"]),
    ]
    mode_of = {"voice": "voice", "face": "face", "av1": "av", "av2": "av", "av3": "av"}
    labels = sorted(names.values())
    segments = []
    for c in test:
        seg = Segment(id=f"{c}-00000", recording_id=c, index=0, start_s=0.0, end_s=2.5, kind="speech")
        segments.append((seg, Features(segment_id=seg.id)))
    truth = {f"{c}-00000": names[str(counts["av"].loc[c, "truth"])] for c in test}
    cases = []
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        drawn: dict[str, dict[str, tuple[str, float]]] = {j.name: {} for j in jurors}
        for c in test:
            for j in jurors:
                mode = mode_of[j.name]
                n = counts[mode].loc[c, votes].to_numpy(dtype=float)
                label = names[votes[int(rng.choice(len(votes), p=n / n.sum()))]]
                drawn[j.name][f"{c}-00000"] = (label, precision[mode][label])
        # Calibrated confidences, no rationale to judge: the judge and its discount are off.
        cases.append(
            Case(
                labels,
                segments,
                truth,
                jurors,
                drawn,
                judge=False,
                aggregation=AggregationConfig(judge_discount="none"),
            )
        )
    return cases


# --------------------------------------------------------------------------- RAVDESS


def ravdess_cases(seeds: int) -> list[Case]:
    """The fixtures with the offline jury (module docstring), one case per seed."""
    from bench_quality import LABELS
    from quality_sets import ravdess_juries

    from emoforge.agents.recognizers.base import output_prior

    jury = ravdess_juries()
    segments = list(zip(jury["segments"], jury["features"], strict=True))
    truth = {s.id: t for s, t in zip(jury["segments"], jury["truth"], strict=True)}
    replay: dict[str, dict[str, Any]] = {}
    backends: dict[str, str] = {}
    for (seg, _), answers in zip(segments, jury["juries"], strict=True):
        for a in answers:
            replay.setdefault(a.agent, {})[seg.id] = a
            backends[a.agent] = a.backend
    # Juror.accuracy is the policy's belief about a vote; the policy plans over paid agents only, so for
    # these free ones it is not read. Their measured accuracy on these clips, not a made-up number.
    free = [
        Juror(
            name,
            backends[name],
            0.0,
            float(np.mean([replay[name][s.id].primary_label == truth[s.id] for s, _ in segments])),
        )
        for name in sorted(replay)
    ]
    paid = [
        Juror("mini", "openai", 0.0003, 0.70),
        Juror("flash", "gemini", 0.001, 0.80),
        Juror("pro", "openai", 0.01, 0.90),
    ]
    priors = {n: p for n, b in backends.items() if (p := output_prior(b, None)) is not None}
    labels = list(LABELS)
    cases = []
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        votes: dict[str, dict[str, tuple[str, float]]] = {j.name: {} for j in paid}
        for seg, _ in segments:
            for j in paid:
                wrong = [k for k in labels if k != truth[seg.id]]
                right = rng.random() < j.accuracy
                votes[j.name][seg.id] = (truth[seg.id] if right else wrong[int(rng.integers(len(wrong)))], j.accuracy)
        # The paid votes are scripted without rationales (there is no API here): the judge is off.
        cases.append(
            Case(
                labels,
                segments,
                truth,
                free + paid,
                votes,
                judge=False,
                aggregation=AggregationConfig(judge_discount="none"),
                priors=priors,
                replay=replay,
            )
        )
    return cases


# --------------------------------------------------------------------------- Bayes reference


def bayes_reference(jurors: Sequence[Juror], n_labels: int, n: int = 20000, seed: int = 0) -> dict[str, Any]:
    """The plan where its model is exact: votes drawn as the policy assumes (each agent right
    with its accuracy on every segment alike, else another label at random), the consensus
    the Bayes posterior, no judge and no review guard. What the pipeline gives up against this
    comes from the consensus it plans on (the judge's discount, the review flags)."""
    rng = np.random.default_rng(seed)
    k = n_labels
    acc = np.array([j.accuracy for j in jurors])
    truth = rng.integers(0, k, size=n)
    right = rng.random((n, len(jurors))) < acc
    votes = np.where(right, truth[:, None], (truth[:, None] + rng.integers(1, k, size=(n, len(jurors)))) % k)

    def update(p: np.ndarray, j: int, vote: int) -> np.ndarray:
        like = np.full(k, (1 - acc[j]) / (k - 1))
        like[vote] = acc[j]
        q = p * like
        return q / q.sum()

    free = [i for i, j in enumerate(jurors) if j.price_usd <= 0]
    paid = [i for i, j in enumerate(jurors) if j.price_usd > 0]
    full_right = 0
    start = []
    for s in range(n):
        p = np.full(k, 1.0 / k)
        for i in free:
            p = update(p, i, votes[s, i])
        start.append(p)
        q = p
        for i in paid:
            q = update(q, i, votes[s, i])
        full_right += int(q.argmax() == truth[s])
    full_cost = sum(jurors[i].price_usd for i in paid)
    out: dict[str, Any] = {"segments": n, "full_accuracy": round(full_right / n, 4)}
    for objective, (knob, values) in SWEEPS.items():
        rows = []
        for value in values:
            config = POLICY.model_copy(
                update={
                    "objective": objective,
                    knob: value,
                    "accuracy": {jurors[i].name: jurors[i].accuracy for i in paid},
                }
            )
            policy = AdaptivePolicy(config, k)
            calls = cost = hits = 0
            for s in range(n):
                p, left = start[s], list(paid)
                while left:
                    plan = policy.plan(
                        {str(x): float(p[x]) for x in range(k)},
                        [Offer(jurors[i].name, jurors[i].price_usd) for i in left],
                    )
                    if plan.ask is None:
                        break
                    i = next(i for i in left if jurors[i].name == plan.ask)
                    p, calls, cost = update(p, i, votes[s, i]), calls + 1, cost + jurors[i].price_usd
                    left.remove(i)
                hits += int(p.argmax() == truth[s])
            rows.append(
                {
                    knob: value,
                    "paid_calls_saved": round(1 - calls / (n * len(paid)), 4),
                    "cost_saved": round(1 - cost / (n * full_cost), 4),
                    "accuracy_drop_points": round(100 * (full_right - hits) / n, 2),
                }
            )
        out[objective] = rows
    return out


def protocol() -> str:
    """The module docstring's paragraph on what runs, as one line."""
    return " ".join(__doc__.split("Sets:")[0].split("\n\n")[2].split())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--segments", type=int, default=600, help="simulated segments per seed")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--crema-clips", type=int, default=None, help="odd-actor CREMA-D clips to use (all)")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--sets", default="simulated,simulated_uniform,simulated_no_judge,crema_d,ravdess")
    args = parser.parse_args(argv)
    wanted = set(args.sets.split(","))
    t0 = time.perf_counter()
    sets: dict[str, Any] = {}

    def done(name: str) -> None:
        print(f"[jury] {name}: {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)

    for name, difficulty in (("simulated", True), ("simulated_uniform", False)):
        if name in wanted:
            sets[name] = evaluate([simulated(args.segments, seed, difficulty) for seed in range(args.seeds)])
            done(name)
    if "simulated_no_judge" in wanted:
        # The simulated corpus with the judge and its discount off: how much of what the
        # pipeline falls short of the Bayes reference is the judge's doing.
        plain = AggregationConfig(judge_discount="none")
        cases = [replace(simulated(args.segments, s, True), judge=False, aggregation=plain) for s in range(args.seeds)]
        sets["simulated_no_judge"] = evaluate(cases)
        done("simulated_no_judge")
    if "crema_d" in wanted and (fixtures() / "labels" / "crema_d_tabulated_votes.csv").exists():
        sets["crema_d"] = evaluate(crema_d_cases(args.seeds, args.crema_clips))
        done("crema_d")
    if "ravdess" in wanted and (fixtures() / "ravdess" / "labels.csv").exists():
        sets["ravdess"] = evaluate(ravdess_cases(args.seeds))
        done("ravdess")
    reference = bayes_reference(simulated(10, 0, False).jurors, 4)
    done("bayes_reference")
    result = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "command": "benchmarks/bench_jury.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "seconds": round(time.perf_counter() - t0, 1),
        "policy": POLICY.model_dump(mode="json"),
        "protocol": protocol(),
        "bayes_reference": reference,
        "sets": sets,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(
        json.dumps(
            {
                f"{k} {objective}": {m: v[f"adaptive_{objective}"][m] for m in KEYS}
                for k, v in sets.items()
                for objective in SWEEPS
            },
            indent=1,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
