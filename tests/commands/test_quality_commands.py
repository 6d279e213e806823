"""Corpus level: judge calibration, `emoforge agreement` and `emoforge aggregate` on a written corpus."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from emoforge.cli import app
from emoforge.quality.calibration import auroc, calibration_report
from emoforge.storage.records import SegmentRow
from emoforge.storage.shards import read_manifest, read_rows
from tests.quality.corpus import simulated_rows, write_corpus


@pytest.fixture(scope="module")
def simulated() -> tuple[list[SegmentRow], dict[str, str]]:
    return simulated_rows(n=60, seed=5)


@pytest.fixture(scope="module")
def corpus(simulated: tuple[list[SegmentRow], dict[str, str]], tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_corpus(tmp_path_factory.mktemp("corpus"), simulated[0])


def test_auroc_matches_sklearn() -> None:
    from sklearn.metrics import roc_auc_score

    scores = [0.1, 0.4, 0.35, 0.8, 0.8, 0.2, 0.9, 0.5]
    labels = [0, 0, 1, 1, 0, 0, 1, 1]
    assert auroc(scores, [bool(x) for x in labels]) == pytest.approx(roc_auc_score(labels, scores))


def test_judge_separates_right_from_wrong(simulated: tuple[list[SegmentRow], dict[str, str]]) -> None:
    rows, truth = simulated
    report = calibration_report(rows, truth)
    assert report.n_labelled_segments == 60 and report.n_judged == 240
    assert report.auroc["s_final"] is not None and report.auroc["s_final"] > 0.9
    assert report.auroc["s_reason"] is not None and report.auroc["s_reason"] > 0.75
    acc = report.aggregator_accuracy
    single = report.annotator_accuracy
    assert report.best_single_annotator == "good" and single["constant"] == pytest.approx(0.3)
    assert acc["weighted"] is not None and acc["majority"] is not None and acc["weighted"] >= acc["majority"]
    assert acc["consensus"] is not None and acc["consensus"] >= max(v for v in single.values() if v is not None)
    assert all(acc[m] is not None for m in ("dawid_skene", "mace"))


def test_agreement_command(corpus: Path) -> None:
    result = CliRunner().invoke(app, ["agreement", str(corpus), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    stored = read_manifest(str(corpus))["stats"]["agreement"]
    assert stored == report
    assert report["n_segments"] == 60 and report["agents"] == ["constant", "fair", "good", "poor"]
    assert 0.0 < report["alpha"]["label_nominal"] < 1.0
    # The constant annotator agrees with the consensus no better than chance; the good one nearly always.
    assert report["per_annotator"]["constant"]["kappa_vs_consensus"] == pytest.approx(0.0, abs=0.05)
    assert report["per_annotator"]["good"]["kappa_vs_consensus"] > 0.85
    assert report["per_modality"]["face"]["n_segments"] == 60 and report["per_modality"]["voice"]["n_segments"] == 0
    assert report["human"]["vs_consensus"]["n"] == 30
    assert len(report["pairs"]) == 6


def test_aggregate_command(corpus: Path) -> None:
    result = CliRunner().invoke(app, ["aggregate", str(corpus)])
    assert result.exit_code == 0, result.output
    assert "AUROC(S_final)=" in result.output
    table = pq.read_table(corpus / "aggregation.parquet")
    assert table.num_rows == 5 * 60
    assert set(table.column("method").to_pylist()) == {"majority", "weighted", "dawid_skene", "mace", "pooled_fitted"}
    stats = read_manifest(str(corpus))["stats"]
    assert stats["aggregation"]["sidecar"] == "aggregation.parquet"
    competence = stats["aggregation"]["mace"]["annotators"]
    assert competence["constant"] < 0.3 < competence["good"]
    # The stat is the share of segments where the judge-weighted vote elects the stored
    # (pooled) consensus label: recount it from the sidecar and the shards.
    stored = {r.row_id: r.consensus.primary_label for r in read_rows(str(corpus)) if r.consensus is not None}
    weighted = {
        s: lab
        for s, lab, m in zip(*(table.column(c).to_pylist() for c in ("segment_id", "label", "method")), strict=True)
        if m == "weighted"
    }
    expected = sum(weighted[s] == stored[s] for s in weighted) / len(weighted)
    assert stats["aggregation"]["weighted"]["agree_with_consensus"] == pytest.approx(expected)
    assert expected > 0.9  # both vote for the judged labels of the same jury
    assert stats["calibration"]["n_labelled_segments"] == 30  # the rows a human verified
    # 30 human labels: enough to refit the pooled vote. The annotator that always says
    # neutral is weighted down, the accurate ones up (their judge-discounted confidences
    # are too cautious), and out of fold the consensus is better calibrated.
    fit = stats["pool_fit"]
    assert fit["fitted"] and fit["n_labelled"] == 30 and fit["fold_by"] == "segment"
    w = fit["weights"]
    assert w["constant"] < 1.0 < w["poor"] < w["fair"] < w["good"]
    assert fit["ece_after"] < fit["ece_before"] - 0.1
    assert "pooled vote refitted on 30 labelled segments" in result.output
    assert "  pool_weights:" in result.output


def test_aggregate_refuses_to_refit_on_too_few_labels(corpus: Path) -> None:
    result = CliRunner().invoke(app, ["aggregate", str(corpus), "--min-labelled", "31"])
    assert result.exit_code == 0, result.output
    assert "not refitted: 30 labelled segments < 31" in result.output
    assert read_manifest(str(corpus))["stats"]["pool_fit"]["fitted"] is False


def test_commands_reject_a_non_corpus(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["agreement", str(tmp_path)])
    assert result.exit_code == 2


def test_aggregate_with_reference_file(
    corpus: Path, simulated: tuple[list[SegmentRow], dict[str, str]], tmp_path: Path
) -> None:
    refs = tmp_path / "refs.csv"
    refs.write_text("segment_id,label\n" + "".join(f"{k},{v}\n" for k, v in simulated[1].items()))
    result = CliRunner().invoke(app, ["aggregate", str(corpus), "--references", str(refs), "--json"])
    assert result.exit_code == 0, result.output
    calibration = json.loads(result.output)["calibration"]
    assert calibration["n_labelled_segments"] == 60 and calibration["n_judged"] == 240
    assert read_manifest(str(corpus))["stats"]["calibration"] == calibration
