"""Offline action-unit estimator from pose-normalised landmark geometry (no learned weights).

Each AU is one or two terms over the descriptors of ``geometry.py`` (IOD units). A term
``t(d, s, +)`` is ``clip((d - b_d) / s, 0, 1)`` for a descriptor that grows with the AU and
``t(d, s, -)`` is ``clip((b_d - d) / s, 0, 1)`` for one that shrinks; ``s`` is the change
that counts as full intensity. Two terms are averaged unless noted.

| AU | name | formula |
| --- | --- | --- |
| AU1 | inner brow raiser | t(brow_inner_raise, 0.08, +) |
| AU2 | outer brow raiser | t(brow_outer_raise, 0.08, +) |
| AU4 | brow lowerer | t(brow_gap, 0.06, -), t(brow_mid_height, 0.08, -) |
| AU5 | upper lid raiser | t(upper_lid_height, 0.05, +) |
| AU6 | cheek raiser | t(cheek_height, 0.05, -), t(eye_aperture, 0.04, -) |
| AU7 | lid tightener | t(lower_lid_height, 0.02, +) |
| AU9 | nose wrinkler | t(nose_wing_height, 0.08, -) |
| AU10 | upper lip raiser | t(upper_lip_gap, 0.08, -) |
| AU12 | lip corner puller | 0.7 t(lip_corner_raise, 0.05, +) + 0.3 t(mouth_width, 0.10, +) |
| AU15 | lip corner depressor | clip((r - lip_corner_raise) / 0.04, 0, 1), r = min(90th pct, NEUTRAL) |
| AU17 | chin raiser | t(chin_lip_gap, 0.08, -) |
| AU20 | lip stretcher | t(mouth_width, 0.10, +) * (1 - t(lip_corner_raise, 0.05, +)) |
| AU23 | lip tightener | t(lip_thickness, 0.06, -) |
| AU25 | lips part | clip((mouth_open - 0.02) / 0.08, 0, 1) (absolute: any gap counts) |
| AU26 | jaw drop | t(jaw_open, 0.10, +) |
| AU45 | blink | clip((1 - eye_aperture / b_open - 0.3) / 0.5, 0, 1), b_open = 90th pct |

**Neutral baseline.** ``b_d`` is the segment's own neutral value: the
``baseline_percentile`` (default 10th) of the segment's frames in the AU's rest direction
(the low end for "+" descriptors, the high end for "-" ones), so a person's resting
geometry reads as zero. A segment where the face never relaxes (a smile held throughout)
would then read as neutral, so the baseline is bounded by a population rest value
``NEUTRAL`` (for "+" descriptors ``b = min(percentile, NEUTRAL)``, for "-" ``max``). The
``NEUTRAL`` values are medians of non-smiling talking faces measured with this mesh; they
only bound the baseline, they are not the baseline.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from emoforge.configs.preprocess import AUConfig
from emoforge.preprocess.tool import ToolSpec

AU_NAMES = (
    "AU1", "AU2", "AU4", "AU5", "AU6", "AU7", "AU9", "AU10", "AU12", "AU15", "AU17", "AU20", "AU23",
    "AU25", "AU26", "AU45",
)  # fmt: skip

NEUTRAL: dict[str, float] = {
    "brow_inner_raise": 0.28, "brow_outer_raise": 0.175, "brow_mid_height": 0.30, "brow_gap": 0.30,
    "eye_aperture": 0.09, "upper_lid_height": 0.06, "lower_lid_height": -0.03, "cheek_height": 0.385,
    "nose_wing_height": 0.41, "upper_lip_gap": 0.20, "jaw_open": 0.92, "mouth_width": 0.55,
    "lip_corner_raise": 0.01, "lip_thickness": 0.15, "chin_lip_gap": 0.35,
}  # fmt: skip

# descriptor -> +1 when it grows with its AU(s), -1 when it shrinks
_DIRECTION = {
    "brow_inner_raise": 1, "brow_outer_raise": 1, "brow_gap": -1, "brow_mid_height": -1,
    "upper_lid_height": 1, "cheek_height": -1, "eye_aperture": -1, "lower_lid_height": 1,
    "nose_wing_height": -1, "upper_lip_gap": -1, "lip_corner_raise": 1, "mouth_width": 1,
    "chin_lip_gap": -1, "lip_thickness": -1, "jaw_open": 1,
}  # fmt: skip


class LandmarkAUEstimator:
    """Geometry descriptors per frame -> AU intensities 0..1, calibrated per segment."""

    backend = "landmark"
    model_id = "landmark-au-v1"

    def __init__(self, config: AUConfig) -> None:
        self.config = config

    def baselines(self, frames: Sequence[dict[str, float]]) -> dict[str, float]:
        """The segment's neutral value of each descriptor, bounded by ``NEUTRAL``."""
        p = self.config.baseline_percentile
        out: dict[str, float] = {}
        for name, sign in _DIRECTION.items():
            values = np.array([f[name] for f in frames if name in f], dtype=np.float64)
            if values.size == 0:
                continue
            if sign > 0:
                out[name] = min(float(np.percentile(values, p)), NEUTRAL[name])
            else:
                out[name] = max(float(np.percentile(values, 100 - p)), NEUTRAL[name])
        # Lip corners move both ways: AU15's rest is the high end, bounded by the neutral value.
        corners = [f["lip_corner_raise"] for f in frames if "lip_corner_raise" in f]
        high = float(np.percentile(corners, 100 - p)) if corners else NEUTRAL["lip_corner_raise"]
        out["corner_rest"] = min(high, NEUTRAL["lip_corner_raise"])
        eye = [f["eye_aperture"] for f in frames if "eye_aperture" in f]
        out["eye_open"] = float(np.percentile(eye, 90)) if eye else NEUTRAL["eye_aperture"]
        return out

    def estimate(self, frames: Sequence[dict[str, float]]) -> list[dict[str, float]]:
        """AU intensities for each frame's descriptors (same order)."""
        if not frames:
            return []
        b = self.baselines(frames)
        return [self._frame(f, b) for f in frames]

    @staticmethod
    def _frame(d: dict[str, float], b: dict[str, float]) -> dict[str, float]:
        def t(name: str, scale: float) -> float:
            return float(np.clip(_DIRECTION[name] * (d[name] - b[name]) / scale, 0.0, 1.0))

        corner_up = t("lip_corner_raise", 0.05)
        corner_down = float(np.clip((b["corner_rest"] - d["lip_corner_raise"]) / 0.04, 0, 1))
        wide = t("mouth_width", 0.10)
        blink = float(np.clip((1 - d["eye_aperture"] / max(b["eye_open"], 1e-6) - 0.3) / 0.5, 0, 1))
        au = {
            "AU1": t("brow_inner_raise", 0.08),
            "AU2": t("brow_outer_raise", 0.08),
            "AU4": (t("brow_gap", 0.06) + t("brow_mid_height", 0.08)) / 2,
            "AU5": t("upper_lid_height", 0.05),
            "AU6": (t("cheek_height", 0.05) + t("eye_aperture", 0.04)) / 2,
            "AU7": t("lower_lid_height", 0.02),
            "AU9": t("nose_wing_height", 0.08),
            "AU10": t("upper_lip_gap", 0.08),
            "AU12": 0.7 * corner_up + 0.3 * wide,
            "AU15": corner_down,
            "AU17": t("chin_lip_gap", 0.08),
            "AU20": wide * (1 - corner_up),
            "AU23": t("lip_thickness", 0.06),
            "AU25": float(np.clip((d["mouth_open"] - 0.02) / 0.08, 0, 1)),
            "AU26": t("jaw_open", 0.10),
            "AU45": blink,
        }
        return {k: round(v, 4) for k, v in au.items()}


# One tool, two estimators: this one and aus_pyfeat.py (`preprocess.aus.backend`); both
# write the action units of `Features.face`.
TOOL = ToolSpec(name="aus", phase="preprocess", section="preprocess.aus", fills=("face",))
