"""One shape for every phase of a recording: a ``Stage`` fills the recording's rows.

A stage is a small class named after its phase: its constructor takes the config (and the
run's context), ``wants(work)`` says whether the work still needs it, and ``fill(work)``
does the work, filling one field of every ``SegmentRow`` (sampling builds the rows). The
tools a stage uses (segmenter, extractor, jury, judge, consensus builder) are leased once
per task through ``leases.stage``. ``run_stage`` is the one wrapper around all of them:
it applies the guard, times the stage, and turns an exception the stage raised into a
typed ``Failure`` naming the phase, so a failure row always says which phase it came from.

One name per phase, used for the class, the Prefect task, the failure ``stage`` string and
(where the phase has one) the config section: ``PHASES`` (storage/records.py). Shards
written before the phases had one name hold older strings; ``phase_of`` maps them.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Any, ClassVar

from emoforge.agents.cache import ResponseCache
from emoforge.agents.clips import ClipCutter, clip_needs
from emoforge.agents.costs import run_ledger
from emoforge.configs import PipelineConfig
from emoforge.flows.leases import stage
from emoforge.flows.runners import provider_slots
from emoforge.flows.work import RecordingWork, RetryPolicy, recording_done, segment_needs_redo
from emoforge.preprocess.media import MediaDecoder, MediaError, MediaProber, local_media
from emoforge.storage.records import (
    ErrorKind,
    Failure,
    Features,
    Recording,
    RunContext,
    Segment,
    SegmentRow,
    Status,
    recording_id_for,
)
from emoforge.storage.secrets import scrub, scrubbed_logger
from emoforge.storage.shards import CorpusState

# Provider error text can quote the key it was sent: scrubbed before any handler sees it.
log = scrubbed_logger(__name__)


class Stage:
    """One phase: ``wants`` guards, ``fill`` fills the work's rows; ``run_stage`` wraps both."""

    name: ClassVar[str]

    def wants(self, work: RecordingWork) -> bool:
        """Whether the work needs this stage (default: no failure yet and rows left to do)."""
        return work.active

    def fill(self, work: RecordingWork) -> None:
        raise NotImplementedError

    def done_with_media(self) -> bool:
        """Whether no later stage needs the decoded media (it is then dropped at once)."""
        return False


def run_stage(st: Stage, work: RecordingWork) -> RecordingWork:
    """Run one stage on the work: guard, timing, typed failure, media release.

    Only an exception the stage raised becomes a failure here (expected trouble comes back
    from the tools as typed failures already). Before probing there is no recording to
    hang a failure row on, so such an exception escapes and the flow's crash path names it.
    """
    if st.wants(work):
        started = time.perf_counter()
        try:
            st.fill(work)
        except Exception as exc:
            if work.recording is None:
                raise
            work.failure = _failure(st.name, work, exc)
        finally:
            work.seconds[st.name] = time.perf_counter() - started
        log.debug("stage %s on %s: %.3f s", st.name, work.item.uri, work.seconds[st.name])
    # Outside the try: a bug here fails the task itself (the flow's crash path), as before.
    if not work.active or st.done_with_media():
        work.release_media()
    return work


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


def _failure(stage_name: str, work: RecordingWork, exc: BaseException) -> Failure:
    kind = failure_kind(exc)
    if kind == ErrorKind.internal:
        log.exception("stage %s failed on %s", stage_name, work.item.uri)
    else:
        log.warning("stage %s on %s: %s (%s), retried on resume", stage_name, work.item.uri, kind, exc)
    return Failure(stage=stage_name, kind=kind, message=scrub(f"{type(exc).__name__}: {exc}")[:500])


def _segment(row: SegmentRow) -> Segment:
    if row.segment is None:
        raise ValueError(f"row {row.row_id} has no segment")  # only recording failure rows lack one
    return row.segment


def _features(row: SegmentRow) -> Features:
    if row.features is None:
        raise ValueError(f"row {row.row_id} has no features: preprocess did not run")
    return row.features


