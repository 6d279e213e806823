"""Label quality on every human-labelled set we ship -> benchmarks/results/quality.json.

    .venv/bin/python benchmarks/bench_quality.py [--sets crema_d,meld,speech,mer]

For each set: every agent that can read it (accuracy, macro-F1, ECE of its stated
confidence, share of failures), the per-segment consensus of the offline default jury and
of each aggregator (majority, weighted, soft, pooled, Dawid-Skene, MACE), the judge's
AUROC of S_final for right vs wrong annotations, and the consensus-support check (rows
whose consensus label no valid annotation gave). Agents trained on a set are scored on it
only out of fold: the voice model by actor (it never hears the test actor), the text
model by MELD dialogue, each fold's weights written by the same training code that made
the shipped ones and loaded through the real agent (``AgentConfig.model``).

Sets (paths under $EMOFORGE_FIXTURES, default ../shared/fixtures):
* ``crema_d``: the CREMA-D vote table. Three simulated annotators per clip (voice only,
  face only, audio-visual) each draw a label from that clip's real human votes in its
  presentation mode, with a confidence calibrated on the other actors; scores the
  aggregators against the intended emotion.
* ``meld``: MELD dev text (1,109 English TV lines, 7 labels): the text agents.
* ``speech``: the three labelled speech corpora (RAVDESS actors 1-12, English; nEMO, Polish;
  EmoDB, German; 1,891 clips, calm counted as neutral), each scored two ways: ``speaker``
  (the voice model never heard the clip's speaker) and ``corpus`` (leave one corpus out: it
  never heard the clip's corpus or language), with the voice model's temperature and trust
  fitted without that corpus; the text model reads the sentence spoken; the consensus of
  the two per protocol, with balanced accuracy, ECE and selective accuracy.
* ``mer``: the three MER2023 clips through the whole offline pipeline: every offline
  agent, the default jury's consensus and the judge, per segment (each segment carries
  its clip's label) and per clip.
* ``faithfulness`` (not in the default ``--sets``): sufficiency and necessity of each offline
  agent's cited evidence (``agents/faithfulness``): every 12th RAVDESS clip (60) through
  voice_cues, text_cues and the shipped voice_model, and the MER segments' stored features
  through face_cues, voice_cues, text_cues and face_model (voice_model needs the clip, which
  the shards do not keep).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

from emoforge.quality.calibration import auroc, expected_calibration_error, macro_f1  # noqa: E402

LABELS = ["neutral", "happy", "sad", "angry", "fearful", "disgusted", "surprised"]
OUT = REPO / "benchmarks" / "results" / "quality.json"


def fixtures() -> Path:
    return Path(os.environ.get("EMOFORGE_FIXTURES", REPO.parent / "shared" / "fixtures")).resolve()


def score(truth: Sequence[str], predicted: Sequence[str | None], confidence: Sequence[float | None]) -> dict[str, Any]:
    """Accuracy and balanced accuracy (failures count wrong), macro-F1 over the labels in
    ``truth``, ECE of the confidence on the answered items, the answered share, and selective
    accuracy: the accuracy of the most confident 30 % (failures last), with its coverage curve."""
    answered = [i for i, p in enumerate(predicted) if p is not None]
    correct = [predicted[i] == truth[i] for i in answered]
    conf = [float(confidence[i] or 0.0) for i in answered]
    hits = np.array([p == t for p, t in zip(predicted, truth, strict=True)], dtype=float)
    order = np.argsort([-(c or 0.0) if p is not None else 1.0 for p, c in zip(predicted, confidence, strict=True)])

    def selective(coverage: float) -> float:
        return round(float(hits[order[: max(1, round(coverage * len(hits)))]].mean()), 4)

    return {
        "n": len(truth),
        "answered": round(len(answered) / len(truth), 4) if truth else None,
        "accuracy": round(float(hits.mean()), 4),
        "balanced_accuracy": round(
            float(np.mean([hits[[t == k for t in truth]].mean() for k in sorted(set(truth))])), 4
        ),
        "macro_f1": round(macro_f1(truth, predicted, sorted(set(truth))), 4),
        "ece": round(expected_calibration_error(conf, correct), 4) if answered else None,
        "mean_confidence": round(float(np.mean(conf)), 4) if answered else None,
        "selective_accuracy_30pct": selective(0.3),
        "coverage_curve": {f"{c:.1f}": selective(c) for c in (0.1, 0.3, 0.5, 0.7, 1.0)},
        "predicted": dict(sorted({p or "failed": sum(q == p for q in predicted) for p in predicted}.items())),
    }


def majority_baseline(truth: Sequence[str]) -> dict[str, Any]:
    top = max(sorted(set(truth)), key=list(truth).count)
    return {"label": top, "accuracy": round(list(truth).count(top) / len(truth), 4)}


# --------------------------------------------------------------------------- CREMA-D


@dataclass(frozen=True)
class CremaVotes:
    """CREMA-D's real rater votes per clip and rating mode (voice / face / av), split by actor:
    even actors calibrate, odd actors are scored (shared by bench_quality, bench_review and
    bench_jury, so the three benchmarks draw their juries from the same numbers)."""

    votes: list[str]  # the vote columns, A D F H N S
    names: dict[str, str]  # vote column -> taxonomy label
    counts: dict[str, Any]  # mode -> DataFrame of vote counts indexed by clip (fileName)
    calib: list[str]  # clips of the even actors
    test: list[str]  # clips of the odd actors
    precision: dict[str, dict[str, float]]  # mode -> label -> P(intended | the mode's raters said it), on calib
    accuracy: dict[str, float]  # mode -> share of the mode's votes that name the intended emotion, on calib

    @property
    def taxonomy(self) -> list[str]:
        return sorted(self.names.values())

    def truth(self, clip: str) -> str:
        return self.names[str(self.counts["av"].loc[clip, "truth"])]


def crema_votes() -> CremaVotes:
    import pandas as pd

    votes = ["A", "D", "F", "H", "N", "S"]
    names = dict(zip(votes, ["angry", "disgusted", "fearful", "happy", "neutral", "sad"], strict=True))
    intended = {"ANG": "A", "DIS": "D", "FEA": "F", "HAP": "H", "NEU": "N", "SAD": "S"}
    table = pd.read_csv(fixtures() / "labels" / "crema_d_tabulated_votes.csv", dtype={0: str})
    table = table.rename(columns={table.columns[0]: "row_id"})
    table["truth"] = table["fileName"].str.split("_").str[2].map(intended)
    modes = {"1": "voice", "2": "face", "3": "av"}
    counts = {
        mode: table[table["row_id"].str.startswith(prefix)].set_index("fileName") for prefix, mode in modes.items()
    }
    clips = sorted(set.intersection(*(set(c.index) for c in counts.values())))
    calib = [c for c in clips if int(c.split("_")[0]) % 2 == 0]  # confidences learnt on even actors
    test = [c for c in clips if int(c.split("_")[0]) % 2 == 1]  # scored on odd actors
    # Calibrated confidence of a simulated annotator: P(intended | its mode's raters said it),
    # from the real vote counts of the calibration actors.
    precision: dict[str, dict[str, float]] = {}
    accuracy: dict[str, float] = {}
    for mode, frame in counts.items():
        sub = frame.loc[calib]
        precision[mode] = {}
        for v in votes:
            said = float(sub[v].sum())
            right = float(sub.loc[sub["truth"] == v, v].sum())
            precision[mode][names[v]] = right / said if said else 0.0
        hits = sum(float(sub.loc[sub["truth"] == v, v].sum()) for v in votes)
        accuracy[mode] = hits / float(sub[votes].to_numpy().sum())
    return CremaVotes(votes, names, counts, calib, test, precision, accuracy)


def crema_d(seeds: int = 5) -> dict[str, Any]:
    """Aggregators on simulated juries drawn from the real CREMA-D votes (module docstring)."""
    import pandas as pd

    from emoforge.quality.aggregation import AGGREGATORS, PooledVote
    from emoforge.quality.aggregation.pooled import fit_pool_weights

    crema = crema_votes()
    votes, names, counts, calib, test = crema.votes, crema.names, crema.counts, crema.calib, crema.test
    taxonomy, precision = crema.taxonomy, crema.precision
    truth = {c: crema.truth(c) for c in calib + test}
    per_seed: list[dict[str, Any]] = []
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        rows = []
        for c in calib + test:
            for mode, frame in counts.items():
                n = frame.loc[c, votes].to_numpy(dtype=float)
                if n.sum() <= 0:
                    continue
                label = names[votes[int(rng.choice(len(votes), p=n / n.sum()))]]
                rows.append({"task": c, "worker": mode, "label": label, "confidence": precision[mode][label]})
        both = pd.DataFrame(rows)
        # The fitted pooled vote learns its exponents on the even actors' simulated juries.
        weights = fit_pool_weights(both[both["task"].isin(calib)], {c: truth[c] for c in calib}, taxonomy)
        df = both[both["task"].isin(test)].reset_index(drop=True)
        y = [truth[c] for c in test]
        result: dict[str, Any] = {"annotators": {}, "aggregators": {}}
        for mode in counts:
            sub = df[df["worker"] == mode].set_index("task")
            pred = [sub["label"].get(c) for c in test]
            conf = [sub["confidence"].get(c) for c in test]
            result["annotators"][mode] = score(y, pred, conf)
        inputs = {
            "majority": df,
            "weighted": df.assign(weight=df["confidence"]),
            "soft": soft_rows(df, sorted(names.values())),
            "pooled": df,
            "pooled_fitted": df,
            "dawid_skene": df,
            "mace": df,
        }
        for method, data in inputs.items():
            if method.startswith("pooled"):
                model: Any = PooledVote(taxonomy, weights=weights if method == "pooled_fitted" else None)
            else:
                model = AGGREGATORS[method]()
            model.fit(data)
            probas = model.predict_proba()
            labels = model.predict()
            pred = [labels.get(c) for c in test]
            # The probability of the label elected (the pooled vote elects among given labels).
            conf = [float(probas.loc[c, labels[c]]) if c in probas.index else None for c in test]
            given = df.groupby("task")["label"].apply(set)
            result["aggregators"][method] = score(y, pred, conf) | {
                "consensus_not_given": int(
                    sum(p is not None and p not in given.get(c, set()) for c, p in zip(test, pred, strict=True))
                )
            }
        result["pooled_weights"] = weights
        per_seed.append(result)
    return {
        "protocol": "3 simulated annotators per clip (voice-only, face-only, audio-visual), each one label "
        "drawn from that clip's real CREMA-D votes in its mode; confidence = P(intended | label) of that "
        "mode on the even actors; pooled_fitted = pooled with per-annotator exponents fitted on the even "
        "actors' simulated juries; scored on the odd actors; mean of seeds",
        "n_clips": len(test),
        "seeds": seeds,
        "annotators": _mean_over(per_seed, "annotators"),
        "aggregators": _mean_over(per_seed, "aggregators"),
        "pooled_fitted_weights": {
            w: round(float(np.mean([r["pooled_weights"][w] for r in per_seed])), 4)
            for w in per_seed[0]["pooled_weights"]
        },
        "majority_baseline": majority_baseline([truth[c] for c in test]),
    }


def soft_rows(df: Any, labels: list[str]) -> Any:
    """The soft vote's input: each vote spread as confidence on its label, the rest uniform."""
    import pandas as pd

    k = len(labels)
    rows = []
    for r in df.itertuples():
        for label in labels:
            p = (1 - r.confidence) / k + (r.confidence if label == r.label else 0.0)
            rows.append({"task": r.task, "worker": r.worker, "label": label, "prob": p, "weight": 1.0})
    return pd.DataFrame(rows)


