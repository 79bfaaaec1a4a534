"""dlib's face descriptor ResNet (the converted ONNX graph, edge/models/dlib_net.py):
a 150x150 dlib chip -> 128-d descriptor.

dlib makes its chip with get_face_chip(size=150, padding=0.25) from its 5-point
predictor (eye corners, base of the nose); the face mesh gives those points
(attributes.DLIB_POINTS), so the chip here (attributes.dlib_chip) is the same
similarity warp of the same template, bilinear as dlib's. dlib compares raw descriptors by euclidean distance
(0.6); the descriptors come out near unit length, and embed() returns them
L2-normalised like SFaceEmbedder, so both compare by cosine.
"""
from __future__ import annotations

import cv2
import numpy as np

from edge.analysis import attributes
from edge.analysis.embedder import l2_normalise
from edge.errors import EdgeError
from edge.models.dlib_net import CHIP_SIZE, DESCRIPTOR_DIM
from edge.models.runtime import create_session

DIM = DESCRIPTOR_DIM
PADDING = 0.25                     # dlib's face recognition chips (dlib_face_recognition_ex)
INVALID_PARAM = 216100


def dlib_chip(img_bgr: np.ndarray, mesh: np.ndarray) -> np.ndarray:
    """The 150x150 BGR chip of a face from its mesh points."""
    return attributes.dlib_chip(img_bgr, mesh, CHIP_SIZE, PADDING, cv2.INTER_LINEAR, cv2.BORDER_CONSTANT)


def check_chip(chip: np.ndarray) -> None:
    """Refuse what is not a 150x150 3-channel 8-bit chip with a Baidu-style error."""
    if not isinstance(chip, np.ndarray) or chip.dtype != np.uint8 or chip.shape != (CHIP_SIZE, CHIP_SIZE, 3):
        got = (f"{chip.dtype} {chip.shape}" if isinstance(chip, np.ndarray) else type(chip).__name__)
        raise EdgeError(INVALID_PARAM, f"a dlib chip is a {CHIP_SIZE}x{CHIP_SIZE}x3 uint8 image, not {got}")


def preprocess(chips_bgr: list[np.ndarray]) -> np.ndarray:
    """BGR uint8 chips -> NCHW float32 RGB 0..255 (the graph applies dlib's normalisation)."""
    for c in chips_bgr:
        check_chip(c)
    return np.stack([c[:, :, ::-1].transpose(2, 0, 1) for c in chips_bgr]).astype(np.float32)


class DlibEmbedder:
    def __init__(self, model_path, threads: int = 2):
        self.session = create_session(model_path, threads)
        self.input_name = self.session.get_inputs()[0].name

    def descriptors(self, chips_bgr: list[np.ndarray]) -> np.ndarray:
        """dlib's raw descriptors (compare by euclidean distance, 0.6 = same person)."""
        if not chips_bgr:
            return np.zeros((0, DIM), np.float32)
        return self.session.run(None, {self.input_name: preprocess(chips_bgr)})[0]

    def embed_chips(self, chips_bgr: list[np.ndarray]) -> np.ndarray:
        return l2_normalise(self.descriptors(chips_bgr))

    def embed(self, img_bgr: np.ndarray, mesh: np.ndarray) -> np.ndarray:
        return self.embed_chips([dlib_chip(img_bgr, mesh)])[0]