class Probe(Stage):
    """Hash and probe the file: the recording (a failed one when it cannot be read)."""

    name = "probe"

    def __init__(self, config: PipelineConfig) -> None:
        self.config = config

    def wants(self, work: RecordingWork) -> bool:
        return work.recording is None

    def fill(self, work: RecordingWork) -> None:
        item = work.item
        try:
            rec = MediaProber(self.config.sampling.media).probe(
                item.uri, source=item.source, speaker_hint=item.speaker, known_hash=item.known_hash
            )
        except OSError as exc:
            # Unreadable path: no content hash exists, so the id hashes the URI instead.
            pseudo = hashlib.sha256(item.uri.encode()).hexdigest()
            failure = Failure(stage=self.name, kind=ErrorKind.invalid_input, message=f"{type(exc).__name__}: {exc}")
            rec = Recording(
                id=recording_id_for(item.uri, pseudo), uri=item.uri, sha256=pseudo, size_bytes=0,
                source=item.source, speaker_hint=item.speaker, status=Status.failed, failure=failure,
            )  # fmt: skip
        rec.terms = item.terms  # the input's terms of use travel with its recording into every row
        work.recording = rec
        if rec.status == Status.failed:
            work.failure = rec.failure


class Sampling(Stage):
    """Decode once, cut into segments, and start a row for each segment resume must (re)do."""

    name = "sampling"

    def __init__(self, config: PipelineConfig, ctx: RunContext, state: CorpusState, retry: RetryPolicy) -> None:
        self.config, self.ctx, self.state, self.retry = config, ctx, state, retry

    def wants(self, work: RecordingWork) -> bool:
        return work.recording is not None and work.failure is None

    def fill(self, work: RecordingWork) -> None:
        from emoforge.preprocess.sampling.segmenter import Segmenter

        rec = work.recording
        if rec is None:
            return
        if recording_done(rec.id, self.state, self.retry):
            work.skipped_segments = self.state.segment_counts.get(rec.id, 0)
            return
        try:
            # A URL's object is spooled locally for decoding and shot detection, then deleted.
            with local_media(rec, self.config.sampling.media.max_file_bytes) as local:
                work.media = MediaDecoder(self.config.sampling.media).decode(local)
                segments = stage(Segmenter, self.config.sampling).segment(work.media)
            work.media.recording = rec
        except MediaError as exc:
            work.failure = exc.failure()
            return
        if not segments:
            work.failure = Failure(stage=self.name, kind=ErrorKind.no_speech, message="no segment found")
            return
        todo = [s for s in segments if segment_needs_redo(s.id, self.state, self.retry)]
        work.skipped_segments = len(segments) - len(todo)
        work.start_rows(todo, len(segments), self.ctx)


class Preprocess(Stage):
    """ASR, speakers, prosody, faces, AUs, key frames on one timeline: each row's features."""

    name = "preprocess"

    def __init__(self, config: PipelineConfig, ctx: RunContext) -> None:
        self.config, self.ctx = config, ctx

    def wants(self, work: RecordingWork) -> bool:
        return work.active and work.media is not None

    def fill(self, work: RecordingWork) -> None:
        from emoforge.preprocess.extractor import FeatureExtractor

        media = work.media
        if media is None:
            return
        extractor = stage(FeatureExtractor, self.config.preprocess, self.config.sampling.keyframes, self.ctx)
        features = extractor.extract(media, [_segment(r) for r in work.rows])
        if media.failures:
            # A stream that failed to decode while the other worked: say so on every segment.
            features = [f.model_copy(update={"failures": [*media.failures, *f.failures]}) for f in features]
        for row, f in zip(work.rows, features, strict=True):
            row.features = f

    def done_with_media(self) -> bool:
        return not clip_needs(self.config.agents).any  # else annotate cuts each segment's clip from it


