"""Thin Prefect tasks around the stage classes: retries, names, and failure capture.

Each task takes and returns the recording's ``RecordingWork``. Expected problems (bad
media, missing modalities, provider errors) come back from the stages as typed failures;
a task only turns an exception into a failure row when a stage raised, so nothing is
dropped. Prefect retries a task only for causes known to be transient.
"""

from __future__ import annotations

import functools
import hashlib
import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from prefect import task
from prefect.cache_policies import NO_CACHE

from emoforge.agents.cache import ResponseCache
from emoforge.agents.clips import ClipCutter, clip_needs
from emoforge.agents.costs import run_ledger
from emoforge.configs import PipelineConfig
from emoforge.configs.run import RunConfig
from emoforge.flows.runners import provider_slots
from emoforge.flows.work import RecordingWork, RetryPolicy, recording_done, segment_needs_redo
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
from emoforge.storage.secrets import scrub, scrubbed_logger
from emoforge.storage.shards import CorpusState

# Provider error text can quote the key it was sent: scrubbed before any handler sees it.
log = scrubbed_logger(__name__)

# (stage class, config reprs) -> instances not leased right now
_FREE: dict[tuple[Any, ...], list[Any]] = {}
_STAGES_LOCK = threading.Lock()
_BUILDS: Counter[str] = Counter()
_HELD = threading.local()


def stage(cls: type, *args: Any) -> Any:
    """A stage instance leased to the calling task: models load once per worker, not per run.

    An instance serves one task at a time, because the vision and ASR runtimes are not safe
    to share between threads; the task's ``released`` wrapper hands it back when the task
    ends, and the next task with the same stage and config (any thread, any later run)
    takes it. So a process builds as many instances of a stage as tasks ran it at once,
    and a long-lived process (Dask worker, ``serve``, notebook, benchmark) keeps them.
    """
    key = (cls, *(repr(_reusable(a)) for a in args))
    held: dict[tuple[Any, ...], Any] = _HELD.__dict__.setdefault("leases", {})
    if key in held:
        return held[key]
    with _STAGES_LOCK:
        free = _FREE.setdefault(key, [])
        inst = free.pop() if free else None
    if inst is None:
        inst = cls(*args)
        with _STAGES_LOCK:
            _BUILDS[cls.__name__] += 1
    held[key] = inst
    return inst


F = TypeVar("F", bound=Callable[..., Any])


