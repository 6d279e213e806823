"""Batch mode (``mode: batch``): an agent's requests go to its provider's batch API at about
half the price, and are answered by a later run.

``BatchRunner.settle(asks)`` takes the requests a batch agent still needs answered (the
``BatchAsk`` of ``LLMAnnotator.deferred``: cache misses only) and, for each, either answers
it now or leaves it pending:

1. A request already in a recorded batch (``storage/batches.py``, found by its custom id) is
   never sent again. An unfinished batch is polled; a finished one is collected: every
   answer goes to the response cache (so any later run, realtime or batch, makes 0 calls for
   it) before the record is marked ended, and lines without an answer become typed failures
   (``_UNANSWERED``, or the line's own error) delivered to their rows in the collecting run.
   A record left ``preparing``/``uploaded`` by a killed run first looks for a provider batch
   carrying its key and adopts it; only when there is none is it sent.
2. The rest are new: the budget is charged their batch-priced estimate, and they go out as
   one batch (record first, then upload, then create; each step recorded before the next).

What comes back is the annotation of every request answered or failed now; the caller keeps
the others' segments uncommitted until a later run collects them. Failures of a batch that
ended in an earlier run are not delivered again: such a request (its row redone by
``--retry``) goes into a new batch, and the ended record is dropped from the book.
"""

from __future__ import annotations

import hashlib
import re
from typing import TYPE_CHECKING, Any

from emoforge.agents.backends.batch_api import BatchClient, BatchStatus
from emoforge.agents.base import AnnotatorError, ChatBackend
from emoforge.agents.cache import CacheKeyError, check_key
from emoforge.agents.costs import BudgetExceeded, CostLedger, batch_factor, batch_price, cost_usd
from emoforge.agents.providers import provider
from emoforge.configs.agents import AgentConfig
from emoforge.storage.batches import BatchBook, BatchRequest, PendingBatch
from emoforge.storage.records import TRANSIENT_ERRORS, Annotation, ErrorKind, Failure, Usage, utcnow
from emoforge.storage.secrets import scrub, scrubbed_logger

if TYPE_CHECKING:
    from emoforge.agents.llm import BatchAsk, LLMAnnotator

log = scrubbed_logger(__name__)

# A line with no answer in a finished batch: its failure by how the batch ended. Expired and
# cancelled ones may pass (resume sends them again); a batch the provider failed at validation
# fails the same way again, so it is final (``--retry all`` resends).
_UNANSWERED: dict[str, tuple[ErrorKind, str]] = {
    "expired": (ErrorKind.timeout, "batch expired before this request ran (24 h window)"),
    "cancelled": (ErrorKind.provider_error, "batch cancelled before this request ran"),
    "failed": (ErrorKind.invalid_input, "batch failed at the provider"),
    "completed": (ErrorKind.provider_error, "batch completed without an answer for this request"),
}


def make_batch_client(config: AgentConfig, backend: ChatBackend) -> BatchClient:
    """The batch API client over the agent's realtime backend (same key, base URL, request body)."""
    batch = provider(config.backend).batch
    if batch is None:
        raise ValueError(f"agent {config.name!r}: no batch API for backend {config.backend!r}")
    return batch.client(backend)


def batch_key(agent: str, custom_ids: list[str], run_id: str) -> str:
    """Key of a batch, recorded before the provider sees it: the agent, a hash of its requests'
    ids, and of the run sending them (a later run resending the same requests, e.g. after an
    expiry, must not adopt the earlier batch by its key)."""
    digest = hashlib.sha256("\n".join([agent, *sorted(custom_ids)]).encode()).hexdigest()[:20]
    run = hashlib.sha256(run_id.encode()).hexdigest()[:8]
    return f"emoforge-{re.sub(r'[^A-Za-z0-9_.-]', '_', agent)[:40]}-{digest}-{run}"


