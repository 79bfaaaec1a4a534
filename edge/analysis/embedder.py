"""SFace recogniser: an aligned 112x112 chip -> 128-d L2-normalised embedding."""
from __future__ import annotations

import numpy as np

from edge.analysis.align import align_face
from edge.models.runtime import create_session

DIM = 128


def preprocess(chips_bgr: list[np.ndarray]) -> np.ndarray:
    """BGR uint8 chips -> NCHW float32 RGB 0..255 (SFace's training layout)."""
    return np.stack([c[:, :, ::-1].transpose(2, 0, 1) for c in chips_bgr]).astype(np.float32)


def l2_normalise(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


class SFaceEmbedder:
    def __init__(self, model_path, threads: int = 2):
        self.session = create_session(model_path, threads)
        self.input_name = self.session.get_inputs()[0].name

    def embed_chips(self, chips_bgr: list[np.ndarray]) -> np.ndarray:
        # The graph is exported with batch 1; run chips one by one.
        out = [self.session.run(None, {self.input_name: preprocess([c])})[0][0] for c in chips_bgr]
        return l2_normalise(np.asarray(out, dtype=np.float32))

    def embed(self, img_bgr: np.ndarray, kps5: np.ndarray) -> np.ndarray:
        return self.embed_chips([align_face(img_bgr, kps5)])[0]
