"""One shape for every phase of a recording: a ``Phase`` fills the recording's rows.

Words, one meaning each in ``flows/``: a *phase* is one of the steps every recording goes
through, in the order ``PIPELINE`` lists them (``flows/pipeline.py``); a *tool* is what a
phase uses to do its job (segmenter, extractor, jury, judge, consensus builder), leased once
per task through ``leases.lease``; a *task* is the Prefect run of one phase on one
recording. (A stored failure's ``stage`` field is older than these words: it holds the name
of the phase, or of the tool inside it, that failed.)

A phase is a small class named after its step: its constructor takes the run's
``PhaseEnv``, ``wants(work)`` says whether the work still needs it, and ``fill(work)`` does
the work, filling one field of every ``SegmentRow`` (sampling builds the rows);
``estimate(work, est)`` is its share of a dry run. ``run_phase`` is the one wrapper around
all of them: it applies the guard, times the phase, and turns an exception the phase raised
into a typed ``Failure`` naming it, so a failure row always says which phase it came from.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from emoforge.configs import PipelineConfig
from emoforge.flows.cost_estimate import CostEstimate
from emoforge.flows.work import RecordingWork, RetryPolicy
from emoforge.storage.records import ErrorKind, Failure, Features, RunContext, Segment, SegmentRow
from emoforge.storage.secrets import scrub, scrubbed_logger
from emoforge.storage.shards import CorpusState

# Provider error text can quote the key it was sent: scrubbed before any handler sees it.
log = scrubbed_logger(__name__)


@dataclass
class PhaseEnv:
    """What every phase of a run may read, handed to each phase's constructor.

    Args:
        out: the corpus folder (None in a dry run, which writes nothing).
        cache_dir: the response cache's folder (None: no cache, as in a dry run).
        retry: which committed failures resume redoes.
        state: what is committed of this recording. The flow narrows it to the recording
            once probing has named it, so a task's arguments never grow with the corpus
            (on Dask they are pickled to a worker per task).
    """

    config: PipelineConfig
    ctx: RunContext
    out: str | None = None
    cache_dir: str | None = None
    retry: RetryPolicy = "transient"
    state: CorpusState = field(default_factory=lambda: CorpusState(rows={}, segment_counts={}))

    @property
    def cache_path(self) -> Path | None:
        return Path(self.cache_dir) if self.cache_dir else None


class Phase:
    """One step of the pipeline: ``wants`` guards, ``fill`` fills the work's rows; ``run_phase``
    wraps both. ``name`` is the phase's one name: its task, its failures' ``stage`` string and
    (where it has one) its config section."""

    name: ClassVar[str]

    def __init__(self, env: PhaseEnv) -> None:
        self.env = env
        self.config = env.config
        self.ctx = env.ctx

    def wants(self, work: RecordingWork) -> bool:
        """Whether the work needs this phase (default: no failure yet and rows left to do)."""
        return work.active

    def fill(self, work: RecordingWork) -> None:
        raise NotImplementedError

    def estimate(self, work: RecordingWork, est: CostEstimate) -> None:
        """Its share of a dry run, where ``wants`` holds: what it would cost, or the cheap part
        it really runs (default: nothing, as for a phase that calls no provider)."""

    def done_with_media(self) -> bool:
        """Whether no later phase needs the decoded media (it is then dropped at once)."""
        return False


def run_phase(phase: Phase, work: RecordingWork) -> RecordingWork:
    """Run one phase on the work: guard, timing, typed failure, media release.

    Only an exception the phase raised becomes a failure here (expected trouble comes back
    from the tools as typed failures already). Before probing there is no recording to
    hang a failure row on, so such an exception escapes and the flow's crash path names it.
    """
    if phase.wants(work):
        started = time.perf_counter()
        try:
            phase.fill(work)
        except Exception as exc:
            if work.recording is None:
                raise
            work.failure = _failure(phase.name, work, exc)
        finally:
            work.seconds[phase.name] = time.perf_counter() - started
        log.debug("phase %s on %s: %.3f s", phase.name, work.item.uri, work.seconds[phase.name])
    # Outside the try: a bug here fails the task itself (the flow's crash path), as before.
    if not work.active or phase.done_with_media():
        work.release_media()
    return work


def failure_kind(exc: BaseException) -> ErrorKind:
    """The typed kind of an exception a phase raised: causes that pass are transient.

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


def _failure(phase_name: str, work: RecordingWork, exc: BaseException) -> Failure:
    kind = failure_kind(exc)
    if kind == ErrorKind.internal:
        log.exception("phase %s failed on %s", phase_name, work.item.uri)
    else:
        log.warning("phase %s on %s: %s (%s), retried on resume", phase_name, work.item.uri, kind, exc)
    return Failure(stage=phase_name, kind=kind, message=scrub(f"{type(exc).__name__}: {exc}")[:500])


def segment_of(row: SegmentRow) -> Segment:
    if row.segment is None:
        raise ValueError(f"row {row.row_id} has no segment")  # only recording failure rows lack one
    return row.segment


def features_of(row: SegmentRow) -> Features:
    if row.features is None:
        raise ValueError(f"row {row.row_id} has no features: preprocess did not run")
    return row.features
