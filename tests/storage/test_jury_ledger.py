"""The jury's decision on each row and the cost ledger read from rows: the numbers add up,
Arrow round trips keep them, and shards written before the `jury` column still load."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from emoforge.configs.storage import StorageConfig
from emoforge.storage.ledger import RunLedger
from emoforge.storage.records import (
    Annotation,
    Consensus,
    JuryDecision,
    RecordingRef,
    RunContext,
    Segment,
    SegmentRow,
    Status,
    Usage,
    Verdict,
)
from emoforge.storage.schema import rows_to_table, table_to_rows
from emoforge.storage.shards import CorpusWriter, read_manifest, read_rows, write_manifest
from emoforge.storage.summary import summarize

CTX = RunContext(run_id="ledger-test", config_hash="0123456789abcdef", emoforge_version="0.0.0")


def _row(i: int, paid: list[str], skipped: list[str], review: bool = False) -> SegmentRow:
    seg = Segment(id=f"rec-0000-{i:05d}", recording_id="rec-0000", index=i, start_s=i, end_s=i + 1.0, kind="speech")
    anns = [
        Annotation(
            id=f"{seg.id}-voice", segment_id=seg.id, agent="voice", backend="voice_cues", labels=["sad"],
            primary_label="sad", usage=Usage(), provenance=CTX.provenance("annotate"),
        )
    ]  # fmt: skip
    for name in paid:
        anns.append(
            Annotation(
                id=f"{seg.id}-{name}", segment_id=seg.id, agent=name, backend="openai", labels=["sad"],
                primary_label="sad", usage=Usage(calls=1, input_tokens=1000, output_tokens=200, cost_usd=0.002),
                provenance=CTX.provenance("annotate"),
            )
        )  # fmt: skip
    jury = JuryDecision(
        policy="adaptive", stop="segment_cap" if review else "decisive", route="review" if review else "label",
        rounds=1 + len(paid), asked=["voice", *paid], skipped=skipped, confidence=0.9, calls=len(paid),
        calls_saved=len(skipped), cost_usd=0.002 * len(paid), saved_usd=0.01 * len(skipped),
        tokens={"text": 900 * len(paid), "image": 100 * len(paid), "output": 200 * len(paid)} if paid else {},
    )  # fmt: skip
    consensus = Consensus(
        segment_id=seg.id, method="pooled", primary_label="sad", confidence=0.9, entropy=0.5, n_annotations=len(anns),
        n_valid=len(anns), needs_review=review, provenance=CTX.provenance("aggregate"),
    )  # fmt: skip
    return SegmentRow(
        row_id=seg.id, run_id=CTX.run_id, status=Status.ok, segment=seg, annotations=anns, consensus=consensus,
        jury=jury, recording=RecordingRef(id="rec-0000", uri="x.wav", sha256="0" * 64), config_hash="h",
    )  # fmt: skip


ROWS = [_row(0, [], ["mini", "big"]), _row(1, ["mini"], ["big"]), _row(2, ["mini"], ["big"], review=True)]


def test_ledger_adds_up_per_agent_part_and_labelled_segment() -> None:
    ledger = RunLedger()
    for row in ROWS:
        ledger.add(row)
    assert (ledger.segments, ledger.labelled, ledger.calls, ledger.calls_saved) == (3, 2, 2, 4)
    assert ledger.cost_usd == pytest.approx(0.004) and ledger.saved_usd == pytest.approx(0.04)
    assert ledger.by_part == {"text": 1800, "image": 200, "output": 400}
    assert ledger.stops == {"decisive": 2, "segment_cap": 1} and ledger.policies == {"adaptive": 3}
    mini, big, voice = ledger.by_agent["mini"], ledger.by_agent["big"], ledger.by_agent["voice"]
    assert (mini.asked, mini.skipped, mini.calls, mini.input_tokens, mini.output_tokens) == (2, 1, 2, 2000, 400)
    assert (big.asked, big.skipped, big.calls) == (0, 3, 0)
    assert (voice.asked, voice.calls, voice.cost_usd) == (3, 0, 0.0)
    # Two labelled segments (the third went to review) for 0.004 USD and two calls.
    assert ledger.per_labelled_segment == {"cost_usd": 0.002, "calls": 1.0}
    assert ledger.model_dump()["per_labelled_segment"] == {"cost_usd": 0.002, "calls": 1.0}


def test_corpus_ledger_reads_the_same_numbers_back_from_the_shards(tmp_path: Path) -> None:
    writer = CorpusWriter(str(tmp_path), StorageConfig(), CTX.run_id)
    writer.write(ROWS)
    writer.close()
    assert [r.jury for r in read_rows(str(tmp_path))] == [r.jury for r in ROWS]
    jury = summarize(str(tmp_path))["jury"]
    direct = RunLedger()
    for row in ROWS:
        direct.add(row)
    assert jury == direct.model_dump(mode="json")


def test_shards_written_before_the_jury_column_still_load(tmp_path: Path) -> None:
    """An older shard (no `jury` column) next to a new one: both read, the old rows with None."""
    old = [r.model_copy(update={"row_id": f"old-{i}", "jury": None}) for i, r in enumerate(ROWS)]
    writer = CorpusWriter(str(tmp_path), StorageConfig(), CTX.run_id)
    writer.write(old)
    writer.flush()
    writer.write(ROWS[:1])
    writer.close()
    manifest = read_manifest(str(tmp_path))
    entry = manifest["shards"][0]
    buffer = io.BytesIO()
    pq.write_table(rows_to_table(old).drop_columns(["jury"]), buffer)  # as an older emoforge wrote it
    data = buffer.getvalue()
    (tmp_path / entry["name"]).write_bytes(data)
    entry.update(sha256=hashlib.sha256(data).hexdigest(), bytes=len(data))
    write_manifest(str(tmp_path), manifest)
    assert "jury" not in pq.read_schema(tmp_path / entry["name"]).names

    rows = {r.row_id: r for r in read_rows(str(tmp_path))}
    assert set(rows) == {"old-0", "old-1", "old-2", ROWS[0].row_id}
    assert rows["old-1"].jury is None and rows["old-1"].annotations == ROWS[1].annotations
    assert rows[ROWS[0].row_id].jury == ROWS[0].jury
    info = summarize(str(tmp_path))
    assert info["rows"] == 4 and info["jury"]["segments"] == 1  # the old rows are read, not skipped
    assert not info["problems"]


def _judged(row: SegmentRow, usage: Usage | None, judge: str = "llm") -> SegmentRow:
    verdicts = [
        Verdict(
            id=f"{a.id}-{judge}", annotation_id=a.id, judge=judge, s_rec=0.8, s_reason=0.7, s_cot=0.6, s_final=0.7,
            weights=[0.4, 0.3, 0.3], usage=usage, provenance=CTX.provenance("judge"),
        )
        for a in row.annotations
    ]  # fmt: skip
    return row.model_copy(update={"verdicts": verdicts})


JUDGED = [
    _judged(ROWS[0], Usage(calls=1, attempts=1, input_tokens=800, output_tokens=60, cost_usd=0.0005)),
    _judged(ROWS[1], Usage(cached=True)),  # a rerun: the judgement came from the response cache
    _judged(ROWS[2], None, judge="rules"),  # the offline judge spends nothing and says so with null
]


def test_the_judge_spend_is_in_the_ledger_and_survives_the_shards(tmp_path: Path) -> None:
    ledger = RunLedger()
    for row in JUDGED:
        ledger.add(row)
    judge = ledger.by_agent["judge:llm"]
    # Row 0 has one annotation judged by one paid call; row 1's two judgements were cached.
    assert (judge.asked, judge.calls, judge.cached, judge.input_tokens, judge.cost_usd) == (3, 1, 2, 800, 0.0005)
    assert "judge:rules" not in ledger.by_agent
    assert ledger.calls == 2 + 1 and ledger.cost_usd == pytest.approx(0.004 + 0.0005)
    assert ledger.per_labelled_segment == {"cost_usd": pytest.approx(0.00225), "calls": 1.5}
    writer = CorpusWriter(str(tmp_path), StorageConfig(), CTX.run_id)
    writer.write(JUDGED)
    writer.close()
    assert [v.usage for r in read_rows(str(tmp_path)) for v in r.verdicts] == [
        v.usage for r in JUDGED for v in r.verdicts
    ]
    assert summarize(str(tmp_path))["jury"] == ledger.model_dump(mode="json")


def test_verdicts_written_before_they_kept_their_spend_still_load(tmp_path: Path) -> None:
    """`Verdict.usage` was added within schema v1: a shard without it reads with None."""
    table = rows_to_table(JUDGED[:1])
    verdicts = table.column("verdicts").combine_chunks()
    item = verdicts.type.value_type
    keep = [i for i in range(item.num_fields) if item.field(i).name != "usage"]
    flat = verdicts.values
    old_items = pa.StructArray.from_arrays([flat.field(i) for i in keep], fields=[item.field(i) for i in keep])
    old = pa.ListArray.from_arrays(verdicts.offsets, old_items, mask=verdicts.is_null())
    table = table.set_column(table.schema.get_field_index("verdicts"), "verdicts", old)
    pq.write_table(table, tmp_path / "old.parquet")
    (row,) = table_to_rows(pq.read_table(tmp_path / "old.parquet"))
    assert [v.usage for v in row.verdicts] == [None] and row.verdicts[0].s_final == 0.7
    ledger = RunLedger()
    ledger.add(row)
    assert "judge:llm" not in ledger.by_agent
