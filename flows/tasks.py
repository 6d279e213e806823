"""Thin Prefect tasks around the stage classes: retries, names, and failure capture.

Each task takes and returns the recording's ``RecordingWork``. Expected problems (bad
media, missing modalities, provider errors) come back from the stages as typed failures;
a task only turns an exception into a failure row when a stage raised, so nothing is
dropped. Prefect retries a task only for causes known to be transient.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections import Counter
from pathlib import Path
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from emoforge.configs import PipelineConfig
from emoforge.configs.run import RunConfig
from emoforge.flows.runners import provider_slots
from emoforge.flows.work import RecordingWork, RetryPolicy, needs_redo, recording_done
from emoforge.preprocess.media import MediaDecoder, MediaError, MediaProber
from emoforge.storage.records import (
    ErrorKind,
    Failure,
    Recording,
    RunContext,
    SegmentRow,
    Status,
    recording_id_for,
)
from emoforge.storage.shards import CorpusState

log = logging.getLogger(__name__)

# (stage class, config reprs) -> {owning thread id: instance}
_STAGES: dict[tuple[Any, ...], dict[int, Any]] = {}
_STAGES_LOCK = threading.Lock()
_BUILDS: Counter[str] = Counter()


def stage(cls: type, *args: Any) -> Any:
    """One instance per (stage class, config, thread): models load once per worker thread.

    Owned by a thread because the vision and ASR runtimes are not safe to share between
    threads. An instance whose thread has ended passes to the next thread that asks, so a
    long-lived process (Dask worker, notebook, benchmark) keeps its models across runs
    although each run's thread pool starts new threads.
    """
    key = (cls, *(repr(_reusable(a)) for a in args))
    me = threading.get_ident()
    with _STAGES_LOCK:
        owners = _STAGES.setdefault(key, {})
        inst = owners.get(me)
        if inst is not None:
            return inst
        alive = {t.ident for t in threading.enumerate()}
        orphan = next((tid for tid in owners if tid not in alive), None)
        if orphan is not None:
            inst = owners.pop(orphan)
        else:
            inst = cls(*args)
            _BUILDS[cls.__name__] += 1
        owners[me] = inst
        return inst


def _reusable(arg: Any) -> Any:
    """The run id is left out of the key so a long-lived worker (a Dask worker serving
    several runs) keeps its models; stages use the context only for provenance, which
    carries the config hash and version but not the run id."""
    return arg.model_copy(update={"run_id": ""}) if isinstance(arg, RunContext) else arg


def stage_builds() -> dict[str, int]:
    """Stage instances built in this process, by class: how often models were loaded here."""
    with _STAGES_LOCK:
        return dict(_BUILDS)


def _fail(work: RecordingWork, stage_name: str, exc: BaseException) -> RecordingWork:
    log.exception("stage %s failed on %s", stage_name, work.item.uri)
    work.failure = Failure(stage=stage_name, kind=ErrorKind.internal, message=f"{type(exc).__name__}: {exc}")
    work.release_media()
    return work


def _transient(task_: Any, task_run: Any, state: Any) -> bool:
    """Retry only exceptions whose cause is known to pass (I/O hiccups, timeouts)."""
    try:
        state.result()
    except (TimeoutError, ConnectionError):
        return True
    except Exception:
        return False  # anything else is deterministic: retrying would fail the same way
    return False


TASK_OPTS: dict[str, Any] = {
    "cache_policy": NO_CACHE,
    "retry_condition_fn": _transient,
    "retries": 1,
}


@task(name="probe-media", **TASK_OPTS)
def probe_media(work: RecordingWork, config: PipelineConfig) -> RecordingWork:
    prober = MediaProber(config.sampling.media)
    try:
        work.recording = prober.probe(work.item.uri, source=work.item.source, speaker_hint=work.item.speaker)
    except OSError as exc:
        # Unreadable path: no content hash exists, so the id hashes the URI instead.
        pseudo = hashlib.sha256(work.item.uri.encode()).hexdigest()
        failure = Failure(stage="probe", kind=ErrorKind.invalid_input, message=f"{type(exc).__name__}: {exc}")
        work.recording = Recording(
            id=recording_id_for(work.item.uri, pseudo), uri=work.item.uri, sha256=pseudo, size_bytes=0,
            source=work.item.source, speaker_hint=work.item.speaker, status=Status.failed, failure=failure,
        )
    if work.recording.status == Status.failed:
        work.failure = work.recording.failure
    return work


@task(name="sample-segments", **TASK_OPTS)
def sample_segments(
    work: RecordingWork, config: PipelineConfig, state: CorpusState, retry: RetryPolicy
) -> RecordingWork:
    """Stage 1: decode once, cut into segments, keep only those resume must (re)do."""
    from emoforge.preprocess.segmenter import Segmenter

    rec = work.recording
    if rec is None or work.failure is not None:
        return work
    if recording_done(rec.id, state.rows, retry, state.segment_counts.get(rec.id)):
        work.skipped_segments = state.segment_counts.get(rec.id, 0)
        return work
    try:
        work.media = MediaDecoder(config.sampling.media).decode(rec)
        segments = stage(Segmenter, config.sampling).segment(work.media)
    except MediaError as exc:
        work.failure = exc.failure()
        work.release_media()
        return work
    except Exception as exc:
        return _fail(work, "segment", exc)
    work.segment_count = len(segments)
    if not segments:
        work.failure = Failure(stage="segment", kind=ErrorKind.no_speech, message="no segment found")
        work.release_media()
        return work
    work.segments = [s for s in segments if needs_redo(state.rows.get(s.id), retry)]
    work.skipped_segments = len(segments) - len(work.segments)
    if not work.segments:
        work.release_media()
    return work


@task(name="extract-features", **TASK_OPTS)
def extract_features(work: RecordingWork, config: PipelineConfig, ctx: RunContext) -> RecordingWork:
    """Stage 2: ASR, speakers, prosody, faces, AUs, key frames on one timeline."""
    from emoforge.preprocess.extractor import FeatureExtractor

    if not work.active or work.media is None:
        return work
    try:
        extractor = stage(FeatureExtractor, config.preprocess, config.sampling.keyframes, ctx)
        work.features = extractor.extract(work.media, work.segments)
        if work.media.failures:
            # A stream that failed to decode while the other worked: say so on every segment.
            work.features = [
                f.model_copy(update={"failures": [*work.media.failures, *f.failures]}) for f in work.features
            ]
    except Exception as exc:
        return _fail(work, "features", exc)
    work.release_media()
    return work


@task(name="annotate-segments", **TASK_OPTS)
def annotate_segments(work: RecordingWork, config: PipelineConfig, ctx: RunContext, cache_dir: str) -> RecordingWork:
    """Stage 3: every agent of the jury labels every segment."""
    from emoforge.agents.jury import Jury

    if not work.active:
        return work
    try:
        jury = stage(Jury, config.agents, ctx, Path(cache_dir))
        # Provider slots are global (Prefect server side): runs in parallel share them.
        with provider_slots(config.agents, config.run):
            work.annotations = [jury.annotate(s, f) for s, f in zip(work.segments, work.features, strict=True)]
    except Exception as exc:
        return _fail(work, "annotate", exc)
    return work


@task(name="judge-annotations", **TASK_OPTS)
def judge_annotations(work: RecordingWork, config: PipelineConfig, ctx: RunContext) -> RecordingWork:
    """Stage 4: S_rec, S_reason, S_cot and S_final for every annotation."""
    from emoforge.agents.judge import Judge

    if not work.active:
        return work
    try:
        judge = stage(Judge, config.judge, ctx, config.judge_agent())
        work.verdicts = [
            judge.score(s, f, a) for s, f, a in zip(work.segments, work.features, work.annotations, strict=True)
        ]
    except Exception as exc:
        return _fail(work, "judge", exc)
    return work


@task(name="aggregate-votes", **TASK_OPTS)
def aggregate_votes(work: RecordingWork, config: PipelineConfig, ctx: RunContext) -> RecordingWork:
    """Stage 5: consensus label, confidence and review flags per segment."""
    from emoforge.agents.consensus import ConsensusBuilder

    if not work.active:
        return work
    try:
        builder = stage(ConsensusBuilder, config.aggregation, ctx)
        work.consensus = [
            builder.build(s, f, a, v)
            for s, f, a, v in zip(work.segments, work.features, work.annotations, work.verdicts, strict=True)
        ]
    except Exception as exc:
        return _fail(work, "aggregate", exc)
    return work


def configured(run: RunConfig) -> dict[str, Any]:
    """The stage tasks with retries and timeouts from the run config, by stage name.

    Task runs are named ``{stage}[{file name}]`` (see ``named``) so the Prefect UI reads
    like a log of recordings."""
    opts: dict[str, Any] = {"retries": run.task_retries, "retry_delay_seconds": run.retry_delay_s}
    if run.task_timeout_s is not None:
        opts["timeout_seconds"] = run.task_timeout_s
    stages = (probe_media, sample_segments, extract_features, annotate_segments, judge_annotations, aggregate_votes)
    return {s.name: s.with_options(**opts) for s in stages}


def named(stage_task: Any, uri: str) -> Any:
    """The task with its runs named after the recording (braces escaped for Prefect's format)."""
    label = Path(uri).name.replace("{", "{{").replace("}", "}}")
    return stage_task.with_options(task_run_name=f"{stage_task.name}[{label}]")


def rows_of(work: RecordingWork, ctx: RunContext) -> list[SegmentRow]:
    """Stage 6 input: the recording's rows (failure rows included)."""
    if work.recording is None:
        return []
    if work.failure is None and not work.segments:
        return []  # everything already committed
    return work.rows(ctx.run_id, ctx.config_hash)
