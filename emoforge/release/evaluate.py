"""Score predictions against a release's answer file.

Metrics (gold = answers, one item per answer row; a missing prediction counts as wrong):

- accuracy = mean [pred == gold];
- per-label F1 = 2 P R / (P + R); macro F1 = unweighted mean over labels seen in gold or
  predictions, weighted F1 = mean weighted by gold support (scikit-learn's definitions);
- set-level F1 (multi-label): per item 2 |P & G| / (|P| + |G|) averaged over items
  ("samples" F1), and micro F1 over all (item, label) pairs;
- ROUGE-L: per item F1 of the longest common subsequence of lower-cased word tokens,
  P = LCS / |candidate|, R = LCS / |reference|, averaged;
- BLEU-4: corpus BLEU (Papineni et al. 2002): clipped n-gram precisions p_1..p_4 summed over
  the corpus, geometric mean times the brevity penalty exp(min(0, 1 - r / c)); a zero
  n-gram count is smoothed to 0.1 / total (Chen & Cherry 2014, method 1) so short
  rationales do not all score 0;
- ECE (expected calibration error, 10 equal-width bins) of the predictions' ``confidence``
  against being right, over the items whose prediction states one; a missing prediction
  is left out of it (it is already wrong in the accuracy);
- faithfulness of the evidence: the mean ``sufficiency`` and ``necessity`` over the items
  that have both. Either the predictions carry them (a submitter re-asked its own model with
  ``FaithfulnessProbe``), or, with ``--corpus`` and ``--agent``, they are measured: the named
  agent of the corpus's config is re-asked on the corpus's features (``faithfulness.py``);
  measured values replace submitted ones;
- evidence coverage: per item |cited modalities & available modalities| / |available|,
  averaged over items with any available modality; ``cross_modal_rate`` is the share of
  items citing at least two modalities.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from emoforge.release.faithfulness import MeasuredFaithfulness
from emoforge.release.predictions import AnswerItem, Prediction, read_items
from emoforge.storage.records import Record

_TOKEN = re.compile(r"\w+", re.UNICODE)


def tokens(text: str) -> list[str]:
    return _TOKEN.findall(text.lower())


def _text(value: Any) -> str:
    if isinstance(value, list):
        return " ".join(map(str, value))
    return "" if value is None else str(value)


def load_items(path: str | Path) -> dict[str, dict[str, Any]]:
    """row_id -> prediction from a .jsonl, .json (list) or .parquet file, parsed into bounded,
    typed records first (``predictions.py``); ValueError, one line, when the file is missing,
    unreadable, too large or an item is malformed."""
    return read_items(path, Prediction)


def load_answers(path: str | Path) -> dict[str, dict[str, Any]]:
    """The answer file of a release, refused when rows have no label: a release's public test
    split (labels hidden) scored as answers gives every prediction 0 without saying why."""
    answers = read_items(path, AnswerItem)
    if not answers:
        raise ValueError(f"{path}: no answer rows")
    unlabelled = sorted(i for i, item in answers.items() if not isinstance(item.get("label"), str))
    if unlabelled:
        raise ValueError(
            f"{path}: {len(unlabelled)} of {len(answers)} answer rows have no label (e.g. {unlabelled[0]}); "
            "pass the hidden answers a release writes (OUT-answers/test.jsonl), not its public test split"
        )
    return answers


def lcs_length(a: list[str], b: list[str]) -> int:
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0]
        for j, y in enumerate(b):
            cur.append(prev[j] + 1 if x == y else max(prev[j + 1], cur[j]))
        prev = cur
    return prev[-1]


def rouge_l(candidate: str, reference: str) -> float:
    c, r = tokens(candidate), tokens(reference)
    lcs = lcs_length(c, r)
    if not lcs:
        return 0.0
    p, rec = lcs / len(c), lcs / len(r)
    return 2 * p * rec / (p + rec)


def corpus_bleu(candidates: list[str], references: list[str], max_n: int = 4) -> float:
    matched, total = [0] * max_n, [0] * max_n
    cand_len = ref_len = 0
    for cand, ref in zip(candidates, references, strict=True):
        c, r = tokens(cand), tokens(ref)
        cand_len, ref_len = cand_len + len(c), ref_len + len(r)
        for n in range(1, max_n + 1):
            c_ngrams = Counter(tuple(c[i : i + n]) for i in range(len(c) - n + 1))
            r_ngrams = Counter(tuple(r[i : i + n]) for i in range(len(r) - n + 1))
            matched[n - 1] += sum(min(k, r_ngrams[g]) for g, k in c_ngrams.items())
            total[n - 1] += max(len(c) - n + 1, 0)
    if cand_len == 0 or any(t == 0 for t in total):
        return 0.0
    log_p = sum(math.log((m if m else 0.1) / t) for m, t in zip(matched, total, strict=True)) / max_n
    bp = min(0.0, 1.0 - ref_len / cand_len)
    return math.exp(bp + log_p)


class LabelScores(Record):
    precision: float
    recall: float
    f1: float
    support: int


class EvaluationReport(Record):
    n: int = Field(description="Answer items scored.")
    missing: int = Field(description="Answer items with no prediction (scored as wrong).")
    accuracy: float
    macro_f1: float
    weighted_f1: float
    set_f1_samples: float | None = Field(description="Multi-label F1 averaged over items.")
    set_f1_micro: float | None = Field(description="Multi-label F1 over all (item, label) pairs.")
    rouge_l: float | None = Field(description="Mean ROUGE-L F1 of rationales (items with a reference).")
    bleu: float | None = Field(description="Corpus BLEU-4 of rationales (items with a reference).")
    evidence_coverage: float | None = Field(description="Mean share of available modalities cited.")
    cross_modal_rate: float | None = Field(description="Share of items citing >= 2 modalities.")
    per_label: dict[str, LabelScores]
    ece: float | None = Field(default=None, description="ECE of the stated confidence (10 bins).")
    n_with_confidence: int = Field(default=0, description="Predictions that stated a confidence in [0, 1].")
    sufficiency: float | None = Field(default=None, description="Mean sufficiency of the cited evidence.")
    necessity: float | None = Field(default=None, description="Mean necessity of the cited evidence.")
    n_with_faithfulness: int = Field(default=0, description="Predictions that carry both measures.")
    faithfulness_source: Literal["submitted", "measured"] | None = Field(
        default=None,
        description="submitted: averaged from the predictions; measured: the named agent re-asked on the corpus.",
    )
    measured: MeasuredFaithfulness | None = Field(default=None, description="The re-asks' counts, when measured.")

    def with_measured(self, measured: MeasuredFaithfulness) -> EvaluationReport:
        """The measures re-asked on the corpus replace any the predictions carried."""
        return self.model_copy(
            update={
                "sufficiency": measured.sufficiency,
                "necessity": measured.necessity,
                "n_with_faithfulness": measured.n_scored,
                "faithfulness_source": "measured",
                "measured": measured,
            }
        )

    def table(self) -> str:
        """A readable plain-text table."""
        lines = [f"{'metric':<22}{'value':>10}"]
        for key in (
            "n",
            "missing",
            "accuracy",
            "macro_f1",
            "weighted_f1",
            "ece",
            "n_with_confidence",
            "set_f1_samples",
            "set_f1_micro",
            "rouge_l",
            "bleu",
            "evidence_coverage",
            "cross_modal_rate",
            "sufficiency",
            "necessity",
            "n_with_faithfulness",
            "faithfulness_source",
        ):
            v = getattr(self, key)
            lines.append(f"{key:<22}{'-' if v is None else (f'{v:.4f}' if isinstance(v, float) else v):>10}")
        lines += ["", f"{'label':<14}{'precision':>10}{'recall':>10}{'f1':>10}{'support':>9}"]
        for lab, s in self.per_label.items():
            lines.append(f"{lab:<14}{s.precision:>10.4f}{s.recall:>10.4f}{s.f1:>10.4f}{s.support:>9}")
        return "\n".join(lines)


def _mean(xs: list[float]) -> float | None:
    return sum(xs) / len(xs) if xs else None


class Evaluator:
    """Scores a predictions file against an answers file (see the module docstring)."""

    def evaluate(self, predictions: dict[str, dict[str, Any]], answers: dict[str, dict[str, Any]]) -> EvaluationReport:
        ids = sorted(answers)
        gold = [str(answers[i].get("label")) for i in ids]
        pred = [str(predictions.get(i, {}).get("label")) if i in predictions else None for i in ids]
        labels = sorted(set(gold) | {p for p in pred if p is not None})
        per_label = {}
        for lab in labels:
            tp = sum(g == lab and p == lab for g, p in zip(gold, pred, strict=True))
            fp = sum(g != lab and p == lab for g, p in zip(gold, pred, strict=True))
            fn = sum(g == lab and p != lab for g, p in zip(gold, pred, strict=True))
            prec = tp / (tp + fp) if tp + fp else 0.0
            rec = tp / (tp + fn) if tp + fn else 0.0
            f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
            per_label[lab] = LabelScores(precision=prec, recall=rec, f1=f1, support=tp + fn)
        n = len(ids)
        support = sum(s.support for s in per_label.values())
        set_items, tp_all, pred_all, gold_all = [], 0, 0, 0
        for i in ids:
            g_set = set(answers[i].get("labels") or [])
            if not g_set:
                continue
            p_item = predictions.get(i, {})
            p_set = set(p_item.get("labels") or ([p_item["label"]] if p_item.get("label") else []))
            inter = len(g_set & p_set)
            set_items.append(2 * inter / (len(g_set) + len(p_set)))
            tp_all, pred_all, gold_all = tp_all + inter, pred_all + len(p_set), gold_all + len(g_set)
        refs = [(i, _text(answers[i].get("rationale"))) for i in ids]
        refs = [(i, r) for i, r in refs if tokens(r)]
        cands = [_text(predictions.get(i, {}).get("rationale")) for i, _ in refs]
        coverage, multi = [], []
        for i in ids:
            available = set(answers[i].get("modalities") or [])
            cited = set(predictions.get(i, {}).get("evidence_modalities") or [])
            if available:
                coverage.append(len(cited & available) / len(available))
                multi.append(float(len(cited & available) >= 2))
        from emoforge.quality.calibration import expected_calibration_error

        stated: list[tuple[float, bool]] = []
        for i, g, p in zip(ids, gold, pred, strict=True):
            c = predictions[i].get("confidence") if p is not None else None
            if isinstance(c, int | float) and not isinstance(c, bool) and 0.0 <= float(c) <= 1.0:
                stated.append((float(c), g == p))
        faithful = [
            (float(item["sufficiency"]), float(item["necessity"]))
            for i in ids
            if (item := predictions.get(i)) is not None
            and all(isinstance(item.get(k), int | float) and 0 <= item[k] <= 1 for k in ("sufficiency", "necessity"))
        ]
        return EvaluationReport(
            n=n,
            faithfulness_source="submitted" if faithful else None,
            sufficiency=_mean([f for f, _ in faithful]),
            necessity=_mean([x for _, x in faithful]),
            n_with_faithfulness=len(faithful),
            ece=expected_calibration_error([c for c, _ in stated], [ok for _, ok in stated]) if stated else None,
            n_with_confidence=len(stated),
            missing=sum(p is None for p in pred),
            accuracy=sum(g == p for g, p in zip(gold, pred, strict=True)) / n if n else 0.0,
            macro_f1=_mean([s.f1 for s in per_label.values()]) or 0.0,
            weighted_f1=sum(s.f1 * s.support for s in per_label.values()) / support if support else 0.0,
            set_f1_samples=_mean(set_items),
            set_f1_micro=(2 * tp_all / (pred_all + gold_all)) if set_items else None,
            rouge_l=_mean([rouge_l(c, r) for c, (_, r) in zip(cands, refs, strict=True)]),
            bleu=corpus_bleu(cands, [r for _, r in refs]) if refs else None,
            evidence_coverage=_mean(coverage),
            cross_modal_rate=_mean(multi),
            per_label=per_label,
        )
