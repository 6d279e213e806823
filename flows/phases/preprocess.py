"""Phase ``preprocess``: ASR, speakers, prosody, faces, AUs, key frames: each row's features."""

from __future__ import annotations

from emoforge.agents.clips import clip_needs
from emoforge.flows.cost_estimate import CostEstimate
from emoforge.flows.leases import lease
from emoforge.flows.phase import Phase, segment_of
from emoforge.flows.work import RecordingWork
from emoforge.storage.records import Features


class Preprocess(Phase):
    """ASR, speakers, prosody, faces, AUs, key frames on one timeline: each row's features."""

    name = "preprocess"

    def wants(self, work: RecordingWork) -> bool:
        return work.active and work.media is not None

    def fill(self, work: RecordingWork) -> None:
        from emoforge.preprocess.extractor import FeatureExtractor

        media = work.media
        if media is None:
            return
        extractor = lease(FeatureExtractor, self.config.preprocess, self.config.sampling.keyframes, self.ctx)
        features = extractor.extract(media, [segment_of(r) for r in work.rows])
        if media.failures:
            # A stream that failed to decode while the other worked: say so on every segment.
            features = [f.model_copy(update={"failures": [*media.failures, *f.failures]}) for f in features]
        for row, f in zip(work.rows, features, strict=True):
            row.features = f

    def estimate(self, work: RecordingWork, est: CostEstimate) -> None:
        # Extraction costs nothing at a provider and takes long: prompts are priced on empty features.
        for row in work.rows:
            row.features = Features(segment_id=segment_of(row).id)

    def done_with_media(self) -> bool:
        return not clip_needs(self.config.agents).any  # else annotate cuts each segment's clip from it
