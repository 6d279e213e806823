"""The jury: every enabled agent annotates a segment independently.

``Jury.annotate`` returns one Annotation per enabled agent (id ``{segment}-{agent}``), in
config order, and never raises for model or provider trouble. ``clip_needs`` says which
clip parts (audio, video) some agent takes; the caller cuts them per segment
(``agents/clips.py``) and passes the clip on, and each agent takes what it was configured
for. Agents of one segment run concurrently; calls to one provider share a semaphore of
that provider's configured concurrency, so parallel segments (the flow's workers) cannot
exceed it either. One response cache, one cost ledger (budget cap) and one label
normaliser are shared.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from emoforge.agents.base import Annotator, ChatBackend, SegmentClip
from emoforge.agents.cache import ResponseCache
from emoforge.agents.clips import clip_needs
from emoforge.agents.costs import CostLedger, add_usage, tokens_by_part
from emoforge.agents.labels import LabelNormalizer, SentenceEmbedder
from emoforge.agents.providers import provider
from emoforge.configs.agents import AgentConfig, AgentsConfig
from emoforge.storage.records import (
    Annotation,
    ErrorKind,
    Failure,
    Features,
    RunContext,
    Segment,
    Status,
    Usage,
)
from emoforge.storage.secrets import scrub, scrubbed_logger

if TYPE_CHECKING:
    from emoforge.agents.batch import BatchRunner
    from emoforge.agents.llm import BatchAsk

# Provider error text can quote the key it was sent: scrubbed before any handler sees it.
log = scrubbed_logger(__name__)


def make_backend(config: AgentConfig) -> ChatBackend:
    """The chat backend of an LLM agent; heavy SDKs are imported when first used."""
    spec = provider(config.backend)
    if spec.chat is None:
        raise ValueError(f"agent {config.name!r}: backend {config.backend!r} is not an LLM backend")
    return spec.chat(config)


def _limit_key(config: AgentConfig) -> str:
    """Agents sharing a concurrency limit: one server, or (a local backend) one loaded model."""
    local_model = config.model if not provider(config.backend).remote else ""
    return f"{config.backend}|{config.base_url or ''}|{local_model or ''}"


class Jury:
    """Builds the configured agents and runs them on each segment."""

    def __init__(self, config: AgentsConfig, ctx: RunContext, cache_dir: Path | None = None) -> None:
        from emoforge.agents.llm import LLMAnnotator

        self.config = config
        self.ctx = ctx
        self.clip_needs = clip_needs(config)
        self.ledger = CostLedger(config.budget_usd)
        root = Path(config.cache.path) if config.cache.path else cache_dir
        self.cache = ResponseCache(root) if config.cache.enabled and root is not None else None
        embedder = SentenceEmbedder(config.taxonomy.embedding_model) if config.taxonomy.embedding_model else None
        self.normalizer = LabelNormalizer(config.taxonomy, embedder)
        limiters: dict[str, threading.Semaphore] = {}
        self.agents: list[Annotator] = []
        for agent in config.jury:
            if not agent.enabled:
                continue
            spec = provider(agent.backend)
            spec.check(agent)
            if spec.annotator is not None:
                self.agents.append(spec.annotator(agent, ctx, config.taxonomy, embedder))
            else:
                key = _limit_key(agent)
                limiter = limiters.setdefault(key, threading.BoundedSemaphore(agent.concurrency))
                self.agents.append(
                    LLMAnnotator(
                        agent,
                        make_backend(agent),
                        ctx,
                        config.taxonomy,
                        self.normalizer,
                        self.ledger,
                        self.cache,
                        limiter,
                    )
                )
        self._pool = ThreadPoolExecutor(
            max_workers=min(config.max_workers, max(1, len(self.agents))), thread_name_prefix="jury"
        )
        self._runners: dict[tuple[str, str], BatchRunner] = {}
        self._batch_root: str | None = None  # use_batches
        self._batch_run = ""

    def use_ledger(self, ledger: CostLedger) -> None:
        """Spend from ``ledger`` (the run's, shared with the LLM judge) from now on."""
        from emoforge.agents.llm import LLMAnnotator

        self.ledger = ledger
        for agent in self.agents:
            if isinstance(agent, LLMAnnotator):
                agent.ledger = ledger

    def _run_one(self, agent: Annotator, segment: Segment, features: Features, clip: SegmentClip | None) -> Annotation:
        try:
            annotation = agent.annotate(segment, features, clip)
        except Exception as exc:  # a bug in one agent must not lose the other agents' work
            log.exception("agent %s crashed on %s", agent.name, segment.id)
            annotation = Annotation(
                id=f"{segment.id}-{agent.name}",
                segment_id=segment.id,
                agent=agent.name,
                backend=agent.backend,
                status=Status.failed,
                failure=Failure(
                    stage="annotate", kind=ErrorKind.internal, message=scrub(f"{type(exc).__name__}: {exc}")[:500]
                ),
                provenance=self.ctx.provenance("annotate"),
            )
        self.ledger.record(agent.name, segment.id, annotation.usage)
        return annotation

    def annotate(
        self,
        segment: Segment,
        features: Features,
        clip: SegmentClip | None = None,
        agents: Sequence[Annotator] | None = None,
    ) -> list[Annotation]:
        """One Annotation per agent (every enabled agent, or ``agents``), concurrently."""
        chosen = self.agents if agents is None else agents
        futures = [self._pool.submit(self._run_one, a, segment, features, clip) for a in chosen]
        return [f.result() for f in futures]

    def ask(self, agent: Annotator, items: Sequence[tuple[Segment, Features, SegmentClip | None]]) -> list[Annotation]:
        """One agent on many segments, concurrently (within its provider's limit): one round
        of the adaptive jury, the unit a provider batch could take."""
        futures = [self._pool.submit(self._run_one, agent, s, f, c) for s, f, c in items]
        return [f.result() for f in futures]

    def tokens_by_part(
        self, annotation: Annotation, segment: Segment, features: Features, clip: SegmentClip | None = None
    ) -> dict[str, int]:
        """The annotation's billed tokens by part (text, image, audio, video, output): see
        ``costs.tokens_by_part``; an offline or cached answer bills none."""
        from emoforge.agents.llm import LLMAnnotator

        usage = annotation.usage
        agent = next((a for a in self.agents if a.name == annotation.agent), None)
        if not isinstance(agent, LLMAnnotator) or usage.input_tokens + usage.output_tokens <= 0:
            return {}
        return tokens_by_part(
            agent.prompt_for(segment, features, clip), agent.backend, usage.input_tokens, usage.output_tokens
        )

    # ------------------------------------------------------------------ batch mode (agents/batch.py)

    @property
    def batch_agents(self) -> list[str]:
        """Names of the agents in ``mode: batch``."""
        return [a.name for a in self.agents if getattr(getattr(a, "config", None), "mode", None) == "batch"]

    @property
    def batching(self) -> bool:
        """Whether ``use_batches`` gave this jury a corpus folder for its provider batches."""
        return self._batch_root is not None

    def use_batches(self, root: str, run_id: str) -> None:
        """Record this corpus's provider batches in ``<root>/batches.json`` (storage/batches.py),
        for run ``run_id`` (a leased jury outlives runs: its own context's run id is stale)."""
        self._batch_root, self._batch_run = str(root), run_id

    def annotate_deferred(
        self,
        segment: Segment,
        features: Features,
        clip: SegmentClip | None = None,
        agents: Sequence[Annotator] | None = None,
    ) -> tuple[list[Annotation], list[BatchAsk]]:
        """``annotate``, except that a batch-mode agent without a cached answer returns its
        request (a ``BatchAsk``) instead of calling: ``settle`` sends or collects it."""
        from emoforge.agents.llm import LLMAnnotator

        chosen = self.agents if agents is None else agents
        batch = set(self.batch_agents)
        done = self.annotate(segment, features, clip, agents=[a for a in chosen if a.name not in batch])
        asks: list[BatchAsk] = []
        for agent in chosen:
            if agent.name not in batch or not isinstance(agent, LLMAnnotator):
                continue
            out = agent.deferred(segment, features, clip)
            if isinstance(out, Annotation):
                self.ledger.record(agent.name, segment.id, out.usage)
                done.append(out)
            else:
                asks.append(out)
        return done, asks

    def settle(self, asks: Sequence[BatchAsk]) -> dict[str, Annotation]:
        """Annotation id -> annotation for each ask answered (or failed) now, one batch per
        agent for the new ones; asks missing from the result are pending in a provider batch."""
        from emoforge.agents.batch import BatchRunner
        from emoforge.agents.llm import LLMAnnotator
        from emoforge.storage.batches import BatchBook

        root = self._batch_root
        if asks and root is None:
            raise ValueError("batch-mode agents need the corpus folder: call Jury.use_batches(out) first")
        answers: dict[str, Annotation] = {}
        for agent in self.agents:
            mine = [a for a in asks if a.agent == agent.name]
            if not mine or not isinstance(agent, LLMAnnotator):
                continue
            runner = self._runners.get((agent.name, str(root)))
            if runner is None:
                runner = BatchRunner(agent, BatchBook(str(root)), self._batch_run, self.ledger)
                self._runners[(agent.name, str(root))] = runner
            runner.ledger, runner.run_id = self.ledger, self._batch_run
            for annotation_id, annotation in runner.settle(mine).items():
                self.ledger.record(agent.name, annotation.segment_id, annotation.usage)
                answers[annotation_id] = annotation
        return answers

    def settle_rows(self, rows: Sequence[tuple[list[Annotation], list[BatchAsk]]]) -> list[list[Annotation] | None]:
        """Per row of ``annotate_deferred`` results: its annotations in agent order, or None
        while one of its asks is pending (the row must not be committed yet)."""
        answers = self.settle([a for _, asks in rows for a in asks])
        order = {a.name: i for i, a in enumerate(self.agents)}
        out: list[list[Annotation] | None] = []
        for done, asks in rows:
            if any(a.annotation_id not in answers for a in asks):
                out.append(None)
                continue
            merged = [*done, *(answers[a.annotation_id] for a in asks)]
            out.append(sorted(merged, key=lambda a: order.get(a.agent, len(order))))
        return out

    def estimate(self, segment: Segment, features: Features, clip: SegmentClip | None = None) -> Usage:
        """Dry-run usage; without a clip, agents count their audio/video at the segment's length."""
        total = Usage(cached=True)
        for agent in self.agents:
            total = add_usage(total, agent.estimate(segment, features, clip))
        return total

    def usage(self) -> Usage:
        """Totals of this run so far (calls, tokens, cost, latency)."""
        return self.ledger.total()

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        for agent in self.agents:
            agent.close()
