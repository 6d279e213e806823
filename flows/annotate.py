"""The ``annotate_corpus`` flow: media in, Parquet shards out. It only wires tasks."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from prefect import flow
from prefect.futures import PrefectFuture, wait
from prefect.task_runners import ThreadPoolTaskRunner
from pydantic import BaseModel, Field

import emoforge
from emoforge.configs import PipelineConfig, config_hash, load_config
from emoforge.flows import tasks as t
from emoforge.flows.incremental import HashIndex, plan_inputs, response_cache_dir
from emoforge.flows.runners import ensure_provider_limits
from emoforge.flows.work import RecordingWork, RetryPolicy
from emoforge.storage.inputs import discover_inputs
from emoforge.storage.records import ErrorKind, Failure, MediaInput, RunContext, SegmentRow
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
    status: dict[str, int] = Field(default_factory=dict)
    failures: dict[str, int] = Field(default_factory=dict, description="'stage:kind' -> rows.")
    annotations: dict[str, int] = Field(default_factory=dict, description="'agent:status' -> count.")
    needs_review: int = 0
    shards: list[str] = Field(default_factory=list)


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
    summary.status, summary.failures, summary.annotations = dict(status), dict(failures), dict(anns)


def _chain(
    stages: dict[str, Any],
    items: list[MediaInput],
    config: PipelineConfig,
    ctx: RunContext,
    state: Any,
    retry: RetryPolicy,
    cache_dir: str,
) -> list[PrefectFuture[RecordingWork]]:
    """Submit the six stages of each recording (each waits on the previous one), stage by stage.

    Stage-major order matters with the thread runner: a submitted task holds a pool thread
    while it waits for its upstream, so recording-major order (A's six stages, then B's)
    fills every thread with A's chain and runs the recordings one after another.
    """

    def then(name: str, futures: list[Any], *args: Any) -> list[Any]:
        return [t.named(stages[name], i.uri).submit(f, config, *args) for i, f in zip(items, futures, strict=True)]

    fs = then("probe-media", [RecordingWork(item=i) for i in items])
    fs = then("sample-segments", fs, state, retry)
    fs = then("extract-features", fs, ctx)
    fs = then("annotate-segments", fs, ctx, cache_dir)
    fs = then("judge-annotations", fs, ctx)
    return then("aggregate-votes", fs, ctx)


@flow(name="annotate_corpus", log_prints=False, task_runner=ThreadPoolTaskRunner(max_workers=1))  # type: ignore[arg-type]
def annotate_corpus(
    inputs: list[str],
    out: str,
    config_path: str | None = None,
    overrides: dict[str, Any] | None = None,
    retry: RetryPolicy = "transient",
) -> RunSummary:
    """Annotate media files/folders/manifests into the corpus at ``out`` (resumable).

    Args:
        inputs: media files, folders, or CSV/JSONL manifests (uri, source, speaker).
        out: corpus directory; rerunning into it resumes and never duplicates rows.
        config_path: YAML merged over the embedded defaults.
        overrides: nested dict merged last (for programmatic use and tests).
        retry: which committed failures to redo: transient (default), all, none.
    """
    config = load_config(config_path, overrides)
    cfg_hash = config_hash(config)
    ctx = RunContext(run_id=new_run_id(cfg_hash), config_hash=cfg_hash, emoforge_version=emoforge.__version__)
    writer = CorpusWriter(out, config.storage, ctx.run_id, config.model_dump(mode="json"), cfg_hash)
    state = writer.done()
    index = HashIndex(out) if config.run.incremental else None
    plan = plan_inputs(discover_inputs(inputs), state, retry, index)
    items = plan.todo
    cache_dir = response_cache_dir(out, config.agents.cache.path)
    stages = t.configured(config.run)
    if config.run.provider_limits:
        ensure_provider_limits(config.run)
    summary = RunSummary(
        run_id=ctx.run_id, out=out, config_hash=cfg_hash, recordings=len(items) + len(plan.skipped_recordings),
        recordings_skipped=len(plan.skipped_recordings), rows_skipped=plan.skipped_segments,
    )
    _emit("start", total=len(items), run_id=ctx.run_id)
    # A bounded window of recordings in flight keeps decoded media from piling up.
    window = max(1, 2 * config.run.workers)
    try:
        for lo in range(0, len(items), window):
            batch = items[lo : lo + window]
            # Stage-major within groups of `workers`: the group's recordings run side by side and
            # finish (and commit) together, the next group's tasks queue behind them.
            step = config.run.workers
            futures = [
                f for g in range(0, len(batch), step)
                for f in _chain(stages, batch[g : g + step], config, ctx, state, retry, cache_dir)
            ]
            for fut, item in zip(futures, batch, strict=True):
                # Each recording is committed as soon as it is done (in input order), not when the
                # whole window is: a killed run keeps everything that had finished.
                wait([fut])
                work = _result_or_failure(fut, item, config)
                rows = t.rows_of(work, ctx)
                writer.write(rows)
                _tally(summary, rows)
                summary.rows_written += len(rows)
                summary.rows_skipped += work.skipped_segments
                _emit("recording", uri=item.uri, rows=len(rows), skipped=work.skipped_segments)
        writer.close(counts=summary.model_dump(exclude={"shards"}))
        if index is not None:
            index.save()
    except BaseException:
        writer.close(counts=summary.model_dump(exclude={"shards"}), status="interrupted")
        raise
    summary.shards = [s["name"] for s in writer.manifest["shards"]]
    _emit("end", summary=summary)
    return summary


def _result_or_failure(fut: PrefectFuture[RecordingWork], item: MediaInput, config: PipelineConfig) -> RecordingWork:
    """A stage task that crashed past its retries still yields failure rows, never silence."""
    state = fut.state
    if state.is_completed():
        return fut.result()
    work = t.probe_media.fn(RecordingWork(item=item), config)
    if work.failure is None:
        work.failure = Failure(stage="flow", kind=ErrorKind.internal, message=str(state.message or state.name))
    return work
