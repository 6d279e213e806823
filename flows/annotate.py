"""The ``annotate_corpus`` flow: media in, Parquet shards out. It only wires tasks."""

from __future__ import annotations

import uuid
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from prefect import flow
from prefect.futures import PrefectFuture, as_completed
from prefect.task_runners import ThreadPoolTaskRunner
from pydantic import BaseModel, Field

import emoforge
from emoforge.agents.batch_waiting import waiting_recordings
from emoforge.configs import config_hash
from emoforge.flows import tasks as t
from emoforge.flows.config import load_checked
from emoforge.flows.incremental import HashIndex, hold_waiting, plan_inputs, response_cache_dir
from emoforge.flows.phase import PhaseEnv
from emoforge.flows.phases.probe import Probe
from emoforge.flows.pipeline import configured
from emoforge.flows.runners import ensure_provider_limits
from emoforge.flows.work import RecordingWork, RetryPolicy, needs_redo, recording_state, resume_state
from emoforge.storage.failures import FailureDigest
from emoforge.storage.inputs import discover_inputs, refused_recording
from emoforge.storage.ledger import RunLedger
from emoforge.storage.records import Failure, MediaInput, RunContext, SegmentRow
from emoforge.storage.shards import CorpusWriter

ProgressHook = Callable[[str, dict[str, Any]], None]
_progress_hooks: list[ProgressHook] = []


def add_progress_hook(hook: ProgressHook) -> None:
    """Register a callback for 'start' / 'recording' / 'end' events (the CLI's progress bar)."""
    _progress_hooks.append(hook)


def remove_progress_hook(hook: ProgressHook) -> None:
    if hook in _progress_hooks:
        _progress_hooks.remove(hook)


def _emit(event: str, **data: Any) -> None:
    for hook in list(_progress_hooks):
        hook(event, data)


class RunSummary(BaseModel):
    run_id: str
    out: str
    config_hash: str
    recordings: int = 0
    recordings_skipped: int = Field(
        0, description="Inputs whose content hash was already fully committed: no task was submitted."
    )
    rows_written: int = 0
    rows_skipped: int = Field(0, description="Segments already committed by an earlier run.")
    rows_pending: int = Field(
        0, description="Segments held back uncommitted: a batch-mode vote is at the provider (collected by a rerun)."
    )
    recordings_waiting: int = Field(
        0, description="Recordings not decoded this run: every batch holding their pending votes is still running."
    )
    status: dict[str, int] = Field(default_factory=dict)
    failures: dict[str, int] = Field(default_factory=dict, description="'stage:kind' -> rows.")
    annotations: dict[str, int] = Field(default_factory=dict, description="'agent:status' -> count.")
    needs_review: int = 0
    ledger: RunLedger = Field(
        default_factory=RunLedger, description="Where the calls went: per agent, per token part, per labelled segment."
    )
    shards: list[str] = Field(default_factory=list)
    failure_digest: FailureDigest = Field(
        default_factory=FailureDigest, description="Per failure kind: the first files and their one-line reasons."
    )


def new_run_id(cfg_hash: str) -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"run-{stamp}-{cfg_hash[:8]}-{uuid.uuid4().hex[:4]}"


def _tally(summary: RunSummary, rows: list[SegmentRow]) -> None:
    status: Counter[str] = Counter(summary.status)
    failures: Counter[str] = Counter(summary.failures)
    anns: Counter[str] = Counter(summary.annotations)
    for row in rows:
        status[row.status.value] += 1
        if row.failure is not None:
            failures[f"{row.failure.stage}:{row.failure.kind.value}"] += 1
        for a in row.annotations:
            anns[f"{a.agent}:{a.status.value}"] += 1
        if row.consensus is not None and row.consensus.needs_review:
            summary.needs_review += 1
        summary.ledger.add(row)
    summary.status, summary.failures, summary.annotations = dict(status), dict(failures), dict(anns)
    summary.failure_digest.add(rows)


