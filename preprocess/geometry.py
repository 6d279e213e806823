"""Pose-normalised facial geometry from mediapipe's 478 landmarks.

The landmarks (pixels, with mediapipe's pixel-scaled depth) are rotated into a face frame:
x runs from the subject's right outer eye corner (33) to the left one (263), y from the
forehead (10) toward the chin (152) made orthogonal to x, z = x cross y. Coordinates are
then divided by the inter-ocular distance (IOD, 33-263), so every descriptor is free of
face size and, to first order, of head pose. Head pose (degrees) comes from the same
rotation: yaw about y, pitch about x, roll about z.

Descriptors (IOD units; "vertical" = along the face frame's y, positive downward):

- ``brow_inner_raise``: inner eye corners (133, 362) minus inner brow points (107, 336), vertical.
- ``brow_outer_raise``: outer eye corners (33, 263) minus outer brow points (70, 300), vertical.
- ``brow_mid_height``: eye-corner line minus mid brow (105, 334), vertical.
- ``brow_gap``: horizontal distance between inner brows (107-336).
- ``eye_aperture``: upper lid (159, 386) to lower lid (145, 374), mean of both eyes.
- ``upper_lid_height``: eye-corner line minus upper lid, vertical.
- ``lower_lid_height``: eye-corner line minus lower lid (negative below the line).
- ``cheek_height``: eye-corner line to the cheek points (50, 280), vertical distance.
- ``nose_wing_height``: inner eye corners to the nose wings (48, 278), vertical distance.
- ``upper_lip_gap``: subnasale (2) to upper lip top (0), vertical.
- ``mouth_open``: inner upper lip (13) to inner lower lip (14).
- ``jaw_open``: nose tip (1) to chin (152).
- ``mouth_width``: lip corners 61-291.
- ``lip_corner_raise``: lip centre (mean of 0, 17) minus mean corner height, vertical (positive = corners up).
- ``lip_thickness``: (0-13) + (14-17) vertical.
- ``chin_lip_gap``: lower lip bottom (17) to chin (152).
- ``nasolabial``: nose wing to lip corner distance, mean of both sides (shrinks as the fold deepens).
"""

from __future__ import annotations

import math

import numpy as np

R_EYE_OUT, L_EYE_OUT, R_EYE_IN, L_EYE_IN = 33, 263, 133, 362
FOREHEAD, CHIN, NOSE_TIP, SUBNASALE = 10, 152, 1, 2
R_BROW_IN, L_BROW_IN, R_BROW_OUT, L_BROW_OUT, R_BROW_MID, L_BROW_MID = 107, 336, 70, 300, 105, 334
R_LID_UP, R_LID_LO, L_LID_UP, L_LID_LO = 159, 145, 386, 374
R_CHEEK, L_CHEEK, R_WING, L_WING = 50, 280, 48, 278
LIP_TOP, LIP_IN_UP, LIP_IN_LO, LIP_BOTTOM, R_CORNER, L_CORNER = 0, 13, 14, 17, 61, 291

DESCRIPTORS = (
    "brow_inner_raise", "brow_outer_raise", "brow_mid_height", "brow_gap", "eye_aperture",
    "upper_lid_height", "lower_lid_height", "cheek_height", "nose_wing_height", "upper_lip_gap",
    "mouth_open", "jaw_open", "mouth_width", "lip_corner_raise", "lip_thickness", "chin_lip_gap",
    "nasolabial",
)  # fmt: skip


def face_frame(pts: np.ndarray) -> tuple[np.ndarray, float]:
    """Rotation (rows = face axes in image coords) and inter-ocular distance."""
    x = pts[L_EYE_OUT] - pts[R_EYE_OUT]
    iod = float(np.linalg.norm(x))
    x = x / max(iod, 1e-9)
    y = pts[CHIN] - pts[FOREHEAD]
    y = y - np.dot(y, x) * x
    y = y / max(float(np.linalg.norm(y)), 1e-9)
    z = np.cross(x, y)
    return np.stack([x, y, z]), iod


