"""Shot boundaries with PySceneDetect (content or adaptive detector).

Shots are returned as contiguous spans covering ``[0, media.duration_s]``, so later stages
can clip anything to a shot without checking for holes. ``source: scan`` (default) replays
the content score the decoder computed for every frame in its single pass through
PySceneDetect's detector: no second decode, cuts exact to one frame. ``source: file`` lets
PySceneDetect decode the file again (its own downscaling); ``source: frames`` runs it on
the shared sampled FrameStore (cuts only as exact as ``media.frame_fps``). Without scan
scores ``scan`` falls back to ``file``, and a file PySceneDetect cannot open falls back to
the frame store rather than failing the recording.
"""

from __future__ import annotations

import itertools
import logging
from typing import Any

import numpy as np

from emoforge.configs.sampling import ShotConfig
from emoforge.preprocess.media import Media
from emoforge.storage.records import Span

log = logging.getLogger(__name__)


class ShotDetector:
    """Finds hard cuts; one shot covering the media when there is no video or detection is off."""

    def __init__(self, config: ShotConfig) -> None:
        self.config = config

    @property
    def model_id(self) -> str:
        """For provenance: detector, threshold and where frames came from."""
        c = self.config
        threshold = c.adaptive_threshold if c.detector == "adaptive" else c.threshold
        return f"pyscenedetect/{c.detector}@{threshold:g}/{c.source}"

    def detect(self, media: Media) -> list[Span]:
        duration = media.duration_s
        if duration <= 0:
            return []
        if not (self.config.enabled and media.recording.has_video):
            return [Span(start_s=0.0, end_s=duration)]
        cuts: list[float] | None = None
        if self.config.source == "scan":
            cuts = self._cuts_from_scan(media)
        if cuts is None and self.config.source in ("scan", "file"):
            cuts = self._cuts_from_file(media.recording.uri)
        if cuts is None:
            cuts = self._cuts_from_frames(media)
        return spans_from_cuts(cuts, duration)

    def _cuts_from_scan(self, media: Media) -> list[float] | None:
        """Replay the decoder's per-frame content scores through PySceneDetect's detector.

        The detector's own threshold, flash filter / adaptive window and minimum scene length
        decide the cuts; only its frame-scoring step is swapped for the precomputed score
        (``_calculate_frame_score``, a private hook of scenedetect 0.7, pinned).
        """
        from scenedetect import FrameTimecode

        frames = media.frames
        if frames is None or len(frames.scan_times) < 2:
            return None
        times, scores = frames.scan_times, frames.scan_scores
        fps = next((s.fps for s in media.recording.streams if s.kind == "video" and s.fps), None)
        rate = float(fps or 1.0 / max(1e-3, float(np.median(np.diff(times)))))
        detector = self._detector()
        replay = iter(scores.tolist())
        detector._calculate_frame_score = lambda timecode, frame_img: next(replay)
        cuts: list[Any] = []
        tc = None
        for t in times:
            tc = FrameTimecode(float(t), fps=rate)
            cuts += detector.process_frame(tc, None)
        if tc is not None:
            cuts += detector.post_process(tc)
        return sorted({round(float(c.seconds), 6) for c in cuts})

    def _detector(self) -> Any:
        from scenedetect import AdaptiveDetector, ContentDetector

        c = self.config
        if c.detector == "adaptive":
            return AdaptiveDetector(
                adaptive_threshold=c.adaptive_threshold,
                min_scene_len=float(c.min_scene_len_s),
                window_width=c.adaptive_window,
                min_content_val=c.adaptive_min_content_val,
            )
        return ContentDetector(threshold=c.threshold, min_scene_len=float(c.min_scene_len_s))

    def _cuts_from_file(self, uri: str) -> list[float] | None:
        from scenedetect import SceneManager, VideoOpenFailure, open_video

        try:
            video = open_video(uri, backend=self.config.backend)
        except (VideoOpenFailure, OSError, ValueError) as exc:
            log.warning("%s: PySceneDetect cannot open the file (%s); using sampled frames", uri, exc)
            return None
        manager = SceneManager()
        if self.config.downscale > 0:
            manager.auto_downscale = False
            manager.downscale = self.config.downscale
        manager.add_detector(self._detector())
        manager.detect_scenes(video=video)
        scenes = manager.get_scene_list(start_in_scene=True)
        return [float(start.seconds) for start, _end in scenes[1:]]

    def _cuts_from_frames(self, media: Media) -> list[float]:
        import cv2
        from scenedetect import FrameTimecode

        frames = media.frames
        if frames is None or len(frames) < 2:
            return []
        detector = self._detector()
        # the sampled rate, not the file's: min_scene_len and frame numbers count sampled frames
        rate = float(1.0 / max(1e-3, float(np.median(np.diff(frames.times)))))
        cuts: list[Any] = []
        tc = None
        for i in range(len(frames)):
            img = frames.frame(i)
            if self.config.downscale > 1:
                h, w = img.shape[:2]
                img = cv2.resize(img, (w // self.config.downscale, h // self.config.downscale))
            tc = FrameTimecode(float(frames.times[i]), fps=rate)
            cuts += detector.process_frame(tc, img)
        if tc is not None:
            cuts += detector.post_process(tc)
        return sorted({float(c.seconds) for c in cuts})


def spans_from_cuts(cuts: list[float], duration: float) -> list[Span]:
    """Contiguous shots between sorted cut times, covering ``[0, duration]`` exactly."""
    bounds = [0.0, *sorted(c for c in set(cuts) if 0.0 < c < duration), duration]
    return [Span(start_s=a, end_s=b) for a, b in itertools.pairwise(bounds) if b > a]
