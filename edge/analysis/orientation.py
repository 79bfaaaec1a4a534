"""In-plane rotated faces: turned copies of a photo and the way back.

YuNet finds faces rolled up to about +-45 deg, but it scores them lower and its five
points keep an upright face's layout (docs/fields.md), and a phone photo saved
sideways (no EXIF orientation) or upside down holds faces it misses or reads upside
down. Detecting on the photo turned by quarter turns, then by the odd eighths, puts
every face within 22.5 deg of some pass's upright. Quarter turns are exact pixel
permutations (cv2.rotate); eighth turns are a warp onto a canvas holding the whole photo.

Angles are degrees clockwise in the image, as Baidu's rotation_angle.
"""
from __future__ import annotations

import math

import cv2
import numpy as np

QUARTER_TURNS = (90, 180, 270)
EIGHTH_TURNS = (45, 135, 225, 315)
ROTATE = {90: cv2.ROTATE_90_CLOCKWISE, 180: cv2.ROTATE_180, 270: cv2.ROTATE_90_COUNTERCLOCKWISE}


def wrap_deg(deg: float) -> float:
    """An angle (difference) in [-180, 180)."""
    return (deg + 180.0) % 360.0 - 180.0


def turn(img: np.ndarray, angle: int) -> tuple[np.ndarray, np.ndarray]:
    """The image turned clockwise by `angle` deg, and the 2x3 affine map from the
    turned image's pixel coordinates back to the original's."""
    h, w = img.shape[:2]
    a = angle % 360
    if a % 90 == 0:
        back = {0: [[1, 0, 0], [0, 1, 0]], 90: [[0, 1, 0], [-1, 0, h]],
                180: [[-1, 0, w], [0, -1, h]], 270: [[0, -1, w], [1, 0, 0]]}[a]
        turned = img if a == 0 else cv2.rotate(img, ROTATE[a])
        return turned, np.array(back, np.float64)
    m = cv2.getRotationMatrix2D((w / 2, h / 2), -a, 1.0)   # OpenCV: positive = counter-clockwise
    c, s = abs(m[0, 0]), abs(m[0, 1])
    nw, nh = int(math.ceil(h * s + w * c)), int(math.ceil(h * c + w * s))
    m[0, 2] += nw / 2 - w / 2
    m[1, 2] += nh / 2 - h / 2
    turned = cv2.warpAffine(img, m, (nw, nh), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    return turned, cv2.invertAffineTransform(m)


def map_points(pts: np.ndarray, m: np.ndarray) -> np.ndarray:
    """Points (..., 2) through a 2x3 affine map."""
    p = np.asarray(pts, np.float64)
    return (p @ m[:, :2].T + m[:, 2]).astype(np.float32)


def map_boxes(boxes: np.ndarray, m: np.ndarray, angle: int) -> np.ndarray:
    """x1 y1 x2 y2 boxes of a turned image -> boxes of the original image, centred on
    the mapped centre, sides as the face's (swapped for a face lying on its side)."""
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    centre = map_points((b[:, :2] + b[:, 2:]) / 2, m)
    half = (b[:, 2:] - b[:, :2]) / 2 * float(np.hypot(m[0, 0], m[1, 0]))   # the map's scale
    if angle % 180 == 90:
        half = half[:, ::-1]
    return np.concatenate([centre - half, centre + half], axis=1).astype(np.float32)


def rotated_rect(box: np.ndarray, upright_size: tuple[float, float], rotation: float) -> tuple[float, ...]:
    """Baidu's location of a face: (left, top, width, height).

    The face's rectangle (width x height in its own upright frame) stands at the
    centre of `box`, turned clockwise by `rotation` deg; left/top is its top-left
    corner (the face's, not the image's) in image pixels, so drawing width x height
    from (left, top) turned by rotation about that corner covers the face.
    """
    fw, fh = upright_size
    cx, cy = (float(box[0]) + float(box[2])) / 2, (float(box[1]) + float(box[3])) / 2
    c, s = math.cos(math.radians(rotation)), math.sin(math.radians(rotation))
    dx, dy = -fw / 2, -fh / 2
    return cx + c * dx - s * dy, cy + s * dx + c * dy, fw, fh


# YuNet's five points keep an upright face's layout on a rolled face (30 deg of roll
# moves its eye line ~5 deg), which spoils the aligned chip. Once the mesh has measured
# the roll, points off by more than this are found again on the face's crop turned
# upright (FaceAnalyser), or failing that turned about their centre to match.
FOLLOW_ROLL_DEG = 4.0


def roll_gap(kps5: np.ndarray, roll: float) -> float:
    """How far (deg) the points' eye line is from the measured roll."""
    k = np.asarray(kps5, np.float64)
    return wrap_deg(roll - math.degrees(math.atan2(k[1, 1] - k[0, 1], k[1, 0] - k[0, 0])))


def follow_roll(kps5: np.ndarray, roll: float) -> np.ndarray:
    """The detector's 5 points turned about their centroid so their eye line has `roll`."""
    diff = roll_gap(kps5, roll)
    c, s = math.cos(math.radians(diff)), math.sin(math.radians(diff))
    k = np.asarray(kps5, np.float64)
    centre = k.mean(axis=0)
    return ((k - centre) @ np.array([[c, s], [-s, c]]) + centre).astype(np.float32)
