"""Which recordings a run can leave alone because they only wait on provider batches.

A recording whose segments are held back for a batch-mode vote (agents/batch.py) is replanned
by every later run: before this, a polling run re-decoded, re-segmented and re-extracted it
(ASR, faces, prosody) only to find in the annotate phase that the batch was still running:
22.7 s per polling run on two fixture clips, 9.8 s with this check, which is then nearly all
process and Prefect start (benchmarks/bench_batch_polling.py). ``waiting_recordings`` runs
once per run, before any recording is decoded: it polls every pending batch of
``<out>/batches.json`` once (one retrieve per batch, however many recordings it holds) and
names the recordings all of whose pending batches are still running at the provider. The
flow skips those for this run.

Processing a recording is always safe (only slower), so anything short of certainty
processes it as before (the annotate phase polls, collects or recovers its batches):

- a batch that ended (completed, failed, expired, cancelled), or was never submitted
  (``preparing``/``uploaded``: a killed run's, recovered by the annotate phase);
- a poll that failed (network, auth, a backend that cannot be built);
- a batch whose agent is no longer a batch-mode agent of this config (nobody would collect it);
- a batch recorded before requests carried their recording (``BatchRequest.recording_id``):
  it cannot be attributed, so while one is pending no recording is skipped at all.

A recording with other work left (a segment ``--retry`` redoes) is not skipped either:
``hold_waiting`` in flows/incremental.py decides that from the committed rows.
"""

from __future__ import annotations

from collections.abc import Sequence

from emoforge.agents.backends.batch_api import BatchClient
from emoforge.agents.base import ChatBackend
from emoforge.configs.agents import AgentConfig
from emoforge.storage.batches import BatchBook, PendingBatch
from emoforge.storage.records import utcnow
from emoforge.storage.secrets import scrubbed_logger

log = scrubbed_logger(__name__)


def waiting_recordings(root: str, agents: Sequence[AgentConfig]) -> dict[str, set[str]]:
    """Recording id -> its segment ids pending in provider batches, for each recording every one
    of whose pending batches is still running at the provider (polled now, once per batch).

    Args:
        root: the corpus folder holding ``batches.json``.
        agents: the run's jury (``config.agents.jury``); only its enabled batch-mode agents count.
    """
    batch_agents = {a.name: a for a in agents if a.enabled and a.mode == "batch"}
    book = BatchBook(root)
    pending = book.pending() if batch_agents else []
    if not pending:
        return {}
    unknown = [b for b in pending if any(r.recording_id is None for r in b.requests)]
    if unknown:
        log.info(
            "batch %s predates recording ids in batches.json: no recording is skipped this run",
            unknown[0].batch_id or unknown[0].key,
        )
        return {}
    segments: dict[str, set[str]] = {}
    blocked: set[str] = set()
    poller = _Poller(book, batch_agents)
    try:
        for b in pending:
            running = poller.still_running(b)
            for r in b.requests:
                rec = str(r.recording_id)
                segments.setdefault(rec, set()).add(r.segment_id or r.annotation_id)
                if not running:
                    blocked.add(rec)
    finally:
        poller.close()
    return {rec: segs for rec, segs in segments.items() if rec not in blocked}


class _Poller:
    """One batch client per agent, built on first use; ``still_running`` polls one batch once."""

    def __init__(self, book: BatchBook, agents: dict[str, AgentConfig]) -> None:
        self.book, self.agents = book, agents
        self.clients: dict[str, BatchClient | None] = {}
        self.backends: list[ChatBackend] = []

    def still_running(self, b: PendingBatch) -> bool:
        """True only when the provider says ``b`` has not ended."""
        agent = self.agents.get(b.agent)
        if agent is None or b.state != "submitted" or b.batch_id is None:
            return False
        try:
            client = self._client(agent)
            if client is None:
                return False
            status = client.poll(b)
        except Exception as exc:  # any poll failure (network, auth, SDK) means: process as before
            log.warning("agent %s: polling batch %s failed, processing its recordings: %s", b.agent, b.batch_id, exc)
            return False
        if status.ended is not None:
            return False  # the annotate phase polls it again and collects it
        changes = {"provider_state": status.state, "checked_at": utcnow()}
        self.book.update(b.key, lambda cur: (cur or b).model_copy(update=changes))
        return True

    def _client(self, agent: AgentConfig) -> BatchClient | None:
        from emoforge.agents.batch import make_batch_client
        from emoforge.agents.jury import make_backend

        if agent.name not in self.clients:
            self.clients[agent.name] = None  # a client that cannot be built is not tried again this run
            backend = make_backend(agent)
            self.backends.append(backend)
            self.clients[agent.name] = make_batch_client(agent, backend)
        return self.clients[agent.name]

    def close(self) -> None:
        for backend in self.backends:
            backend.close()