def _mean_over(runs: list[dict[str, Any]], key: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in runs[0][key]:
        first = runs[0][key][name]
        out[name] = {
            k: round(float(np.mean([r[key][name][k] for r in runs])), 4)
            for k, v in first.items()
            if isinstance(v, int | float) and v is not None
        }
    return out


# --------------------------------------------------------------------------- shared agent plumbing


def ctx() -> Any:
    from emoforge.storage.records import RunContext

    return RunContext(run_id="bench-quality", config_hash="bench", emoforge_version="bench")


def segment(sid: str, duration: float) -> Any:
    from emoforge.storage.records import Segment

    return Segment(id=f"{sid}-00000", recording_id=sid, index=0, start_s=0.0, end_s=duration, kind="speech")


def make_agent(backend: str, model: str | None = None) -> Any:
    from emoforge.agents.providers import provider
    from emoforge.configs.agents import AgentConfig, TaxonomyConfig

    modalities = ["voice", "audio"] if backend == "voice_model" else ["face", "voice", "text"]
    config = AgentConfig(name=backend, backend=backend, model=model, modalities=modalities)
    build = provider(backend).annotator
    assert build is not None, f"{backend} is not an offline provider"
    return build(config, ctx(), TaxonomyConfig(), None)


def answers(annotations: Sequence[Any]) -> tuple[list[str | None], list[float | None]]:
    from emoforge.storage.records import Status

    pred = [a.primary_label if a.status == Status.ok else None for a in annotations]
    conf = [a.confidence if a.status == Status.ok else None for a in annotations]
    return pred, conf


def jury_consensus(
    segments: Sequence[Any],
    features: Sequence[Any],
    juries: Sequence[Sequence[Any]],
    truth: Sequence[str],
    groups: Sequence[Any] | None = None,
    only: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Consensus of the given per-segment juries with every per-segment method and the default
    judge, plus the judge's AUROC and the consensus-support check. With ``groups`` (e.g. the
    speaker), also ``pooled_fitted``: the default with per-agent exponents fitted on the
    other groups' labelled segments (``fit_pool_weights``), leave one group out. ``only``
    names the methods to run (all by default)."""
    from emoforge.agents.judge import Judge
    from emoforge.agents.providers import vote_sources
    from emoforge.agents.recognizers.base import output_prior
    from emoforge.configs.agents import TaxonomyConfig
    from emoforge.configs.quality import AggregationConfig, JudgeConfig
    from emoforge.quality.consensus import ConsensusBuilder
    from emoforge.storage.records import Status

    judge = Judge(JudgeConfig(), ctx())
    verdicts = [judge.score(s, f, list(j)) for s, f, j in zip(segments, features, juries, strict=True)]
    backends = {a.agent: a.backend for j in juries for a in j}
    priors = {name: p for name, b in backends.items() if (p := output_prior(b, None)) is not None}
    out: dict[str, Any] = {}
    variants: dict[str, tuple[AggregationConfig, dict[str, dict[str, float]]]] = {
        "pooled": (AggregationConfig(), priors),  # the default
        "pooled_judge_all": (AggregationConfig(judge_discount="all"), priors),
        "pooled_jury_prior": (AggregationConfig(reference_prior="jury"), priors),
        "pooled_no_priors": (AggregationConfig(), {}),
        "soft": (AggregationConfig(method="soft"), priors),
        "weighted": (AggregationConfig(method="weighted"), priors),
        "majority": (AggregationConfig(method="majority"), priors),
    }
    if only is not None:
        variants = {name: variants[name] for name in only}

    def build(config: AggregationConfig, pr: dict[str, dict[str, float]], index: Sequence[int]) -> list[Any]:
        builder = ConsensusBuilder(config, ctx(), TaxonomyConfig(), pr, sources=vote_sources())
        return [builder.build(segments[i], features[i], list(juries[i]), verdicts[i]) for i in index]

    everything = range(len(segments))
    results = {name: build(config, pr, everything) for name, (config, pr) in variants.items()}
    if groups is not None:
        import pandas as pd

        from emoforge.quality.aggregation.pooled import fit_pool_weights

        default = ConsensusBuilder(AggregationConfig(), ctx(), TaxonomyConfig(), priors, sources=vote_sources())
        rows = [
            {
                "task": i,
                "worker": a.agent,
                "label": a.primary_label,
                "confidence": default.vote_confidence(a, v.s_final),
            }
            for i in everything
            for a, v in zip(juries[i], _verdict_of(juries[i], verdicts[i]), strict=True)
            if a.status == Status.ok and a.primary_label
        ]
        frame = pd.DataFrame(rows)
        fitted: list[Any] = [None] * len(segments)
        weights = {}
        for g in sorted(set(groups)):
            held = [i for i in everything if groups[i] == g]
            train = frame[~frame["task"].isin(held)]
            w = fit_pool_weights(
                train, {i: truth[i] for i in everything if groups[i] != g}, TaxonomyConfig().labels, priors
            )
            weights[str(g)] = w
            for i, c in zip(held, build(AggregationConfig(pool_weights=w), priors, held), strict=True):
                fitted[i] = c
        results["pooled_fitted"] = fitted
        out["pooled_fitted_weights"] = {
            name: round(float(np.mean([w.get(name, 1.0) for w in weights.values()])), 4) for name in sorted(backends)
        }
    for name, cons in results.items():
        pred = [c.primary_label for c in cons]
        conf = [c.confidence if c.primary_label else None for c in cons]
        given = [{a.primary_label for a in j if a.status == Status.ok} for j in juries]
        out[name] = score(truth, pred, conf) | {
            "consensus_not_given": sum(p is not None and p not in g for p, g in zip(pred, given, strict=True)),
            "needs_review": round(float(np.mean([c.needs_review for c in cons])), 4),
        }
    right, s_final = [], []
    for jury, vs, t in zip(juries, verdicts, truth, strict=True):
        by_id = {v.annotation_id: v for v in vs}
        for a in jury:
            if a.status == Status.ok and a.id in by_id:
                right.append(a.primary_label == t)
                s_final.append(by_id[a.id].s_final)
    value = auroc(s_final, right)
    out["judge"] = {"auroc_s_final": None if np.isnan(value) else round(value, 4), "n_annotations": len(right)}
    return out


def _verdict_of(jury: Sequence[Any], verdicts: Sequence[Any]) -> list[Any]:
    by_annotation = {v.annotation_id: v for v in verdicts}
    return [by_annotation.get(a.id) for a in jury]


def faithfulness(stride: int = 12) -> dict[str, Any]:
    """Per agent: mean sufficiency, necessity and faithfulness of the cited evidence."""
    import soundfile as sf
    from quality_sets import read_csv, transcript_features, wav_bytes

    from emoforge.agents.clips import SegmentClip
    from emoforge.agents.faithfulness import FaithfulnessProbe, summarise
    from emoforge.configs.preprocess import ProsodyConfig
    from emoforge.preprocess.prosody import ProsodyAnalyzer
    from emoforge.storage.records import Status

    probe = FaithfulnessProbe()
    root = fixtures() / "ravdess"
    rows = read_csv(root / "labels.csv")[::stride]
    prosody = ProsodyAnalyzer(ProsodyConfig())
    inputs = []
    for i, r in enumerate(rows):
        audio, sr = sf.read(root / r["file"], dtype="float32")
        duration = len(audio) / sr
        f = transcript_features(f"rav{i}", r["statement"], duration)
        f = f.model_copy(update={"prosody": prosody.analyze(audio, sr, 0.0, f.transcript.words)})
        seg = segment(f"rav{i}", duration)
        clip = SegmentClip(
            segment_id=seg.id, start_s=0.0, end_s=duration, audio_wav=wav_bytes(audio, sr), audio_s=duration
        )
        inputs.append((seg, f, clip))
    ravdess_scores = []
    for backend in ("voice_cues", "text_cues", "voice_model"):
        agent = make_agent(backend)
        for seg, f, clip in inputs:
            ann = agent.annotate(seg, f, clip)
            if ann.status == Status.ok:
                ravdess_scores.append(probe.score(agent, seg, f, ann, clip))
    out: dict[str, Any] = {
        "protocol": "ERASER-style sufficiency (confidence kept with only the cited evidence) and necessity "
        "(confidence lost without it), in [0, 1], higher = more faithful; agents/faithfulness/scores.py",
        "ravdess": {"n_clips": len(rows), "stride": stride, "agents": summarise(ravdess_scores)},
    }
    mer_rows = _mer_rows()
    mer_scores = []
    for backend in ("face_cues", "voice_cues", "text_cues", "face_model"):
        agent = make_agent(backend)
        for r in mer_rows:
            ann = agent.annotate(r.segment, r.features)
            if ann.status == Status.ok:
                mer_scores.append(probe.score(agent, r.segment, r.features, ann))
    out["mer"] = {"n_segments": len(mer_rows), "agents": summarise(mer_scores)}
    return out


def _mer_rows() -> list[Any]:
    """The MER2023 clips through the offline pipeline (features only; no agents needed)."""
    import subprocess
    import tempfile

    from quality_sets import read_csv

    from emoforge.storage.shards import read_rows

    labels = read_csv(fixtures() / "labels" / "mer2023_clips.csv")
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "face-only.yaml"
        config.write_text("agents:\n  jury:\n    - {name: face_cues, backend: face_cues}\n")
        media = [str(fixtures() / "media" / f"{r['sample_id']}.mp4") for r in labels]
        out = Path(tmp) / "corpus"
        cmd = [str(REPO / ".venv" / "bin" / "emoforge"), "annotate", *media, "--out", str(out), "--config", str(config)]
        subprocess.run(cmd, check=True, capture_output=True, timeout=1800)
        return [r for r in read_rows(str(out)) if r.segment is not None and r.features is not None]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", default="crema_d,meld,speech,mer")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    import quality_sets

    runners: dict[str, Callable[[], dict[str, Any]]] = {
        "crema_d": crema_d,
        "meld": quality_sets.meld,
        "speech": quality_sets.speech_sets,
        "mer": quality_sets.mer,
        "faithfulness": faithfulness,
    }
    previous = json.loads(args.out.read_text()) if args.out.exists() else {}
    # "ravdess" was the RAVDESS-only set before the speech corpora (now under "speech").
    sets = {k: v for k, v in previous.get("sets", {}).items() if k != "ravdess"}
    timings = dict(previous.get("seconds", {}))
    for name in [s for s in args.sets.split(",") if s]:
        t0 = time.perf_counter()
        print(f"[quality] {name} ...", file=sys.stderr, flush=True)
        sets[name] = runners[name]()
        timings[name] = round(time.perf_counter() - t0, 1)
    result = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "command": "benchmarks/bench_quality.py --sets " + args.sets,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "load_avg": os.getloadavg()},
        "seconds": timings,
        "sets": sets,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1, sort_keys=False) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "sets"}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