class Annotate(Stage):
    """The jury labels every row (with its clip, for agents that take one): every agent, or
    with ``agents.policy: adaptive`` only the votes worth their price until the label is decided."""

    name = "annotate"

    def __init__(self, config: PipelineConfig, ctx: RunContext, cache_dir: str, out: str | None = None) -> None:
        self.config, self.ctx, self.cache_dir, self.out = config, ctx, cache_dir, out

    def fill(self, work: RecordingWork) -> None:
        from emoforge.agents.adaptive import full_decision
        from emoforge.agents.jury import Jury

        config = self.config
        jury = stage(Jury, config.agents, self.ctx, Path(self.cache_dir))
        jury.use_ledger(run_ledger(self.ctx.run_id, config.agents.budget_usd))
        media, needs = work.media, jury.clip_needs
        cutter = stage(ClipCutter, config.agents.clips, config.sampling.media) if needs.any and media else None
        # Provider slots are global (Prefect server side): runs in parallel share them.
        with provider_slots(config.agents, config.run):
            results: list[Any]
            if jury.batch_agents:
                if self.out is None:
                    raise ValueError(f"agents {jury.batch_agents} in mode 'batch' need the corpus folder (out)")
                jury.use_batches(self.out, self.ctx.run_id)
            if config.agents.policy == "adaptive":
                results = self._adaptive(jury, work, cutter)  # a batch agent's round is one batch
            elif jury.batch_agents:
                results = self._batched(jury, work, cutter)
            else:
                results = []
                for r in work.rows:
                    seg = _segment(r)
                    clip = cutter.cut(media, seg, needs) if cutter and media else None
                    anns = jury.annotate(seg, _features(r), clip)
                    results.append((anns, full_decision(jury, seg, _features(r), clip, anns)))
        kept = []
        for row, result in zip(work.rows, results, strict=True):
            if result is None:  # a vote is pending in a provider batch: the row waits for it
                continue
            row.annotations, row.jury = result
            kept.append(row)
        work.pending_segments += len(work.rows) - len(kept)
        work.rows = kept

    def _batched(self, jury: Any, work: RecordingWork, cutter: ClipCutter | None) -> list[Any]:
        """Batch-mode agents (agents/batch.py): their cache misses go out as one batch per agent
        for the recording's rows, or are collected from a batch an earlier run sent. A row
        whose vote is still pending is None: it stays uncommitted (never a row with a missing
        vote) and a later run into the same corpus collects it, sending nothing again."""
        from emoforge.agents.adaptive import full_decision

        media, needs = work.media, jury.clip_needs
        deferred = []
        for r in work.rows:
            clip = cutter.cut(media, _segment(r), needs) if cutter and media else None
            deferred.append((*jury.annotate_deferred(_segment(r), _features(r), clip), clip))
        settled = jury.settle_rows([(done, asks) for done, asks, _ in deferred])
        return [
            None if anns is None else (anns, full_decision(jury, _segment(r), _features(r), clip, anns))
            for r, anns, (_, _, clip) in zip(work.rows, settled, deferred, strict=True)
        ]

    def _adaptive(self, jury: Any, work: RecordingWork, cutter: ClipCutter | None) -> list[Any]:
        """Rounds of the adaptive jury: after each, the judge and the consensus decide."""
        from emoforge.agents.adaptive import AdaptiveJury
        from emoforge.agents.judge import Judge as JudgeTool
        from emoforge.agents.policy import AdaptivePolicy
        from emoforge.agents.providers import vote_sources
        from emoforge.agents.recognizers.base import vote_priors
        from emoforge.quality.consensus import ConsensusBuilder

        config = self.config
        # Rounds are judged offline: an LLM judge sees the other votes, so it would be paid
        # again every round; it scores the final jury once, in the judge phase.
        judge = stage(JudgeTool, config.judge.model_copy(update={"backend": "rules"}), self.ctx)
        taxonomy = config.agents.taxonomy
        builder = stage(
            ConsensusBuilder, config.aggregation, self.ctx, taxonomy, vote_priors(config.agents), vote_sources()
        )
        policy = AdaptivePolicy(config.agents.adaptive, len(taxonomy.labels), config.aggregation.pool_weights)
        media = work.media
        clip_of = (lambda seg: cutter.cut(media, seg, jury.clip_needs)) if cutter and media else None
        runner = AdaptiveJury(jury, policy, judge.score, builder.build)
        return runner.run([(_segment(r), _features(r)) for r in work.rows], clip_of)

    def done_with_media(self) -> bool:
        # One clip at a time was cut from it; only the judge's faithfulness re-asks need it again.
        return not self.config.judge.faithfulness_on