@flow(name="annotate_corpus", log_prints=False, task_runner=ThreadPoolTaskRunner(max_workers=1))  # type: ignore[arg-type]
def annotate_corpus(
    inputs: list[str],
    out: str,
    config_path: str | None = None,
    overrides: dict[str, Any] | None = None,
    retry: RetryPolicy = "transient",
    lock_wait_s: float | None = 0.0,
    input_root: str | None = None,
) -> RunSummary:
    """Annotate media files/folders/manifests into the corpus at ``out`` (resumable).

    Args:
        inputs: media files, folders, or CSV/JSONL manifests (uri, source, speaker).
        out: corpus directory; rerunning into it resumes and never duplicates rows.
        config_path: YAML merged over the embedded defaults.
        overrides: nested dict merged last (for programmatic use and tests).
        retry: which committed failures to redo: transient (default), all, none.
        lock_wait_s: how long to wait while another run writes ``out`` (None: until it ends;
            0: refuse at once with ``CorpusLocked``).
        input_root: folder every local input must lie in (default: each manifest's or
            folder's own); an input outside it becomes an ``outside_input_root`` failure row.
    """
    config = load_checked(
        config_path, overrides
    )  # a wrong provider or aggregator name fails here, before anything is paid
    cfg_hash = config_hash(config)
    ctx = RunContext(run_id=new_run_id(cfg_hash), config_hash=cfg_hash, emoforge_version=emoforge.__version__)
    found = discover_inputs(inputs, input_root, config.inputs)  # before the writer: a bad path leaves no run "running"
    writer = CorpusWriter(
        out, config.storage, ctx.run_id, config.model_dump(mode="json"), cfg_hash, lock_wait_s=lock_wait_s
    )
    try:  # the writer holds the corpus lock: anything that fails before the run proper releases it
        state = resume_state(out)  # with per-agent failures: an ok row can still hold a 429
        index = HashIndex(out) if config.run.incremental else None
        plan = plan_inputs([i for i in found if i.refused is None], state, retry, index)
        # One poll per pending provider batch, before anything is decoded (agents/batch_waiting.py).
        hold_waiting(plan, waiting_recordings(out, config.agents.jury), state, retry, index or HashIndex(out))
        refused = [r for i in found if i.refused for r in _refused_work(i).finished_rows(ctx)]
        refused = [r for r in refused if needs_redo(state.rows.get(r.row_id), retry)]
        items = plan.todo
        cache_dir = response_cache_dir(out, config.agents.cache.path)
        steps = configured(config.run)
        if config.run.provider_limits:
            ensure_provider_limits(config.run)
        summary = RunSummary(
            run_id=ctx.run_id,
            out=out,
            config_hash=cfg_hash,
            recordings=len(items) + len(plan.skipped_recordings) + len(plan.waiting_recordings) + len(refused),
            recordings_skipped=len(plan.skipped_recordings),
            rows_skipped=plan.skipped_segments,
            recordings_waiting=len(plan.waiting_recordings),
            rows_pending=plan.waiting_segments,
        )
    except BaseException:
        writer.close(status="interrupted")
        raise
    _emit("start", total=len(items), run_id=ctx.run_id)
    base_env = PhaseEnv(config=config, ctx=ctx, out=out, cache_dir=cache_dir, retry=retry)

    # `workers` recordings in flight, each with one task at a time: a phase is submitted only
    # once its upstream is done, so no task holds a pool thread waiting for another, and a
    # recording that finishes lets the next one in at once (no group waits for its slowest
    # member). This also bounds decoded media to `workers` recordings.
    todo = deque(items)
    running: dict[PrefectFuture[RecordingWork], tuple[MediaInput, int, PhaseEnv]] = {}

    def submit(k: int, item: MediaInput, upstream: PrefectFuture[RecordingWork] | RecordingWork, env: PhaseEnv) -> None:
        phase, task = steps[k]
        # Prefect resolves an upstream future to its result; its stubs type only the result.
        running[t.named(task, item.uri).submit(upstream, phase, env)] = (item, k, env)  # type: ignore[arg-type]

    def admit() -> None:
        while todo and len(running) < config.run.workers:
            item = todo.popleft()
            submit(0, item, RecordingWork(item=item), base_env)

    try:
        if refused:  # never read: their failure rows are all there is to write
            writer.write(refused)
            _tally(summary, refused)
            summary.rows_written += len(refused)
        admit()
        while running:
            fut = next(as_completed(list(running)))
            item, k, env = running.pop(fut)
            lost = None
            try:
                fut.wait()  # done already; this records its final state (else `state` asks the API, which may lag)
            except Exception as exc:  # the runner lost the task itself (a Dask worker died): no state to read
                lost = f"{type(exc).__name__}: {exc}"
            if lost is None and k + 1 < len(steps) and fut.state.is_completed():
                if env is base_env and fut.result().recording is not None:
                    # Probed: from here on, the recording's own committed state is all its phases need.
                    env = replace(base_env, state=recording_state(state, fut.result()))
                submit(k + 1, item, fut, env)
                continue
            # Committed as soon as the recording is done (or a phase crashed past its
            # retries): a killed run keeps everything that had finished.
            work = _result_or_failure(fut, item, env, steps[k][0].name, lost)
            rows = work.finished_rows(ctx)
            writer.write(rows)
            _tally(summary, rows)
            summary.rows_written += len(rows)
            summary.rows_skipped += work.skipped_segments
            summary.rows_pending += work.pending_segments
            _emit("recording", uri=item.uri, rows=len(rows), skipped=work.skipped_segments)
            admit()
        if index is not None:
            index.save()  # under the lock, like the rows it describes
        writer.close(counts=summary.model_dump(exclude={"shards"}))
    except BaseException:
        writer.close(counts=summary.model_dump(exclude={"shards"}), status="interrupted")
        raise
    summary.shards = [s["name"] for s in writer.manifest["shards"]]
    _emit("end", summary=summary)
    return summary


def _refused_work(item: MediaInput) -> RecordingWork:
    return RecordingWork(item=item, recording=refused_recording(item), failure=item.refused)


def _result_or_failure(
    fut: PrefectFuture[RecordingWork], item: MediaInput, env: PhaseEnv, phase: str, lost: str | None
) -> RecordingWork:
    """A phase task that failed past its retries, or was lost with its worker, still yields
    failure rows naming the phase, never silence; the phases after it are not run."""
    if lost is None and fut.state.is_completed():
        return fut.result()
    work = t.phase_task.fn(RecordingWork(item=item), Probe, env)  # the recording, to hang the rows on
    if work.failure is None:
        message = lost or str(fut.state.message or fut.state.name)
        kind = t.escaped_kind(None if lost else fut.state.name)  # a task timeout is retried on resume
        work.failure = Failure(stage=phase, kind=kind, message=message[:500])
    return work