def head_pose(rot: np.ndarray) -> dict[str, float]:
    """Yaw, pitch, roll in degrees from the face-frame rotation (0,0,0 = frontal, upright)."""
    # Rows are the face axes in image coordinates (x right, y down, z away from the camera);
    # a frontal upright face gives the identity. Small-angle readings of the off-diagonals:
    yaw = math.degrees(math.asin(float(np.clip(rot[0, 2], -1, 1))))  # + = face turned to image left
    pitch = math.degrees(math.asin(float(np.clip(rot[1, 2], -1, 1))))  # + = chin toward the camera
    roll = math.degrees(math.atan2(float(rot[0, 1]), float(rot[0, 0])))  # + = tilted clockwise
    return {"yaw": round(yaw, 2), "pitch": round(pitch, 2), "roll": round(roll, 2)}


class FaceGeometry:
    """Size- and pose-normalised descriptors of one face."""

    def describe(self, pts: np.ndarray) -> tuple[dict[str, float], dict[str, float]]:
        """Descriptors and head pose for landmarks of shape (>=468, 3)."""
        rot, iod = face_frame(pts)
        p = (pts - pts[NOSE_TIP]) @ rot.T / max(iod, 1e-9)

        def vy(i: int) -> float:
            return float(p[i, 1])

        def dist(i: int, j: int) -> float:
            return float(np.linalg.norm(p[i] - p[j]))

        eye_line = (vy(R_EYE_OUT) + vy(L_EYE_OUT) + vy(R_EYE_IN) + vy(L_EYE_IN)) / 4
        lip_mid = (vy(LIP_TOP) + vy(LIP_BOTTOM)) / 2
        desc = {
            "brow_inner_raise": ((vy(R_EYE_IN) - vy(R_BROW_IN)) + (vy(L_EYE_IN) - vy(L_BROW_IN))) / 2,
            "brow_outer_raise": ((vy(R_EYE_OUT) - vy(R_BROW_OUT)) + (vy(L_EYE_OUT) - vy(L_BROW_OUT))) / 2,
            "brow_mid_height": eye_line - (vy(R_BROW_MID) + vy(L_BROW_MID)) / 2,
            "brow_gap": abs(float(p[L_BROW_IN, 0] - p[R_BROW_IN, 0])),
            "eye_aperture": ((vy(R_LID_LO) - vy(R_LID_UP)) + (vy(L_LID_LO) - vy(L_LID_UP))) / 2,
            "upper_lid_height": eye_line - (vy(R_LID_UP) + vy(L_LID_UP)) / 2,
            "lower_lid_height": eye_line - (vy(R_LID_LO) + vy(L_LID_LO)) / 2,
            "cheek_height": (vy(R_CHEEK) + vy(L_CHEEK)) / 2 - eye_line,
            "nose_wing_height": (vy(R_WING) + vy(L_WING)) / 2 - (vy(R_EYE_IN) + vy(L_EYE_IN)) / 2,
            "upper_lip_gap": vy(LIP_TOP) - vy(SUBNASALE),
            "mouth_open": max(0.0, vy(LIP_IN_LO) - vy(LIP_IN_UP)),
            "jaw_open": dist(NOSE_TIP, CHIN),
            "mouth_width": dist(R_CORNER, L_CORNER),
            "lip_corner_raise": lip_mid - (vy(R_CORNER) + vy(L_CORNER)) / 2,
            "lip_thickness": (vy(LIP_IN_UP) - vy(LIP_TOP)) + (vy(LIP_BOTTOM) - vy(LIP_IN_LO)),
            "chin_lip_gap": vy(CHIN) - vy(LIP_BOTTOM),
            "nasolabial": (dist(R_WING, R_CORNER) + dist(L_WING, L_CORNER)) / 2,
        }
        return {k: round(v, 5) for k, v in desc.items()}, head_pose(rot)