class BatchRunner:
    """Submits and collects one batch agent's requests; see the module docstring."""

    def __init__(
        self,
        annotator: LLMAnnotator,
        book: BatchBook,
        run_id: str,
        ledger: CostLedger,
        client: BatchClient | None = None,
    ) -> None:
        self.annotator = annotator
        self.config = annotator.config
        self.book = book
        self.run_id = run_id
        self.ledger = ledger
        self.client = client or make_batch_client(self.config, annotator.chat)
        self.price = batch_price(self.config.price, self.config.backend)

    def settle(self, asks: list[BatchAsk]) -> dict[str, Annotation]:
        """Annotation id -> annotation for every ask answered or failed now; the rest are pending."""
        by_cid = {a.custom_id: a for a in asks}
        # Ended batches of earlier runs have nothing left to hand out (their answers are in the
        # cache, their failures were delivered): dropped, so the book stays the size of the work
        # in flight instead of growing with the corpus.
        self.book.prune(lambda b: b.state == "ended" and b.collected_run != self.run_id)
        holding: dict[str, str] = {}  # custom id -> key of the newest batch holding it
        records: dict[str, PendingBatch] = {}
        for b in sorted(self.book.batches(), key=lambda b: b.prepared_at):
            if b.agent == self.config.name and any(r.custom_id in by_cid for r in b.requests):
                records[b.key] = b
                holding.update({r.custom_id: b.key for r in b.requests if r.custom_id in by_cid})
        answers: dict[str, Annotation] = {}
        usage: dict[str, Usage] = {}
        for key, b in list(records.items()):
            if b.state == "ended":
                continue
            try:
                records[key] = self._advance(b, by_cid, usage)
            except AnnotatorError as exc:
                log.warning("agent %s: batch %s: %s", self.config.name, b.batch_id or b.key, exc)
                for r in b.requests:
                    if r.custom_id in by_cid:
                        answers[r.annotation_id] = self.annotator.batch_failed(by_cid[r.custom_id], _failure(exc))
        new: list[BatchAsk] = []
        for ask in asks:
            if ask.annotation_id in answers:
                continue
            held = records.get(holding.get(ask.custom_id, ""))
            done = self._answer(ask, held, usage)
            if done is not None:
                answers[ask.annotation_id] = done
            elif held is None or held.state == "ended":
                new.append(ask)
        if new:
            answers.update(self._submit(new))
        return answers

    # ------------------------------------------------------------------ one batch's life

    def _set(self, b: PendingBatch, **changes: Any) -> PendingBatch:
        return self.book.update(b.key, lambda cur: (cur or b).model_copy(update=changes))

    def _advance(self, b: PendingBatch, by_cid: dict[str, BatchAsk], usage: dict[str, Usage]) -> PendingBatch:
        """Recover, send, poll or collect an unfinished batch: one step as far as it goes now."""
        if b.state in ("preparing", "uploaded"):
            found = self.client.find(b)
            if found is not None:
                log.info("agent %s: adopted batch %s created before a crash", self.config.name, found)
                b = self._set(b, state="submitted", batch_id=found, submitted_at=utcnow())
            elif all(r.custom_id in by_cid for r in b.requests):
                b = self._send(b, [by_cid[r.custom_id] for r in b.requests])
            else:
                # Never sent, and its requests are not all asked again (their prompts changed):
                # nothing to adopt or resend as recorded; the asks at hand go to a new batch.
                return self._set(b, state="ended", provider_state="abandoned", ended_at=utcnow())
        if b.state != "submitted":
            return b
        status = self.client.poll(b)
        if status.ended is None:
            return self._set(b, provider_state=status.state, checked_at=utcnow())
        return self._collect(b, status, usage, by_cid)

    def _collect(
        self, b: PendingBatch, status: BatchStatus, usage: dict[str, Usage], by_cid: dict[str, BatchAsk]
    ) -> PendingBatch:
        """Answers into the cache first, then the record ended: a kill between collects again."""
        cache = self.annotator.cache
        if cache is None:
            raise ValueError("batch mode needs the response cache (agents.cache.enabled)")
        failures: dict[str, Failure] = {}
        for r in b.requests:
            reply = status.replies.get(r.custom_id)
            mismatch = _tampered(r, by_cid.get(r.custom_id))
            if mismatch is not None:
                # batches.json is a file anyone could edit: its key decides where an answer is
                # cached, so a key that is not this request's would attach it to another row.
                failures[r.custom_id] = _failure(AnnotatorError(ErrorKind.invalid_input, mismatch))
                continue
            if reply is not None:
                cache.put(r.cache_key, self.annotator.batch_entry(reply))
                cost = cost_usd(self.price, reply.input_tokens, reply.output_tokens, reply.audio_input_tokens)
                usage[r.custom_id] = Usage(
                    input_tokens=reply.input_tokens,
                    output_tokens=reply.output_tokens,
                    cost_usd=cost,
                    calls=1,
                    attempts=1,
                )
                continue
            error = status.errors.get(r.custom_id)
            if error is None:
                kind, message = _UNANSWERED[status.ended or "completed"]
                error = AnnotatorError(kind, f"{message}: {status.message}" if status.message else message)
            failures[r.custom_id] = _failure(error)
        answered = len(b.requests) - len(failures)
        log.info(
            "agent %s: batch %s %s: %d answered, %d failed",
            self.config.name,
            b.batch_id,
            status.state,
            answered,
            len(failures),
        )
        return self._set(
            b, state="ended", provider_state=status.state, checked_at=utcnow(), ended_at=utcnow(),
            collected_run=self.run_id, answered=answered, failures=failures,
        )  # fmt: skip

    def _answer(self, ask: BatchAsk, b: PendingBatch | None, usage: dict[str, Usage]) -> Annotation | None:
        cache = self.annotator.cache
        entry = cache.get(ask.cache_key) if cache is not None else None
        if entry is not None:
            return self.annotator.from_batch(ask, entry, usage.get(ask.custom_id, Usage(cached=True)))
        if b is not None and b.state == "ended" and b.collected_run == self.run_id and ask.custom_id in b.failures:
            return self.annotator.batch_failed(ask, b.failures[ask.custom_id])
        return None

    def _submit(self, asks: list[BatchAsk]) -> dict[str, Annotation]:
        """New requests as one batch; returns the failed ones (budget, too large, a refused submission)."""
        cfg = self.config
        failed: dict[str, Annotation] = {}
        send: list[BatchAsk] = []
        lines: list[Any] = []
        factor = batch_factor(self.config.backend)
        for ask in asks:
            try:
                self.ledger.reserve(ask.estimate_usd * factor)
            except BudgetExceeded as exc:
                failed[ask.annotation_id] = self.annotator.batch_failed(
                    ask, _failure(AnnotatorError(ErrorKind.budget_exceeded, str(exc)))
                )
                continue
            # Submitted means committed to pay: the estimate counts as spent now (the answer may
            # come in another run, whose ledger starts at zero).
            self.ledger.settle(ask.estimate_usd * factor, ask.estimate_usd * factor)
            try:
                lines.append(self.client.line(ask.custom_id, ask.prompt, cfg.max_output_tokens, cfg.temperature))
            except AnnotatorError as exc:  # e.g. a Gemini request too large to go inline
                failed[ask.annotation_id] = self.annotator.batch_failed(ask, _failure(exc))
                continue
            send.append(ask)
        if not send:
            return failed
        ids = [a.custom_id for a in send]
        record = PendingBatch(
            key=batch_key(self.config.name, ids, self.run_id),
            agent=self.config.name,
            provider=self.config.backend,
            model=self.config.model or "",
            requests=[
                BatchRequest(
                    custom_id=a.custom_id,
                    annotation_id=a.annotation_id,
                    cache_key=a.cache_key,
                    segment_id=a.segment.id,
                    recording_id=a.segment.recording_id,
                )
                for a in send
            ],
        )
        self.book.put(record)  # before anything reaches the provider
        try:
            self._send(record, send, lines)
        except AnnotatorError as exc:
            log.warning("agent %s: submitting batch %s failed: %s", self.config.name, record.key, exc)
            if exc.kind not in TRANSIENT_ERRORS:
                # It fails the same way when sent again: close the record (the rows say why).
                self._set(record, state="ended", provider_state="not_submitted", ended_at=utcnow())
            failed.update({a.annotation_id: self.annotator.batch_failed(a, _failure(exc)) for a in send})
        return failed

    def _send(self, b: PendingBatch, asks: list[BatchAsk], lines: list[Any] | None = None) -> PendingBatch:
        cfg = self.config
        if lines is None:
            lines = [self.client.line(a.custom_id, a.prompt, cfg.max_output_tokens, cfg.temperature) for a in asks]
        if b.file_id is None:
            file_id = self.client.upload(b, lines)
            if file_id is not None:
                b = self._set(b, state="uploaded", file_id=file_id)
        batch_id = self.client.create(b, lines)
        log.info("agent %s: submitted batch %s (%d requests)", cfg.name, batch_id, len(asks))
        return self._set(b, state="submitted", batch_id=batch_id, submitted_at=utcnow(), provider_state="submitted")


def _tampered(request: BatchRequest, ask: BatchAsk | None) -> str | None:
    """Why a recorded request cannot be trusted to say where its answer goes, or None.

    Its cache key must be a key (64 hex digits, never a path), match the custom id the
    provider answered (``{annotation_id}:{cache_key[:16]}``), and, when this run asks it,
    be the key of the prompt this run built.
    """
    try:
        check_key(request.cache_key)
    except CacheKeyError:
        return f"batches.json: request {request.custom_id[:80]!r} has no valid cache key; not collected"
    if request.custom_id != f"{request.annotation_id}:{request.cache_key[:16]}":
        return f"batches.json: request {request.custom_id[:80]!r} does not match its annotation and cache key"
    if ask is not None and ask.cache_key != request.cache_key:
        return f"batches.json: request {request.custom_id[:80]!r} was recorded for another prompt"
    return None


def _failure(exc: AnnotatorError) -> Failure:
    return Failure(stage="annotate", kind=exc.kind, message=scrub(str(exc))[:500])
