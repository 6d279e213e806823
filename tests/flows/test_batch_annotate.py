"""The Annotate phase with an agent in ``mode: batch`` (agents/batch.py), against the scripted
OpenAI Batch API and the real SDK: a segment whose vote is at the provider is held back
(never committed with a missing vote), and the next run into the same corpus collects it
and commits the row with every vote, sending nothing again."""

from __future__ import annotations

from pathlib import Path

from emoforge.configs import PipelineConfig, load_config
from emoforge.flows.leases import released
from emoforge.flows.phase import PhaseEnv, run_phase
from emoforge.flows.phases.annotate import Annotate
from emoforge.flows.work import RecordingWork
from emoforge.storage.batches import pending_batches
from emoforge.storage.records import MediaInput, Recording, RunContext, Status
from tests.agents.batch_servers import OpenAIBatchFake
from tests.agents.conftest import make_features, make_segment


def _config(base_url: str) -> PipelineConfig:
    llm = {
        "name": "gpt", "backend": "openai", "model": "m1", "base_url": base_url, "api_key_env": "EMOFORGE_TEST_KEY",
        "mode": "batch", "modalities": ["text", "voice"], "price": {"input_per_mtok": 2.0, "output_per_mtok": 8.0},
    }  # fmt: skip
    jury = [{"name": "voice", "backend": "voice_cues"}, llm]
    return load_config(None, {"agents": {"jury": jury, "taxonomy": {"embedding_model": None}}})


def _work(ctx: RunContext) -> RecordingWork:
    rec = Recording(id="clip-abc", uri="clip.wav", sha256="0" * 64, size_bytes=1, duration_s=10.0)
    work = RecordingWork(item=MediaInput(uri="clip.wav"), recording=rec)
    segments = [make_segment(i, 1.0 + 3 * i, 3.5 + 3 * i) for i in range(2)]
    work.start_rows(segments, len(segments), ctx)
    for row, seg in zip(work.rows, segments, strict=True):
        row.features = make_features(seg)
    return work


@released
def _annotate(config: PipelineConfig, run_id: str, out: Path) -> RecordingWork:
    ctx = RunContext(run_id=run_id, config_hash="0123456789abcdef", emoforge_version="0.1.0")
    env = PhaseEnv(config=config, ctx=ctx, out=str(out), cache_dir=str(out / ".cache" / "responses"))
    return run_phase(Annotate(env), _work(ctx))


def test_pending_votes_hold_rows_back_until_a_later_run_collects_them(fake: OpenAIBatchFake, tmp_path: Path) -> None:
    config = _config(fake.base_url)
    fake.polls_before_end = 1
    first = _annotate(config, "run-1", tmp_path)
    assert first.failure is None
    assert first.rows == [] and first.pending_segments == 2  # nothing committed with a missing vote
    ctx = RunContext(run_id="run-1", config_hash="0123456789abcdef", emoforge_version="0.1.0")
    assert first.finished_rows(ctx) == []
    assert len(fake.creates) == 1 and len(fake.input_lines("batch_0")) == 2
    assert [b["requests"] for b in pending_batches(str(tmp_path))] == [2]

    still = _annotate(config, "run-2", tmp_path)  # the batch is still running: still held back
    assert still.rows == [] and still.pending_segments == 2

    done = _annotate(config, "run-3", tmp_path)
    assert done.pending_segments == 0 and len(done.rows) == 2
    for row in done.rows:
        assert [a.agent for a in row.annotations] == ["voice", "gpt"]  # config order
        gpt = row.annotations[1]
        assert gpt.status == Status.ok and gpt.primary_label == "happy" and gpt.usage.calls == 1
        assert row.jury is not None
    assert len(fake.creates) == 1 and pending_batches(str(tmp_path)) == []

    calls = len(fake.calls)
    again = _annotate(config, "run-4", tmp_path)  # everything answered from the response cache
    assert len(again.rows) == 2 and all(a.usage.cached for r in again.rows for a in r.annotations if a.agent == "gpt")
    assert len(fake.calls) == calls


def test_adaptive_rounds_go_out_as_one_batch_each_and_resume_by_replay(fake: OpenAIBatchFake, tmp_path: Path) -> None:
    """``agents.policy: adaptive`` with batch agents: each round of the adaptive jury is one
    provider batch of that round's agent. A segment waiting on a round is held back; the
    next run replays the earlier rounds from the response cache, collects the round, and
    only then sends the next one. Nothing is sent twice, nothing goes out in real time."""
    base = _config(fake.base_url).agents.model_dump()
    gpt = next(a for a in base["jury"] if a["name"] == "gpt")
    dear = {**gpt, "name": "gpt2", "model": "m2", "price": {"input_per_mtok": 20.0, "output_per_mtok": 80.0}}
    # A bar no jury reaches: every round is bought, so both paid agents are asked in turn.
    adaptive = {"min_confidence": 1.0}
    config = load_config(
        None,
        {"agents": {**base, "jury": [*base["jury"], dear], "policy": "adaptive", "adaptive": adaptive}},
    )
    fake.polls_before_end = 1
    committed = []
    for run in range(8):
        work = _annotate(config, f"run-{run}", tmp_path)
        assert work.failure is None
        if work.rows:
            committed = work.rows
            break
        assert work.pending_segments == 2
    assert len(committed) == 2
    # One batch per round: the cheap agent's round first, then the dear one's.
    assert len(fake.creates) == 2
    models = [{line["body"]["model"] for line in fake.input_lines(f"batch_{i}")} for i in range(2)]
    assert models == [{"m1"}, {"m2"}]
    assert all(len(fake.input_lines(f"batch_{i}")) == 2 for i in range(2))
    for row in committed:
        assert [a.agent for a in row.annotations] == ["voice", "gpt", "gpt2"]  # in the order asked
        assert all(a.status == Status.ok for a in row.annotations)
        assert row.jury is not None and row.jury.policy == "adaptive" and row.jury.stop == "exhausted"
    assert pending_batches(str(tmp_path)) == []

    again = _annotate(config, "run-again", tmp_path)  # every round answered from the cache
    assert len(again.rows) == 2 and len(fake.creates) == 2
