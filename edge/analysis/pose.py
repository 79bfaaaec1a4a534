"""Head pose (yaw, pitch, roll in degrees) from the 3-D face mesh.

The mesh net returns depth with each point, so the face's own axes can be read off it:
x from symmetric point pairs (image-left -> image-right), y down the facial midline.
Signs follow Baidu: roll > 0 clockwise in the image, yaw > 0 when the face turns
towards the image's right, pitch > 0 when the face looks down.
"""
from __future__ import annotations

import numpy as np

# Symmetric pairs (image-left, image-right): outer/inner eye corners, cheeks, jaw, mouth.
PAIRS = [(33, 263), (133, 362), (234, 454), (93, 323), (132, 361), (58, 288), (61, 291),
         (70, 300), (105, 334), (116, 345), (172, 397), (136, 365)]
# Midline from the forehead to the chin.
MIDLINE_TOP = [10, 151, 9, 8]
MIDLINE_BOTTOM = [152, 175, 199, 200]
# The mesh's midline leans back at the top on a face looking straight at the camera;
# this offset (degrees) zeroes the median pitch of frontal faces (measured on LFW
# photos, scripts/calibrate_measures.py).
PITCH_OFFSET = 5.5


def _unit(v: np.ndarray) -> np.ndarray:
    return v / max(float(np.linalg.norm(v)), 1e-9)


def face_axes(mesh: np.ndarray) -> np.ndarray:
    """3x3 matrix whose columns are the face's x (to image right), y (down), z (backwards)."""
    pts = np.asarray(mesh, dtype=np.float64)
    xa = _unit(sum(pts[r] - pts[l] for l, r in PAIRS))
    ya = _unit(pts[MIDLINE_BOTTOM].mean(0) - pts[MIDLINE_TOP].mean(0))
    ya = _unit(ya - ya.dot(xa) * xa)
    za = np.cross(xa, ya)
    return np.stack([xa, ya, za], axis=1)


def head_pose(mesh: np.ndarray, frame_roll: float = 0.0) -> tuple[float, float, float]:
    """(yaw, pitch, roll) in degrees; roll in -180..180.

    `frame_roll` is the clockwise turn of the photo the face was found in (the detection
    pass's, edge.analysis.orientation): yaw and pitch are read with it undone, so a head
    turned left reads the same yaw in a sideways or upside-down photo as upright. The
    head's own tilt within that frame leaves them as they were (a roll about the face's
    own axis)."""
    axes = face_axes(mesh)
    xa = axes[:, 0]
    c, s = np.cos(np.radians(frame_roll)), np.sin(np.radians(frame_roll))
    forward = np.array([[c, s, 0.0], [-s, c, 0.0], [0.0, 0.0, 1.0]]) @ -axes[:, 2]  # face -> camera
    yaw = np.degrees(np.arctan2(forward[0], -forward[2]))
    pitch = np.degrees(np.arcsin(np.clip(forward[1], -1, 1))) - PITCH_OFFSET
    roll = np.degrees(np.arctan2(xa[1], xa[0]))
    return float(yaw), float(pitch), float(roll)
