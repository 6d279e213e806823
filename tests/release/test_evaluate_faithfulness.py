"""`emoforge evaluate --corpus --agent`: faithfulness measured by re-asking the named agent.

The submitter is the real offline face cue agent. Its honest predictions cite the action
units it decided from; the same labels with the face evidence swapped for a voice cue are an
unfaithful submission. Measured, the first must score high on both measures and the second
low, whatever the submission claims about itself."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from emoforge.agents.cues.face import FaceCueAnnotator
from emoforge.cli import app
from emoforge.configs.agents import AgentConfig, TaxonomyConfig
from emoforge.storage.records import SegmentRow, Status
from tests.quality.corpus import simulated_rows, write_corpus
from tests.quality.records import CTX

CONFIG = "agents:\n  jury:\n    - {name: face, backend: face_cues}\n    - {name: voice, backend: voice_cues}\n"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[SegmentRow]]:
    rows, _ = simulated_rows(n=16, seed=11)
    root = write_corpus(tmp_path_factory.mktemp("faith") / "corpus", rows)
    return root, rows


def _honest(rows: list[SegmentRow]) -> list[dict[str, Any]]:
    face = FaceCueAnnotator(AgentConfig(name="face", backend="face_cues"), CTX, TaxonomyConfig())
    out = []
    for row in rows:
        assert row.segment is not None and row.features is not None
        ann = face.annotate(row.segment, row.features)
        if ann.status != Status.ok:
            continue
        out.append(
            {
                "row_id": row.row_id,
                "label": ann.primary_label,
                "confidence": ann.confidence,
                "label_scores": ann.label_scores,
                "evidence": [c.model_dump(mode="json") for c in ann.evidence],
                # What an unfaithful submitter could claim for itself: evaluate must not trust it.
                "sufficiency": 1.0,
                "necessity": 1.0,
            }
        )
    return out


def _write(path: Path, items: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(i) + "\n" for i in items), encoding="utf-8")
    return path


def _evaluate(tmp_path: Path, corpus: Path, preds: list[dict[str, Any]], *extra: str) -> Any:
    answers = _write(tmp_path / "answers.jsonl", [{"row_id": p["row_id"], "label": p["label"]} for p in preds])
    config = tmp_path / "jury.yaml"
    config.write_text(CONFIG, encoding="utf-8")
    args = ["evaluate", str(_write(tmp_path / "preds.jsonl", preds)), "--answers", str(answers), "--json"]
    return CliRunner().invoke(app, [*args, "--corpus", str(corpus), "--config", str(config), *extra])


def test_honest_evidence_measures_high_and_swapped_evidence_low(
    corpus: tuple[Path, list[SegmentRow]], tmp_path: Path
) -> None:
    root, rows = corpus
    honest = _honest(rows)
    assert len(honest) >= 10
    result = _evaluate(tmp_path, root, honest, "--agent", "face")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["faithfulness_source"] == "measured"
    m = report["measured"]
    assert m["n_scored"] == len(honest) and m["n_failed"] == m["n_not_in_corpus"] == m["n_skipped"] == 0
    # Measured on these 16 clips: sufficiency 0.71, necessity 0.44. Each emotional answer's
    # cited AUs are necessary (necessity 1); the agent's "neutral" cites the strongest weak AU
    # yet comes from the absence of any pattern, so removing that AU changes nothing (0): a
    # real property of the cue agent that the measure is meant to show.
    assert report["sufficiency"] >= 0.6 and report["necessity"] >= 0.35
    honest_faith = (report["sufficiency"] + report["necessity"]) / 2
    assert m["cost_usd"] == 0.0

    # Same labels and confidences, but citing a voice feature the face agent never reads.
    liar = [{**p, "evidence": [{"modality": "voice", "feature": "f0_mean_hz", "cue": "raised pitch"}]} for p in honest]
    result = _evaluate(tmp_path, root, liar, "--agent", "face")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    # Only the voice: the face agent has no face and cannot decide; without the voice it
    # still gives the same label, so the cited cue was neither sufficient nor necessary.
    assert report["sufficiency"] <= 0.1 and report["necessity"] <= 0.1
    assert honest_faith - (report["sufficiency"] + report["necessity"]) / 2 >= 0.4


def test_submitted_values_are_averaged_only_without_a_corpus(
    corpus: tuple[Path, list[SegmentRow]], tmp_path: Path
) -> None:
    _, rows = corpus
    preds = _honest(rows)
    answers = _write(tmp_path / "answers.jsonl", [{"row_id": p["row_id"], "label": p["label"]} for p in preds])
    result = CliRunner().invoke(
        app, ["evaluate", str(_write(tmp_path / "p.jsonl", preds)), "--answers", str(answers), "--json"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["faithfulness_source"] == "submitted" and report["sufficiency"] == 1.0
    assert report["measured"] is None


def test_rows_outside_the_corpus_and_missing_evidence_are_counted(
    corpus: tuple[Path, list[SegmentRow]], tmp_path: Path
) -> None:
    root, rows = corpus
    preds = _honest(rows)[:4]
    preds[0] = {**preds[0], "evidence": []}
    preds.append({"row_id": "not-in-this-corpus", "label": "happy", "evidence": [{"modality": "face"}]})
    preds.append({**preds[1], "row_id": rows[-1].row_id, "evidence": [{"modality": "smell"}]})
    result = _evaluate(tmp_path, root, preds, "--agent", "face")
    assert result.exit_code == 0, result.output
    m = json.loads(result.output)["measured"]
    assert m["n_predictions"] == 6 and m["n_not_in_corpus"] == 1 and m["n_malformed"] == 1
    # No evidence cites nothing: 0 / 0 without a call, and still counted as scored.
    assert m["n_no_evidence"] == 1 and m["n_scored"] == 4


def test_agent_must_be_named_and_exist(corpus: tuple[Path, list[SegmentRow]], tmp_path: Path) -> None:
    root, rows = corpus
    preds = _honest(rows)[:2]
    result = _evaluate(tmp_path, root, preds)
    assert result.exit_code == 2 and "--corpus and --agent go together" in result.output
    result = _evaluate(tmp_path, root, preds, "--agent", "gpt-judge")
    assert result.exit_code == 2 and "'gpt-judge' is not an enabled jury agent" in result.output
    # The simulated corpus was written without a run config: without --config, say so.
    answers = tmp_path / "answers.jsonl"
    args = ["evaluate", str(tmp_path / "preds.jsonl"), "--answers", str(answers), "--corpus", str(root)]
    result = CliRunner().invoke(app, [*args, "--agent", "face"])
    assert result.exit_code == 2 and "pass --config" in result.output


def test_a_real_corpus_re_asks_its_own_agent_with_its_stored_config(media_dir: Path, tmp_path: Path) -> None:
    """The corpus's stored run config builds the agent, and the agent gets its clips cut
    from the recording again: the voice recognizer's own annotations, submitted back."""
    from emoforge.flows.annotate import annotate_corpus
    from emoforge.storage.shards import read_rows

    out = tmp_path / "jfk"
    annotate_corpus(inputs=[str((media_dir / "jfk.flac").resolve())], out=str(out))
    rows = [r for r in read_rows(str(out)) if r.status == Status.ok]
    preds = [
        {
            "row_id": r.row_id,
            "label": a.primary_label,
            "confidence": a.confidence,
            "label_scores": a.label_scores,
            "evidence": [c.model_dump(mode="json") for c in a.evidence],
        }
        for r in rows
        for a in r.annotations
        if a.agent == "voice" and a.status == Status.ok
    ]
    assert preds, [a.agent for r in rows for a in r.annotations]
    answers = _write(tmp_path / "answers.jsonl", [{"row_id": p["row_id"], "label": p["label"]} for p in preds])
    args = ["evaluate", str(_write(tmp_path / "p.jsonl", preds)), "--answers", str(answers), "--json"]
    result = CliRunner().invoke(app, [*args, "--corpus", str(out), "--agent", "voice"])
    assert result.exit_code == 0, result.output
    m = json.loads(result.output)["measured"]
    assert m["n_scored"] == len(preds) and m["n_failed"] == 0
    # The recognizer reads one modality and cites all of it: shown only that, it answers as
    # before; without it, it has nothing to decide from.
    # (Within float noise: the clip is cut and encoded again in another process, with other
    # thread counts, and the encoder's output moves in the third decimal: 0.992 seen in CI.)
    assert m["sufficiency"] == pytest.approx(1.0, abs=0.03) and m["necessity"] == pytest.approx(1.0)
