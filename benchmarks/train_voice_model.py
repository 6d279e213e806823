"""Fit the voice recognizer shipped as ``agents/recognizers/weights/voice-ravdess-v1.npz``.

    .venv/bin/python benchmarks/train_voice_model.py            # refit, write weights + results
    .venv/bin/python benchmarks/train_voice_model.py --check    # refit, compare with the shipped weights

Data: RAVDESS speech of actors 1-12 in ``$EMOFORGE_FIXTURES/ravdess`` (default
``../shared/fixtures``): 720 clips, 7 classes (``calm`` counts as neutral). Read in place,
never copied.

Protocol (everything speaker-independent, folds grouped by actor):

1. Features of every clip for two candidate sets: (a) the recognizer's own, from
   ``emoforge.agents.recognizers.voice`` (canonical clip -> Whisper-base encoder, mean+SD
   pooled, + 7 Praat prosody values), and (b) eGeMAPS-style acoustic functionals (MFCC and
   delta statistics, spectral shape, loudness, F0, jitter, shimmer, HNR) of the same span.
   Set (a) also gets an augmentation view for training only: the whole file, silences
   included, which teaches the model that the context around the speech is not emotion.
2. Leave-one-actor-out: for each held-out actor, C of a multinomial logistic regression on
   standardised features is chosen by 4-fold actor-grouped CV on the other 11 actors, the
   model is fitted on them and scores the held-out actor's canonical clips.
3. A temperature is fitted on the out-of-fold logits (NLL); ECE (10 bins) before and after.
4. The better set within the cost budget (<= 60 ms per audio second) is refitted on all 12
   actors (C chosen the same way) and written with its temperature. Only set (a) has an
   inference path in the recognizer; if (b) ever won, the script says so and stops.

Writes the weights and ``benchmarks/results/voice_model.json``. Costs are measured on the
machine it runs on (the JSON records its load); deterministic: same data, same weights.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import json
import logging
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from emoforge.agents.recognizers.voice import PROSODY, SPEC, WEIGHTS, PooledEncoder, hear

log = logging.getLogger("train_voice_model")
REPO = Path(__file__).resolve().parents[1]
CLASSES = ("neutral", "happy", "sad", "angry", "fearful", "disgusted", "surprised")
RAVDESS_TO_BASIC = {"calm": "neutral", "disgust": "disgusted"}
C_GRID = (0.03, 0.1, 0.3, 1.0)
BUDGET_MS_PER_S = 60.0
SEED = 0


def fixtures_root(arg: str | None) -> Path:
    root = Path(arg or os.environ.get("EMOFORGE_FIXTURES") or REPO.parent / "shared" / "fixtures")
    return root if root.is_absolute() else (REPO / root).resolve()


def acoustic_functionals(speech: np.ndarray, sr: int) -> np.ndarray:
    """Feature set (b): 88 eGeMAPS-style functionals of the active span."""
    import librosa
    import parselmouth
    from parselmouth.praat import call

    power = np.abs(librosa.stft(speech, n_fft=512, hop_length=160, win_length=400)) ** 2
    mag = np.sqrt(power)
    mfcc = librosa.feature.mfcc(
        S=librosa.power_to_db(librosa.feature.melspectrogram(S=power, sr=sr, n_mels=40)), n_mfcc=14
    )
    rms = librosa.feature.rms(S=mag, frame_length=512)[0]
    active = rms > 0.1 * np.percentile(rms, 95)

    def stats(x: np.ndarray) -> np.ndarray:
        return np.concatenate([x[:, active].mean(axis=1), x[:, active].std(axis=1)])

    shape = np.vstack(
        [
            librosa.feature.spectral_centroid(S=mag, sr=sr) / 1000,
            librosa.feature.spectral_bandwidth(S=mag, sr=sr) / 1000,
            librosa.feature.spectral_rolloff(S=mag, sr=sr) / 1000,
            np.log(librosa.feature.spectral_flatness(S=mag) + 1e-10),
            librosa.feature.spectral_contrast(S=mag, sr=sr, n_bands=5, fmin=100),
        ]
    )
    db = 20 * np.log10(rms[active] + 1e-6)
    loud = [db.mean(), db.std(), np.percentile(db, 95) - np.percentile(db, 5), active.mean()]
    snd = parselmouth.Sound(speech.astype(np.float64), sr)
    f0 = snd.to_pitch_ac(time_step=0.01, pitch_floor=75, pitch_ceiling=600).selected_array["frequency"]
    semi = 12 * np.log2(f0[f0 > 0] / 100)
    slope = np.polyfit(np.flatnonzero(f0 > 0) * 0.01, semi, 1)[0]
    pitch = [semi.mean(), semi.std(), np.percentile(semi, 95) - np.percentile(semi, 5), slope, (f0 > 0).mean()]
    points = call(snd, "To PointProcess (periodic, cc)", 75, 600)
    jitter = call(points, "Get jitter (local)", 0, 0, 0.0001, 0.02, 1.3)
    shimmer = call([snd, points], "Get shimmer (local)", 0, 0, 0.0001, 0.02, 1.3, 1.6)
    hnr = snd.to_harmonicity_cc(0.01, 75, 0.1, 1.0).values
    voice = [jitter, shimmer, hnr[hnr > -200].mean() if np.any(hnr > -200) else 0.0]
    out = np.concatenate([stats(mfcc), stats(librosa.feature.delta(mfcc)), stats(shape), loud, pitch, voice])
    return np.nan_to_num(out.astype(np.float64))


def extract(root: Path, rows: list[dict[str, str]]) -> dict[str, Any]:
    """Both feature sets for every clip, the augmentation view of (a), and their costs."""
    import soundfile as sf

    encoder = PooledEncoder(SPEC)
    sr = int(SPEC["sample_rate"])
    views: dict[str, list[np.ndarray]] = {"a": [], "a_whole_file": [], "b": []}
    seconds = {"audio": 0.0, "a": 0.0, "b": 0.0}
    encoder.features(hear(sf.read(root / rows[0]["file"], dtype="float32")[0], SPEC))  # warm-up, untimed
    for i, row in enumerate(rows):
        audio, rate = sf.read(root / row["file"], dtype="float32")
        if rate != sr or audio.ndim != 1:
            raise ValueError(f"{row['file']}: expected {sr} Hz mono, got {rate} Hz, shape {audio.shape}")
        seconds["audio"] += len(audio) / sr
        t0 = time.perf_counter()
        heard = hear(audio, SPEC)
        t_hear = time.perf_counter() - t0
        views["a"].append(encoder.features(heard))
        seconds["a"] += time.perf_counter() - t0
        t0 = time.perf_counter()
        views["b"].append(acoustic_functionals(heard.speech, sr))
        seconds["b"] += time.perf_counter() - t0 + t_hear
        gain = SPEC["target_rms"] / max(float(np.sqrt(np.mean(heard.speech.astype(np.float64) ** 2))), 1e-9)
        whole = encoder.embed((audio * gain).astype(np.float32))
        views["a_whole_file"].append(np.concatenate([whole, [heard.prosody[k] for k in PROSODY]]))
        if i % 100 == 0:
            log.info("features: %d/%d clips", i, len(rows))
    out: dict[str, Any] = {k: np.array(v) for k, v in views.items()}
    out["cost_ms_per_s"] = {k: round(1000 * seconds[k] / seconds["audio"], 1) for k in ("a", "b")}
    out["audio_s"] = round(seconds["audio"], 1)
    return out


class Standardised:
    """Multinomial logistic regression on z-scored features; the numbers the recognizer ships."""

    def __init__(self, views: list[np.ndarray], y: np.ndarray, c: float) -> None:
        from sklearn.linear_model import LogisticRegression

        x = np.vstack(views)
        self.mean = x.mean(axis=0)
        self.scale = np.where(x.std(axis=0) > 1e-12, x.std(axis=0), 1.0)
        clf = LogisticRegression(C=c, max_iter=5000, tol=1e-6, random_state=SEED)
        clf.fit((x - self.mean) / self.scale, np.tile(y, len(views)))
        order = [list(clf.classes_).index(k) for k in range(len(CLASSES))]
        self.coef, self.intercept = clf.coef_[order], clf.intercept_[order]

    def logits(self, x: np.ndarray) -> np.ndarray:
        return ((x - self.mean) / self.scale) @ self.coef.T + self.intercept


def choose_c(views: list[np.ndarray], y: np.ndarray, actors: np.ndarray) -> float:
    """C with the best accuracy over 4 actor-grouped folds (canonical view scored); ties -> smaller C."""
    groups = np.unique(actors)
    folds = [groups[k::4] for k in range(4)]
    scores = []
    for c in C_GRID:
        hits = 0
        for held in folds:
            test = np.isin(actors, held)
            model = Standardised([v[~test] for v in views], y[~test], c)
            hits += int((model.logits(views[0][test]).argmax(axis=1) == y[test]).sum())
        scores.append(hits)
    return C_GRID[int(np.argmax(scores))]


def softmax(logits: np.ndarray) -> np.ndarray:
    z = np.exp(logits - logits.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


def ece(probs: np.ndarray, y: np.ndarray, bins: int = 10) -> float:
    """Expected calibration error of the top-class confidence, equal-width bins."""
    conf, hit = probs.max(axis=1), probs.argmax(axis=1) == y
    edges = np.linspace(0, 1, bins + 1)
    idx = np.clip(np.digitize(conf, edges[1:-1]), 0, bins - 1)
    return float(
        sum(
            abs(hit[idx == b].mean() - conf[idx == b].mean()) * (idx == b).mean()
            for b in range(bins)
            if np.any(idx == b)
        )
    )


def nll(probs: np.ndarray, y: np.ndarray) -> float:
    return float(-np.mean(np.log(probs[np.arange(len(y)), y] + 1e-12)))


def fit_temperature(logits: np.ndarray, y: np.ndarray) -> float:
    from scipy.optimize import minimize_scalar

    res = minimize_scalar(lambda lt: nll(softmax(logits / np.exp(lt)), y), bounds=(-3, 3), method="bounded")
    return float(np.exp(res.x))


def cross_validate(views: list[np.ndarray], y: np.ndarray, actors: np.ndarray) -> dict[str, Any]:
    """Leave-one-actor-out with nested C choice; out-of-fold logits of the canonical view."""
    from sklearn.metrics import confusion_matrix, f1_score

    logits = np.zeros((len(y), len(CLASSES)))
    folds = []
    for actor in np.unique(actors):
        test = actors == actor
        c = choose_c([v[~test] for v in views], y[~test], actors[~test])
        logits[test] = Standardised([v[~test] for v in views], y[~test], c).logits(views[0][test])
        acc = float((logits[test].argmax(axis=1) == y[test]).mean())
        folds.append({"held_out_actor": int(actor), "n": int(test.sum()), "C": c, "accuracy": round(acc, 4)})
        log.info("actor %d: C=%s accuracy %.3f", actor, c, acc)
    pred = logits.argmax(axis=1)
    temperature = fit_temperature(logits, y)
    before, after = softmax(logits), softmax(logits / temperature)
    return {
        "accuracy": round(float((pred == y).mean()), 4),
        "macro_f1": round(float(f1_score(y, pred, average="macro")), 4),
        "per_fold": folds,
        "fold_accuracy_mean_sd": [
            round(float(np.mean([f["accuracy"] for f in folds])), 4),
            round(float(np.std([f["accuracy"] for f in folds])), 4),
        ],
        "temperature": round(temperature, 4),
        "ece_10_bins": {"before": round(ece(before, y), 4), "after": round(ece(after, y), 4)},
        "nll": {"before": round(nll(before, y), 4), "after": round(nll(after, y), 4)},
        "confusion_matrix": {"rows_true_cols_pred": list(CLASSES), "matrix": confusion_matrix(y, pred).tolist()},
        "_temperature": temperature,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--fixtures", help="fixtures folder (default $EMOFORGE_FIXTURES or ../shared/fixtures)")
    parser.add_argument("--weights", type=Path, default=REPO / "agents" / "recognizers" / "weights" / WEIGHTS)
    parser.add_argument("--results", type=Path, default=REPO / "benchmarks" / "results" / "voice_model.json")
    parser.add_argument("--check", action="store_true", help="compare with the weights at --weights, write nothing")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    np.random.seed(SEED)
    root = fixtures_root(args.fixtures) / "ravdess"
    with open(root / "labels.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    y = np.array([CLASSES.index(RAVDESS_TO_BASIC.get(r["emotion"], r["emotion"])) for r in rows])
    actors = np.array([int(r["actor"]) for r in rows])
    load_before = os.getloadavg()
    t_start = time.perf_counter()
    feats = extract(root, rows)
    sets = {
        "a_whisper_enc_prosody": ([feats["a"], feats["a_whole_file"]], feats["cost_ms_per_s"]["a"]),
        "b_acoustic_functionals": ([feats["b"]], feats["cost_ms_per_s"]["b"]),
    }
    results = {
        name: cross_validate(views, y, actors) | {"cost_ms_per_audio_s": cost, "dims": int(views[0].shape[1])}
        for name, (views, cost) in sets.items()
    }
    within = [n for n in results if results[n]["cost_ms_per_audio_s"] <= BUDGET_MS_PER_S] or list(results)
    best = max(within, key=lambda n: results[n]["accuracy"])
    if best != "a_whisper_enc_prosody":
        log.error("set %s won; the recognizer only implements set (a): nothing written", best)
        return 1
    views = sets[best][0]
    c_final = choose_c(views, y, actors)
    final = Standardised(views, y, c_final)
    cv = results[best]
    temperature = cv.pop("_temperature")
    for r in results.values():
        r.pop("_temperature", None)
    t_infer = time.perf_counter()
    for _ in range(100):
        softmax(final.logits(views[0][:1]) / temperature)
    infer_ms = 1000 * (time.perf_counter() - t_infer) / 100
    names = [f"whisper_mean_{i}" for i in range(512)] + [f"whisper_sd_{i}" for i in range(512)] + list(PROSODY)
    meta = {
        "training_data": "RAVDESS speech, actors 1-12 (16 kHz mono), calm counted as neutral",
        "n_clips": len(rows),
        "views_per_clip": ["canonical (the inference input)", "whole file (augmentation)"],
        "C": c_final,
        "cv": "leave-one-actor-out, C nested (4 actor-grouped folds)",
        "cv_accuracy": cv["accuracy"],
        "cv_macro_f1": cv["macro_f1"],
        "ece_after": cv["ece_10_bins"]["after"],
        "script": "benchmarks/train_voice_model.py",
    }
    arrays: dict[str, Any] = {
        "classes": np.array(CLASSES),
        "feature_names": np.array(names),
        "mean": final.mean.astype(np.float32),
        "scale": final.scale.astype(np.float32),
        "coef": final.coef.astype(np.float32),
        "intercept": final.intercept.astype(np.float32),
        "temperature": np.array(temperature, dtype=np.float64),
        "spec": np.array(json.dumps(SPEC, sort_keys=True)),
        "meta": np.array(json.dumps(meta, sort_keys=True)),
        # The label distribution it was trained on: what a calibrated model says on average,
        # and what the pooled vote divides out (emoforge/quality/aggregation/pooled.py).
        "output_prior": np.bincount(y, minlength=len(CLASSES)).astype(np.float64) / len(y),
    }
    if args.check:
        with np.load(args.weights, allow_pickle=False) as shipped:
            diffs = {k: float(np.max(np.abs(shipped[k] - v))) for k, v in arrays.items() if v.dtype.kind == "f"}
            same = all(np.array_equal(shipped[k], v) for k, v in arrays.items() if v.dtype.kind != "f")
        log.info("max abs difference to the shipped weights: %s; non-numeric equal: %s", diffs, same)
        return 0 if same and max(diffs.values()) < 1e-4 else 1
    args.weights.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.weights, **arrays)
    report = {
        "date": datetime.date.today().isoformat(),
        "command": " ".join([".venv/bin/python", "benchmarks/train_voice_model.py", *sys.argv[1:]]),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "loadavg_before": load_before,
            "loadavg_after": os.getloadavg(),
        },
        "data": {
            "clips": len(rows),
            "actors": sorted(int(a) for a in np.unique(actors)),
            "audio_s": feats["audio_s"],
            "class_counts": {k: int((y == i).sum()) for i, k in enumerate(CLASSES)},
        },
        "always_neutral_accuracy": round(float((y == 0).mean()), 4),
        "chosen": best,
        "chosen_because": f"highest speaker-independent accuracy among the sets within {BUDGET_MS_PER_S:.0f} ms/s",
        "feature_sets": results,
        "final_model": {
            "C": c_final,
            "weights": os.path.relpath(args.weights, REPO),
            "bytes": args.weights.stat().st_size,
            "temperature": round(temperature, 4),
        },
        "cost_ms_per_audio_s": {
            "features": cv["cost_ms_per_audio_s"],
            "logreg_ms_per_clip": round(infer_ms, 3),
            "budget": BUDGET_MS_PER_S,
        },
        "runtime_s": round(time.perf_counter() - t_start, 1),
    }
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    log.info(
        "CV accuracy %.3f, macro-F1 %.3f, ECE %.3f -> %.3f; wrote %s",
        cv["accuracy"],
        cv["macro_f1"],
        cv["ece_10_bins"]["before"],
        cv["ece_10_bins"]["after"],
        args.weights,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