def released(fn: F) -> F:
    """Hand the stage instances a task leased back when it ends (however it ends)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        finally:
            # Only module-level names here: Dask pickles this closure by value, and a lock or
            # thread-local in it would not pickle (importable functions go by reference).
            _return_leases()

    return wrapper  # type: ignore[return-value]


def _return_leases() -> None:
    held: dict[tuple[Any, ...], Any] = _HELD.__dict__.pop("leases", {})
    with _STAGES_LOCK:
        for key, inst in held.items():
            _FREE.setdefault(key, []).append(inst)


def _reusable(arg: Any) -> Any:
    """The run id is left out of the key so a long-lived worker (a Dask worker serving
    several runs) keeps its models; stages use the context only for provenance, which
    carries the config hash and version but not the run id."""
    return arg.model_copy(update={"run_id": ""}) if isinstance(arg, RunContext) else arg


def stage_builds() -> dict[str, int]:
    """Stage instances built in this process, by class: how often models were loaded here."""
    with _STAGES_LOCK:
        return dict(_BUILDS)


def failure_kind(exc: BaseException) -> ErrorKind:
    """The typed kind of an exception a stage raised: causes that pass are transient.

    A timeout (a model server or remote file that did not answer, or the task's own
    ``timeout_seconds``) and a dropped connection are retried on resume; anything else is
    a bug or a deterministic error, ``internal``, redone only with ``--retry all``.
    """
    # socket.timeout and concurrent.futures.TimeoutError are TimeoutError since Python 3.10/3.11.
    if isinstance(exc, TimeoutError):
        return ErrorKind.timeout
    if isinstance(exc, ConnectionError):
        return ErrorKind.provider_error
    return ErrorKind.internal


def escaped_kind(state_name: str | None) -> ErrorKind:
    """Kind of a stage task that failed past its retries (its exception escaped the stage).

    Prefect names a run that passed ``timeout_seconds`` ``TimedOut``: that may pass, so it is
    retried on resume. A crash or a lost worker (``state_name`` None) is ``internal``."""
    return ErrorKind.timeout if state_name == "TimedOut" else ErrorKind.internal


def _fail(work: RecordingWork, stage_name: str, exc: BaseException) -> RecordingWork:
    kind = failure_kind(exc)
    if kind == ErrorKind.internal:
        log.exception("stage %s failed on %s", stage_name, work.item.uri)
    else:
        log.warning("stage %s on %s: %s (%s), retried on resume", stage_name, work.item.uri, kind, exc)
    message = scrub(f"{type(exc).__name__}: {exc}")[:500]
    work.failure = Failure(stage=stage_name, kind=kind, message=message)
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
@released
def probe_media(work: RecordingWork, config: PipelineConfig) -> RecordingWork:
    prober = MediaProber(config.sampling.media)
    try:
        item = work.item
        work.recording = prober.probe(
            item.uri, source=item.source, speaker_hint=item.speaker, known_hash=item.known_hash
        )
    except OSError as exc:
        # Unreadable path: no content hash exists, so the id hashes the URI instead.
        pseudo = hashlib.sha256(work.item.uri.encode()).hexdigest()
        failure = Failure(stage="probe", kind=ErrorKind.invalid_input, message=f"{type(exc).__name__}: {exc}")
        work.recording = Recording(
            id=recording_id_for(work.item.uri, pseudo),
            uri=work.item.uri,
            sha256=pseudo,
            size_bytes=0,
            source=work.item.source,
            speaker_hint=work.item.speaker,
            status=Status.failed,
            failure=failure,
        )
    if work.recording.status == Status.failed:
        work.failure = work.recording.failure
    return work


@task(name="sample-segments", **TASK_OPTS)
@released
def sample_segments(
    work: RecordingWork, config: PipelineConfig, state: CorpusState, retry: RetryPolicy
) -> RecordingWork:
    """Stage 1: decode once, cut into segments, keep only those resume must (re)do."""
    from emoforge.preprocess.segmenter import Segmenter

    rec = work.recording
    if rec is None or work.failure is not None:
        return work
    if recording_done(rec.id, state, retry):
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
    work.segments = [s for s in segments if segment_needs_redo(s.id, state, retry)]
    work.skipped_segments = len(segments) - len(work.segments)
    if not work.segments:
        work.release_media()
    return work


@task(name="extract-features", **TASK_OPTS)
@released
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
    if not clip_needs(config.agents).any:
        work.release_media()  # else kept: annotation cuts each segment's audio/video clip from it
    return work


@task(name="annotate-segments", **TASK_OPTS)
@released
def annotate_segments(work: RecordingWork, config: PipelineConfig, ctx: RunContext, cache_dir: str) -> RecordingWork:
    """Stage 3: every agent of the jury labels every segment (with its clip, for agents that take one)."""
    from emoforge.agents.jury import Jury

    if not work.active:
        work.release_media()
        return work
    try:
        jury = stage(Jury, config.agents, ctx, Path(cache_dir))
        jury.use_ledger(run_ledger(ctx.run_id, config.agents.budget_usd))
        media, needs = work.media, jury.clip_needs
        cutter = stage(ClipCutter, config.agents.clips, config.sampling.media) if needs.any and media else None
        # Provider slots are global (Prefect server side): runs in parallel share them.
        with provider_slots(config.agents, config.run):
            work.annotations = [
                jury.annotate(s, f, cutter.cut(media, s, needs) if cutter and media else None)
                for s, f in zip(work.segments, work.features, strict=True)
            ]
    except Exception as exc:
        return _fail(work, "annotate", exc)
    finally:
        work.release_media()  # one clip at a time was cut from it; nothing later needs it
    return work


@task(name="judge-annotations", **TASK_OPTS)
@released
def judge_annotations(
    work: RecordingWork, config: PipelineConfig, ctx: RunContext, cache_dir: str | None = None
) -> RecordingWork:
    """Stage 4: S_rec, S_reason, S_cot and S_final for every annotation.

    An LLM judge spends from the run's budget and answers from the jury's response cache."""
    from emoforge.agents.judge import Judge

    if not work.active:
        return work
    try:
        judge = stage(Judge, config.judge, ctx, config.judge_agent())
        judge.use(run_ledger(ctx.run_id, config.agents.budget_usd), response_cache(config, cache_dir))
        work.verdicts = [
            judge.score(s, f, a) for s, f, a in zip(work.segments, work.features, work.annotations, strict=True)
        ]
    except Exception as exc:
        return _fail(work, "judge", exc)
    return work


@task(name="aggregate-votes", **TASK_OPTS)
@released
def aggregate_votes(work: RecordingWork, config: PipelineConfig, ctx: RunContext) -> RecordingWork:
    """Stage 5: consensus label, confidence and review flags per segment."""
    from emoforge.agents.consensus import ConsensusBuilder
    from emoforge.agents.recognizers.base import vote_priors

    if not work.active:
        return work
    try:
        builder = stage(ConsensusBuilder, config.aggregation, ctx, config.agents.taxonomy, vote_priors(config.agents))
        work.consensus = [
            builder.build(s, f, a, v)
            for s, f, a, v in zip(work.segments, work.features, work.annotations, work.verdicts, strict=True)
        ]
    except Exception as exc:
        return _fail(work, "aggregate", exc)
    return work


def response_cache(config: PipelineConfig, cache_dir: str | None) -> ResponseCache | None:
    """The response cache the jury uses (``agents.cache``), or None when it is off."""
    cache = config.agents.cache
    root = cache.path or cache_dir
    return ResponseCache(Path(root)) if cache.enabled and root else None


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
