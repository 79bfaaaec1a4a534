"""Named point sets of the 468-point MediaPipe mesh, and Baidu's 72-point layout.

Mesh indices follow MediaPipe's canonical topology. "left"/"right" in this module are
the image's (as Baidu's detect reports them: landmark[0] is the eye with the smaller x
for an upright frontal face), which is the subject's right/left.
"""
from __future__ import annotations

import numpy as np

# Eye contours, clockwise from the outer corner (image-left eye = subject's right eye).
LEFT_EYE = [33, 246, 161, 160, 159, 158, 157, 173, 133, 155, 154, 153, 145, 144, 163, 7]
RIGHT_EYE = [263, 466, 388, 387, 386, 385, 384, 398, 362, 382, 381, 380, 374, 373, 390, 249]
LEFT_BROW = [70, 63, 105, 66, 107, 55, 65, 52, 53, 46]
RIGHT_BROW = [300, 293, 334, 296, 336, 285, 295, 282, 283, 276]
NOSE = [168, 6, 197, 195, 5, 4, 1, 2, 98, 327, 129, 358, 64, 294, 48, 278, 49, 279]
LIPS_OUTER = [61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291, 375, 321, 405, 314, 17, 84, 181, 91, 146]
LIPS_INNER = [78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308, 324, 318, 402, 317, 14, 87, 178, 88, 95]
FACE_OVAL = [10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400,
             377, 152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109]
LEFT_CHEEK = [116, 117, 118, 119, 100, 142, 203, 206, 216, 207, 187, 147, 123, 50, 36, 205, 192, 213]
RIGHT_CHEEK = [345, 346, 347, 348, 329, 371, 423, 426, 436, 427, 411, 376, 352, 280, 266, 425, 416, 433]
FOREHEAD = [10, 338, 297, 332, 109, 67, 103, 151, 9, 107, 336, 66, 296, 69, 299, 108, 337]
CHIN = [18, 200, 199, 175, 152, 148, 176, 149, 377, 400, 378, 83, 313, 201, 421, 208, 428, 32, 262]

# Baidu's 72 points: 13 contour (image-left temple -> chin (6) -> image-right temple),
# 9 left eye (8 contour from the outer corner + centre), 8 left brow (4 upper + 4 lower,
# outer to inner), 9 right eye, 8 right brow, 11 nose (bridge -> tip -> alae ->
# nostrils), 14 mouth (corner, 5 upper outer, corner, 5 lower outer... see below).
CONTOUR_13 = [234, 132, 58, 172, 150, 176, 152, 400, 379, 397, 288, 361, 454]
LEFT_EYE_8 = [33, 160, 159, 158, 133, 153, 145, 144]
RIGHT_EYE_8 = [263, 387, 386, 385, 362, 380, 374, 373]
LEFT_BROW_8 = [70, 63, 105, 66, 107, 65, 52, 53]
RIGHT_BROW_8 = [300, 293, 334, 296, 336, 295, 282, 283]
NOSE_11 = [168, 6, 197, 195, 5, 4, 1, 98, 327, 2, 64]
# Mouth: left corner, upper outer (3), right corner, lower outer (3), upper inner (3),
# lower inner (3).
MOUTH_14 = [61, 40, 0, 270, 291, 321, 17, 91, 81, 13, 311, 178, 14, 402]

# The 4 points of detect's `landmark`: eye centres, nose tip, mouth centre.
NOSE_TIP = 1


# The mesh's 5 points in YuNet's order (as seen: left eye, right eye, nose tip, mouth
# left, right): eye centres from their corners, the nose tip, the mouth corners.
MESH_EYES = ((33, 133), (362, 263))
MESH_MOUTH = (61, 291)


def mesh_kps5(mesh: np.ndarray) -> np.ndarray:
    """A second alignment's 5 points (the embedder `sface_dlib` aligns SFace on both)."""
    pts = [mesh[list(e), :2].mean(0) for e in MESH_EYES] + [mesh[NOSE_TIP, :2]] + [mesh[k, :2] for k in MESH_MOUTH]
    return np.asarray(pts, np.float64)


def eye_centre(mesh: np.ndarray, contour: list[int]) -> np.ndarray:
    return mesh[contour, :2].mean(axis=0)


def landmark4(mesh: np.ndarray) -> np.ndarray:
    mouth = mesh[[13, 14, 61, 291], :2].mean(axis=0)
    return np.stack([eye_centre(mesh, LEFT_EYE), eye_centre(mesh, RIGHT_EYE), mesh[NOSE_TIP, :2], mouth])


def landmark72(mesh: np.ndarray) -> np.ndarray:
    """72 x 2 points in Baidu's group order (13/9/8/9/8/11/14)."""
    xy = mesh[:, :2]
    parts = [xy[CONTOUR_13],
             xy[LEFT_EYE_8], eye_centre(mesh, LEFT_EYE)[None], xy[LEFT_BROW_8],
             xy[RIGHT_EYE_8], eye_centre(mesh, RIGHT_EYE)[None], xy[RIGHT_BROW_8],
             xy[NOSE_11], xy[MOUTH_14]]
    out = np.concatenate(parts)
    return out
