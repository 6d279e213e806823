"""Streamed reads equal whole-table reads: ``iter_tables`` and ``read_rows`` against
``read_table``, and ``summarize`` (counted in Arrow a table at a time) against a plain loop
over every row as a dict, on a corpus of many shards with superseded rows, failures, human
labels, paid agents, off-domain inputs, unknown terms and a shard damaged in a column that
only the second pass of a streamed read meets."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from emoforge.storage.ledger import RunLedger
from emoforge.storage.records import DomainCheck, SegmentRow, Terms
from emoforge.storage.schema import table_to_rows
from emoforge.storage.shards import CorpusWriter, iter_tables, read_manifest, read_rows, read_table, verify
from emoforge.storage.summary import SUMMARY_COLUMNS, summarize, terms_counts
from emoforge.storage.summary_tally import failure_kinds
from tests.release.factory import failed_judgement, human, make_row
from tests.storage.test_jury_ledger import _row as paid_row
from tests.storage.test_reads import _flip_in_column
from tests.storage.test_shards import cfg


def _varied(i: int, run: str) -> SegmentRow:
    """Row ``i`` of a run: which kind of row it is cycles with ``i``; ``run`` changes its label."""
    label = "sad" if run == "run-b" else ("happy", "angry", "neutral")[i % 3]
    rec = f"rec{i // 4:03d}"
    kind = i % 7
    if kind == 0:
        return make_row(rec, i, label, votes=(label, None, label))  # a refused vote
    if kind == 1:
        return make_row(rec, i, label, needs_review=True, human=[human("fearful", day=2), human("sad", day=1)])
    if kind == 2:
        return make_row(rec, i, None, failed=True, terms=Terms())
    if kind == 3:
        row = make_row(rec, i, label, needs_review=True)
        far = DomainCheck(distance=9, residual=4, trust=0.05, min_trust=0.3, off_domain=True, reference="x")
        anns = [row.annotations[0].model_copy(update={"domain": far}), *row.annotations[1:]]
        reasons = ["off_domain: voice trust 0.05 < 0.30", "low_confidence"]
        consensus = row.consensus.model_copy(update={"review_reasons": reasons}) if row.consensus else None
        return row.model_copy(update={"annotations": anns, "consensus": consensus})
    if kind == 4:
        row = make_row(rec, i, label)
        verdicts = [failed_judgement(row.verdicts[0], row.annotations[1].id), *row.verdicts[1:]]
        return row.model_copy(update={"verdicts": verdicts})
    if kind == 5:
        paid = paid_row(i, ["gpt", "claude"][: 1 + i % 2], ["gemini"], review=i % 2 == 0)
        return paid.model_copy(update={"row_id": f"{rec}-{i:05d}-paid"})
    return make_row(rec, i, label, speaker=f"spk{i % 3}", terms=Terms(licence="CC0-1.0", consent="research"))


def _corpus(root: Path) -> str:
    """36 rows over shards of 4; run-b rewrites a third of them (newer copies) and the shard
    holding the first of those copies gets a flipped byte in its consensus labels."""
    writer = CorpusWriter(str(root), cfg(max_rows_per_shard=4), "run-a")
    for first in range(0, 36, 4):
        writer.write([_varied(i, "run-a").model_copy(update={"run_id": "run-a"}) for i in range(first, first + 4)])
    writer.close()
    writer = CorpusWriter(str(root), cfg(max_rows_per_shard=4), "run-b")
    for first in range(0, 36, 12):
        writer.write([_varied(i, "run-b").model_copy(update={"run_id": "run-b"}) for i in range(first, first + 4)])
    writer.close()
    return str(root)


def _damage(root: str) -> str:
    """Flip a byte in the consensus labels of run-b's first shard; returns its name."""
    name = read_manifest(root)["shards"][9]["name"]
    _flip_in_column(Path(root) / name, "consensus.primary_label")
    return name


def _ids_and_runs(table: pa.Table) -> list[tuple[str, str]]:
    return list(zip(table.column("row_id").to_pylist(), table.column("run_id").to_pylist(), strict=True))


def test_streamed_tables_are_read_table_in_order(tmp_path: Path) -> None:
    root = _corpus(tmp_path / "corpus")
    whole = read_table(root)
    streamed = list(iter_tables(root, max_rows=3))
    assert max(t.num_rows for t in streamed) == 3
    assert _ids_and_runs(pa.concat_tables(streamed)) == _ids_and_runs(whole)
    assert sum(run == "run-b" for _, run in _ids_and_runs(whole)) == 12  # superseded copies are gone
    columns = ["status", "recording.id"]
    projected = pa.concat_tables(iter_tables(root, columns))
    assert projected.column_names == read_table(root, columns).column_names == ["status", "recording"]
    assert projected.equals(read_table(root, columns))
    assert [r.model_dump() for r in read_rows(root)] == [r.model_dump() for r in table_to_rows(whole)]