class Judge(Stage):
    """S_rec, S_reason, S_cot and S_final for every annotation of every row.

    An LLM judge spends from the run's budget and answers from the jury's response cache."""

    name = "judge"

    def __init__(self, config: PipelineConfig, ctx: RunContext, cache_dir: str | None = None) -> None:
        self.config, self.ctx, self.cache_dir = config, ctx, cache_dir

    def fill(self, work: RecordingWork) -> None:
        from emoforge.agents.judge import Judge as JudgeTool

        config = self.config
        judge = stage(JudgeTool, config.judge, self.ctx, config.judge_agent())
        judge.use(run_ledger(self.ctx.run_id, config.agents.budget_usd), response_cache(config, self.cache_dir))
        if not config.judge.faithfulness_on:
            verdicts = [judge.score(_segment(r), _features(r), r.annotations) for r in work.rows]
        else:
            verdicts = self._with_faithfulness(judge, work)
        for row, v in zip(work.rows, verdicts, strict=True):
            row.verdicts = v

    def _with_faithfulness(self, judge: Any, work: RecordingWork) -> list[Any]:
        """S_faith re-asks the jury's own annotators with masked evidence, on the same clips."""
        from emoforge.agents.jury import Jury

        config = self.config
        jury = stage(Jury, config.agents, self.ctx, Path(self.cache_dir) if self.cache_dir else None)
        jury.use_ledger(run_ledger(self.ctx.run_id, config.agents.budget_usd))
        judge.use_annotators(jury.agents, include_paid=config.judge.faithfulness_paid)
        media, needs = work.media, jury.clip_needs
        cutter = stage(ClipCutter, config.agents.clips, config.sampling.media) if needs.any and media else None
        with provider_slots(config.agents, config.run):
            return [
                judge.score(_segment(r), _features(r), r.annotations, clip=cutter.cut(media, _segment(r), needs))
                if cutter and media
                else judge.score(_segment(r), _features(r), r.annotations)
                for r in work.rows
            ]

    def done_with_media(self) -> bool:
        return True


class Aggregate(Stage):
    """Consensus label, confidence and review flags for every row."""

    name = "aggregate"

    def __init__(self, config: PipelineConfig, ctx: RunContext) -> None:
        self.config, self.ctx = config, ctx

    def fill(self, work: RecordingWork) -> None:
        from emoforge.agents.providers import vote_sources
        from emoforge.agents.recognizers.base import vote_priors
        from emoforge.quality.consensus import ConsensusBuilder

        config = self.config
        builder = stage(
            ConsensusBuilder,
            config.aggregation,
            self.ctx,
            config.agents.taxonomy,
            vote_priors(config.agents),
            vote_sources(),
        )
        consensus = [builder.build(_segment(r), _features(r), r.annotations, r.verdicts) for r in work.rows]
        for row, c in zip(work.rows, consensus, strict=True):
            row.consensus = c if row.jury is None or row.jury.route != "review" else _to_review(c, row)


def _to_review(consensus: Any, row: SegmentRow) -> Any:
    """The adaptive jury stopped on the budget or the cap short of a decisive label: a human decides."""
    jury = row.jury
    if jury is None:
        return consensus
    asked = ", ".join(jury.asked) or "nobody"
    reason = f"jury_{jury.stop}: stopped undecided after {asked}"
    return consensus.model_copy(update={"needs_review": True, "review_reasons": [*consensus.review_reasons, reason]})


def response_cache(config: PipelineConfig, cache_dir: str | None) -> ResponseCache | None:
    """The response cache the jury uses (``agents.cache``), or None when it is off."""
    cache = config.agents.cache
    root = cache.path or cache_dir
    return ResponseCache(Path(root)) if cache.enabled and root else None
