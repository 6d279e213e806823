"""Phase ``probe``: hash and probe the file into its ``Recording``."""

from __future__ import annotations

import hashlib

from emoforge.flows.cost_estimate import CostEstimate
from emoforge.flows.phase import Phase
from emoforge.flows.work import RecordingWork
from emoforge.preprocess.media import MediaProber
from emoforge.storage.records import ErrorKind, Failure, Recording, Status, recording_id_for


class Probe(Phase):
    """Hash and probe the file: the recording (a failed one when it cannot be read)."""

    name = "probe"

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

    def estimate(self, work: RecordingWork, est: CostEstimate) -> None:
        # Probing is cheap and says which files a run could read: a dry run does it for real.
        self.fill(work)
        if work.failure is not None:
            est.unreadable += 1
