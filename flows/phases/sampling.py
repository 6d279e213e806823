"""Phase ``sampling``: decode once, cut into segments, start a row per segment to (re)do."""

from __future__ import annotations

from emoforge.flows.cost_estimate import CostEstimate
from emoforge.flows.leases import lease
from emoforge.flows.phase import Phase
from emoforge.flows.work import RecordingWork, recording_done, segment_needs_redo
from emoforge.preprocess.media import MediaDecoder, MediaError, local_media
from emoforge.storage.records import ErrorKind, Failure, Segment


class Sampling(Phase):
    """Decode once, cut into segments, and start a row for each segment resume must (re)do."""

    name = "sampling"

    def wants(self, work: RecordingWork) -> bool:
        return work.recording is not None and work.failure is None

    def fill(self, work: RecordingWork) -> None:
        rec, state, retry = work.recording, self.env.state, self.env.retry
        if rec is None:
            return
        if recording_done(rec.id, state, retry):
            work.skipped_segments = state.segment_counts.get(rec.id, 0)
            return
        try:
            segments = self._segments(work)
        except MediaError as exc:
            work.failure = exc.failure()
            return
        if not segments:
            work.failure = Failure(stage=self.name, kind=ErrorKind.no_speech, message="no segment found")
            return
        todo = [s for s in segments if segment_needs_redo(s.id, state, retry)]
        work.skipped_segments = len(segments) - len(todo)
        work.start_rows(todo, len(segments), self.ctx)

    def estimate(self, work: RecordingWork, est: CostEstimate) -> None:
        # Decoding and segmenting are cheap and give the counts every price multiplies: done for real.
        rec = work.recording
        try:
            segments = self._segments(work)
        except MediaError:
            est.unreadable += 1
            return
        est.media_seconds += (rec.duration_s if rec else None) or 0.0
        est.segments += len(segments)
        work.start_rows(segments, len(segments), self.ctx)

    def _segments(self, work: RecordingWork) -> list[Segment]:
        """Decode the recording into ``work.media`` and cut it into segments."""
        from emoforge.preprocess.sampling.segmenter import Segmenter

        rec = work.recording
        if rec is None:
            return []
        # A URL's object is spooled locally for decoding and shot detection, then deleted.
        with local_media(rec, self.config.sampling.media.max_file_bytes) as local:
            work.media = MediaDecoder(self.config.sampling.media).decode(local)
            segments = lease(Segmenter, self.config.sampling).segment(work.media)
        work.media.recording = rec
        return segments
