"""Evaluation metrics against hand-computed values (and scikit-learn where it has them)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from typer.testing import CliRunner

from emoforge.cli import app
from emoforge.release.evaluate import Evaluator, corpus_bleu, load_items, rouge_l

ANSWERS = [
    {
        "row_id": "a1",
        "label": "happy",
        "labels": ["happy", "surprised"],
        "rationale": "The man smiles broadly.",
        "modalities": ["face", "voice", "text"],
    },
    {"row_id": "a2", "label": "sad", "labels": ["sad"], "rationale": "voice is low and slow", "modalities": ["voice"]},
    {"row_id": "a3", "label": "angry", "labels": ["angry"], "rationale": "he shouts", "modalities": ["face", "voice"]},
    {"row_id": "a4", "label": "sad", "labels": ["sad"], "rationale": "", "modalities": []},
]
PREDICTIONS = [
    {
        "row_id": "a1",
        "label": "happy",
        "labels": ["happy"],
        "rationale": ["the man", "smiles"],
        "evidence_modalities": ["face", "text"],
    },
    {"row_id": "a2", "label": "happy", "rationale": "voice is low", "evidence_modalities": ["voice"]},
    {
        "row_id": "a3",
        "label": "angry",
        "labels": ["angry", "sad"],
        "rationale": "he shouts loudly",
        "evidence_modalities": ["face"],
    },
]  # a4 has no prediction: it counts as wrong


def _by_id(items: list[dict]) -> dict[str, dict]:
    return {i["row_id"]: i for i in items}


def test_classification_metrics_hand_computed() -> None:
    r = Evaluator().evaluate(_by_id(PREDICTIONS), _by_id(ANSWERS))
    assert (r.n, r.missing) == (4, 1)
    assert r.accuracy == 0.5
    # happy P=1/2 R=1 F1=2/3 (n=1); sad F1=0 (n=2); angry F1=1 (n=1)
    assert r.per_label["happy"].f1 == pytest.approx(2 / 3)
    assert r.macro_f1 == pytest.approx(5 / 9)
    assert r.weighted_f1 == pytest.approx(5 / 12)
    from sklearn.metrics import f1_score

    gold = [a["label"] for a in ANSWERS]
    pred = ["happy", "happy", "angry", "(missing)"]
    labels = ["angry", "happy", "sad"]
    assert r.macro_f1 == pytest.approx(f1_score(gold, pred, labels=labels, average="macro"))
    assert r.weighted_f1 == pytest.approx(f1_score(gold, pred, labels=labels, average="weighted"))


def test_ece_of_stated_confidence_hand_computed() -> None:
    # a1 right at 0.9 (bin 9), a2 wrong at 0.85 (bin 8), a3 right at 0.3 (bin 3), a4 missing:
    # ECE = 1/3 |1 - 0.9| + 1/3 |0 - 0.85| + 1/3 |1 - 0.3| = 1.65 / 3.
    stated = [p | {"confidence": c} for p, c in zip(PREDICTIONS, (0.9, 0.85, 0.3), strict=True)]
    r = Evaluator().evaluate(_by_id(stated), _by_id(ANSWERS))
    assert r.n_with_confidence == 3
    assert r.ece == pytest.approx(1.65 / 3)
    assert "ece" in r.table()
    assert Evaluator().evaluate(_by_id(PREDICTIONS), _by_id(ANSWERS)).ece is None


def test_faithfulness_of_submitted_evidence_is_averaged() -> None:
    # a1 and a3 carry both measures (computed by the submitter re-asking its own model); a2
    # carries one out of range, which is left out, as is the missing a4.
    scored = [
        PREDICTIONS[0] | {"sufficiency": 1.0, "necessity": 0.5},
        PREDICTIONS[1] | {"sufficiency": 2.0, "necessity": 0.5},
        PREDICTIONS[2] | {"sufficiency": 0.5, "necessity": 0.0},
    ]
    r = Evaluator().evaluate(_by_id(scored), _by_id(ANSWERS))
    assert r.n_with_faithfulness == 2
    assert r.sufficiency == pytest.approx(0.75) and r.necessity == pytest.approx(0.25)
    assert "sufficiency" in r.table()
    assert Evaluator().evaluate(_by_id(PREDICTIONS), _by_id(ANSWERS)).sufficiency is None


def test_set_f1_hand_computed() -> None:
    r = Evaluator().evaluate(_by_id(PREDICTIONS), _by_id(ANSWERS))
    # per item: 2*1/(2+1), 0, 2*1/(1+2), 0 (missing) -> 1/3; micro: 2*2 / (4 + 5)
    assert r.set_f1_samples == pytest.approx(1 / 3)
    assert r.set_f1_micro == pytest.approx(4 / 9)


def test_rationale_and_evidence_hand_computed() -> None:
    r = Evaluator().evaluate(_by_id(PREDICTIONS), _by_id(ANSWERS))
    # ROUGE-L F1: (3/3, 3/4) -> 6/7; (3/3, 3/5) -> 3/4; (2/3, 2/2) -> 4/5; a4 has no reference
    assert r.rouge_l == pytest.approx((6 / 7 + 3 / 4 + 4 / 5) / 3)
    # coverage: 2/3, 1, 1/2 (a4 has no modality); cross-modal: only a1 cites two
    assert r.evidence_coverage == pytest.approx((2 / 3 + 1 + 1 / 2) / 3)
    assert r.cross_modal_rate == pytest.approx(1 / 3)
    # the 3-token candidates have no 4-grams: BLEU-4 is 0 by definition
    assert r.bleu == 0.0


def test_bleu_hand_computed() -> None:
    # clipped precisions 5/6, 3/5, 2/4, 1/3, equal lengths
    assert corpus_bleu(["the cat sat on the mat"], ["the cat sat on a mat"]) == pytest.approx(
        (5 / 6 * 3 / 5 * 2 / 4 * 1 / 3) ** 0.25
    )
    # all precisions 1, candidate 4 tokens vs reference 6: brevity penalty exp(1 - 6/4)
    assert corpus_bleu(["the cat sat on"], ["the cat sat on the mat"]) == pytest.approx(math.exp(-0.5))
    # zero 3- and 4-gram matches smoothed to 0.1 / count: (2/4 * 1/3 * 0.1/2 * 0.1/1) ** 0.25
    assert corpus_bleu(["he shouts loudly now"], ["he shouts"]) == pytest.approx((2 / 4 * 1 / 3 * 0.05 * 0.1) ** 0.25)


def test_rouge_l_edge_cases() -> None:
    assert rouge_l("a b c d", "a b c d") == 1.0
    assert rouge_l("x y", "a b") == 0.0
    assert rouge_l("", "a b") == 0.0
    # LCS of "a c b d" and "a b c d" is 3
    assert rouge_l("a c b d", "a b c d") == pytest.approx(0.75)


def test_cli_table_and_json(tmp_path: Path) -> None:
    preds, answers = tmp_path / "preds.jsonl", tmp_path / "answers.jsonl"
    preds.write_text("".join(json.dumps(p) + "\n" for p in PREDICTIONS))
    answers.write_text("".join(json.dumps(a) + "\n" for a in ANSWERS))
    out = tmp_path / "metrics.json"
    res = CliRunner().invoke(app, ["evaluate", str(preds), "--answers", str(answers), "--json-out", str(out)])
    assert res.exit_code == 0, res.output
    assert "accuracy                  0.5000" in res.output
    assert "happy" in res.output and "support" in res.output
    assert json.loads(out.read_text())["macro_f1"] == pytest.approx(5 / 9)
    assert set(load_items(answers)) == {"a1", "a2", "a3", "a4"}