def test_a_shard_unreadable_in_the_second_pass_gives_back_the_older_copies(tmp_path: Path) -> None:
    root = _corpus(tmp_path / "corpus")
    name = _damage(root)
    whole = read_table(root, ["row_id", "run_id", *SUMMARY_COLUMNS])  # meets the CRC: skips the shard
    streamed = pa.concat_tables(iter_tables(root, ["row_id", "run_id", *SUMMARY_COLUMNS]))
    assert sorted(_ids_and_runs(streamed)) == sorted(_ids_and_runs(whole))
    older = {rid for rid, run in _ids_and_runs(whole) if run == "run-a"}
    assert len(older) == 36 - 12 + 4  # the damaged shard's four ids come from run-a
    assert verify(root, full=False) == [] and any(name in p for p in verify(root))  # only the full check sees it


@pytest.mark.parametrize("damaged", [False, True])
def test_summarize_counts_what_a_loop_over_every_row_counts(tmp_path: Path, damaged: bool) -> None:
    root = _corpus(tmp_path / "corpus")
    if damaged:
        _damage(root)
    got = summarize(root)
    assert got["rows"] == 36 and got["failure_kinds"] and got["off_domain"]["segments"]
    assert got["jury"]["by_agent"]["gpt"]["cost_usd"] > 0 and got["verified"] and got["labels"]
    expected = _summarize_by_rows(root)
    if damaged:  # rows come back in another order: counters may list their keys in another order
        for key in ("status", "labels", "failures", "annotations", "review_reasons", "failure_kinds"):
            assert got[key] == expected[key]
        assert got["jury"] == expected["jury"] and got["terms"] == expected["terms"]
    else:
        assert json.dumps(got, default=str) == json.dumps(expected, default=str)


def _summarize_by_rows(root: str) -> dict[str, Any]:
    """``summarize`` as a loop over every row as a dict (how it counted before it streamed)."""
    table = read_table(root, columns=SUMMARY_COLUMNS)
    ledger = RunLedger()
    counts: dict[str, Counter[Any]] = {k: Counter() for k in ("failures", "labels", "annotations", "kinds")}
    reasons: Counter[str] = Counter()
    far_agents: Counter[str] = Counter()
    review = verified = judged = far_rows = 0
    confidences = []
    columns = ("failure", "consensus", "annotations", "jury", "verdicts", "human")
    for failure, consensus, anns, jury, verdicts, humans in zip(
        *(table.column(c).to_pylist() for c in columns), strict=True
    ):
        from emoforge.storage.records import phase_of

        ledger.add_columns(jury, anns or [], consensus, verdicts or [])
        if failure:
            counts["failures"][f"{phase_of(failure['stage'])}:{failure['kind']}"] += 1
        chosen = max((h for h in humans or [] if h["label"]), key=lambda h: h["reviewed_at"], default=None)
        verified += bool(humans)
        if consensus:
            counts["labels"][(chosen or {}).get("label") or consensus["primary_label"] or "(none)"] += 1
            review += bool(consensus["needs_review"]) and not humans
            confidences.append(consensus["confidence"])
            judged += 1
            reasons.update(r.split(":", 1)[0] for r in consensus.get("review_reasons") or [])
        far = [a["agent"] for a in anns or [] if (a.get("domain") or {}).get("off_domain")]
        far_agents.update(far)
        far_rows += bool(far)
        for a in anns or []:
            counts["annotations"][f"{a['agent']}:{a['status']}"] += 1
        counts["kinds"].update(failure_kinds(anns or [], verdicts or []))
    got = summarize(root)
    return {
        **got,  # the manifest's parts are read as they were
        "rows": table.num_rows,
        "status": dict(Counter(table.column("status").to_pylist())),
        "labels": dict(counts["labels"]),
        "failures": dict(counts["failures"]),
        "annotations": dict(counts["annotations"]),
        "needs_review": review,
        "review_reasons": dict(reasons),
        "off_domain": {
            "segments": far_rows,
            "share": round(far_rows / judged, 4) if judged else None,
            "by_agent": dict(far_agents),
        },
        "verified": verified,
        "failure_kinds": dict(counts["kinds"]),
        "mean_confidence": round(sum(confidences) / len(confidences), 3) if confidences else None,
        "jury": ledger.model_dump(mode="json"),
        "terms": terms_counts(table.column("recording").to_pylist()),
    }
