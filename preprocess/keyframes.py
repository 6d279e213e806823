"""Pick K diverse key frames per segment, and the emotional peak frame when AUs exist.

Each candidate frame (the shared sampled frames inside the segment) gets a salience from
its frame difference and optical-flow magnitude to the previous frame (something
happens there). Frames are then chosen greedily, max-min style: each next frame is the one
least similar to those already chosen, similarity being the mean pixel difference plus
the share of ORB descriptors that match, with a small salience bonus; no two chosen frames
are closer than ``min_gap_s``. The peak frame, when AU intensities are given, is the frame
with the highest summed intensity of the AUs most often present in the segment; it is
chosen first, so the agents always see it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from emoforge.configs.sampling import KeyframeConfig
from emoforge.preprocess.media import FrameStore, Media
from emoforge.preprocess.tool import ToolSpec
from emoforge.storage.records import AUFrame, Features, KeyFrame, Segment


class KeyframeSelector:
    """Key frames of a segment from the shared FrameStore; OpenCV only, no model."""

    model_id: str | None = None

    def __init__(self, config: KeyframeConfig) -> None:
        self.config = config
        self._orb: Any = None

    def fill(self, media: Media, segment: Segment, features: Features) -> dict[str, Any] | None:
        """Key frames and the peak time, the peak from the AUs the face tool found, if any."""
        frames = media.frames
        if frames is None or not len(frames):
            return None
        au_frames = features.face.au_frames if features.face is not None else []
        keyframes, peak_t_s = self.select(segment, frames, au_frames)
        return {"keyframes": keyframes, "peak_t_s": peak_t_s}

    def select(
        self, segment: Segment, frames: FrameStore, au_frames: list[AUFrame] | None = None
    ) -> tuple[list[KeyFrame], float | None]:
        """Returns (key frames sorted by time, peak time or None without AUs)."""
        idx = [int(i) for i in frames.indices_between(segment.start_s, segment.end_s)]
        peak_t = peak_time(segment, au_frames or [], self.config.peak_top_aus, self.config.peak_au_active)
        if not idx:
            return [], peak_t
        times = frames.times[idx]
        chosen: list[tuple[int, float, str]] = []  # (position in idx, score, reason)
        if peak_t is not None:
            chosen.append((int(np.argmin(np.abs(times - peak_t))), 1.0, "peak"))
        if self.config.method == "uniform":
            chosen = self._uniform(times, segment, chosen)
        else:
            chosen = self._diverse(frames, idx, chosen)
        chosen.sort(key=lambda c: times[c[0]])
        return [self._keyframe(frames, idx[p], score, reason) for p, score, reason in chosen], peak_t

    # ------------------------------------------------------------------ selection

    def _fits(self, times: np.ndarray, pos: int, chosen: list[tuple[int, float, str]]) -> bool:
        return all(abs(times[pos] - times[c]) >= self.config.min_gap_s - 1e-9 and pos != c for c, _, _ in chosen)

    def _uniform(
        self, times: np.ndarray, segment: Segment, chosen: list[tuple[int, float, str]]
    ) -> list[tuple[int, float, str]]:
        """The frames nearest the centres of K equal parts of the segment."""
        k = self.config.k
        for j in range(k):
            t = segment.start_s + segment.duration_s * (j + 0.5) / k
            if len(chosen) >= self.config.k:
                break
            order = np.argsort(np.abs(times - t), kind="stable")
            pos = next((int(p) for p in order if self._fits(times, int(p), chosen)), None)
            if pos is not None:
                chosen.append((pos, 0.0, "uniform"))
        return chosen

    def _diverse(
        self, frames: FrameStore, idx: list[int], chosen: list[tuple[int, float, str]]
    ) -> list[tuple[int, float, str]]:
        import cv2

        times = frames.times[idx]
        grays = [self._small_gray(frames.frame(i)) for i in idx]
        salience = _normalise(self._motion(grays, frames, idx))
        orb = self._orb_detector()
        descriptors = [orb.detectAndCompute(g, None)[1] for g in grays]
        matcher = cv2.BFMatcher(cv2.NORM_HAMMING, crossCheck=True)
        if not chosen:
            chosen.append((int(np.argmax(salience)), float(salience.max()), "diversity"))
        min_dist = np.full(len(idx), np.inf)
        while len(chosen) < self.config.k:
            last = chosen[-1][0]
            for p in range(len(idx)):
                d = _dissimilarity(grays[p], grays[last], descriptors[p], descriptors[last], matcher)
                min_dist[p] = min(min_dist[p], d)
            best, best_score = None, -np.inf
            for p in range(len(idx)):
                if not self._fits(times, p, chosen):
                    continue
                score = float(min_dist[p] + 0.25 * salience[p])
                if score > best_score + 1e-12:
                    best, best_score = p, score
            if best is None:
                break
            chosen.append((best, best_score, "diversity"))
        return chosen

    def _motion(self, grays: list[np.ndarray], frames: FrameStore, idx: list[int]) -> np.ndarray:
        """Frame difference + mean optical-flow magnitude against the previous sampled frame."""
        import cv2

        out = np.zeros(len(grays))
        for p, g in enumerate(grays):
            prev_i = idx[p] - 1
            if prev_i < 0:
                continue
            prev = grays[p - 1] if p > 0 else self._small_gray(frames.frame(prev_i))
            if prev.shape != g.shape:
                continue
            diff = float(np.mean(cv2.absdiff(prev, g))) / 255.0
            flow = cv2.calcOpticalFlowFarneback(prev, g, None, 0.5, 2, 9, 2, 5, 1.1, 0)
            mag = float(np.mean(np.linalg.norm(flow, axis=2))) / max(g.shape)
            out[p] = diff + mag
        return out

    # ------------------------------------------------------------------ helpers

    def _orb_detector(self) -> Any:
        if self._orb is None:
            import cv2

            self._orb = cv2.ORB_create(nfeatures=self.config.orb_features, edgeThreshold=15, patchSize=15)
        return self._orb

    def _small_gray(self, img: np.ndarray) -> np.ndarray:
        import cv2

        h, w = img.shape[:2]
        scale = min(1.0, self.config.analysis_side / max(h, w))
        small = cv2.resize(img, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
        return cv2.cvtColor(small, cv2.COLOR_BGR2GRAY)

    def _keyframe(self, frames: FrameStore, i: int, score: float, reason: str) -> KeyFrame:
        import cv2

        img = frames.frame(i)
        h, w = img.shape[:2]
        scale = min(1.0, self.config.jpeg_max_side / max(h, w))
        if scale < 1.0:
            img = cv2.resize(img, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
        ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, self.config.jpeg_quality])
        jpeg = buf.tobytes() if ok else None
        return KeyFrame(t_s=float(frames.times[i]), score=round(score, 6), reason=reason, jpeg=jpeg)


def _normalise(x: np.ndarray) -> np.ndarray:
    span = float(x.max() - x.min()) if x.size else 0.0
    return (x - x.min()) / span if span > 1e-12 else np.zeros_like(x)


def _dissimilarity(a: np.ndarray, b: np.ndarray, da: Any, db: Any, matcher: Any) -> float:
    """0 (same picture) .. ~2 (unrelated): pixel difference plus the share of unmatched ORB features."""
    if a is b:
        return 0.0
    pix = float(np.mean(np.abs(a.astype(np.int16) - b.astype(np.int16)))) / 64.0 if a.shape == b.shape else 1.0
    if da is None or db is None or len(da) == 0 or len(db) == 0:
        return min(pix, 1.0) + 1.0 - (1.0 if pix == 0 else 0.0)
    good = [m for m in matcher.match(da, db) if m.distance < 48]
    return min(pix, 1.0) + 1.0 - len(good) / min(len(da), len(db))


def peak_time(segment: Segment, au_frames: list[AUFrame], top_aus: int, active: float) -> float | None:
    """Time of the frame with the highest summed intensity of the segment's most frequent AUs."""
    inside = [f for f in au_frames if segment.start_s <= f.t_s < segment.end_s and f.values]
    if not inside:
        return None
    names = sorted({n for f in inside for n in f.values})
    counts = {n: sum(f.values.get(n, 0.0) >= active for f in inside) for n in names}
    means = {n: float(np.mean([f.values.get(n, 0.0) for f in inside])) for n in names}
    top = sorted(names, key=lambda n: (-counts[n], -means[n], n))[:top_aus]
    scores = [sum(f.values.get(n, 0.0) for n in top) for f in inside]
    return float(inside[int(np.argmax(scores))].t_s)


# Runs in the preprocess phase (it needs the AUs of the face tool); its settings stay under
# `sampling.keyframes`, where every existing config sets them.
TOOL = ToolSpec(
    name="keyframes",
    phase="preprocess",
    section="sampling.keyframes",
    fills=("keyframes", "peak_t_s"),
    build=lambda settings: KeyframeSelector(settings.keyframes),
)
