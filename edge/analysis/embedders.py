"""The embedders a site can choose (`models.embedder`): how a face becomes the vector its
library stores and searches (docs/accuracy.md, "Choosing an embedder").

An embedder is cut in two so the capture loop can hand a face to its worker without
the frame: `cut(img, face)` takes the small chips it reads (a 112x112 SFace chip is
37 KB), `embed(chips)` turns them into one L2-normalised vector. Every embedder's
vectors compare by cosine, so the library, its index and the sync feed need only its
`dim`; its model id (`model_id`) keeps its faces apart from any other embedder's.

- `sface` (the default): SFace on YuNet's 5 points. 128 values, ~9 ms a face here.
- `sface_dlib`: SFace on two alignments (YuNet's points and the mesh's), summed, and
  dlib's ResNet on dlib's own chip, concatenated with weights sqrt(w) and sqrt(1 - w),
  so one cosine is exactly w cos_sface + (1 - w) cos_dlib and one search serves it.
  256 values, ~21 ms a face here (~190 ms on a Pi 4): +0.8 points TAR at FAR 1e-4 on
  LFW (docs/accuracy.md).
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path

import numpy as np

from edge.analysis.align import align_face
from edge.analysis.embedder import DIM as SFACE_DIM, SFaceEmbedder, l2_normalise
from edge.analysis.meshmap import mesh_kps5
from edge.models.manifest import EMBEDDERS, embedder_model_id

Chips = tuple   # of np.ndarray: what an embedder reads of a face


class Embedder(ABC):
    name: str
    dim: int

    @abstractmethod
    def cut(self, img_bgr: np.ndarray, face, sface_chip: np.ndarray | None = None) -> Chips:
        """The chips of `face` this embedder reads (`sface_chip`: its 112x112 SFace chip on
        YuNet's points, when the caller has it already)."""

    @abstractmethod
    def embed(self, chips: Chips) -> np.ndarray:
        """One L2-normalised float32 vector of `dim` values."""

    def embed_face(self, img_bgr: np.ndarray, face) -> np.ndarray:
        return self.embed(self.cut(img_bgr, face))


class SFaceOnly(Embedder):
    name, dim = "sface", SFACE_DIM

    def __init__(self, sface: SFaceEmbedder):
        self.sface = sface

    def cut(self, img_bgr, face, sface_chip=None) -> Chips:
        return (align_face(img_bgr, face.kps5) if sface_chip is None else sface_chip,)

    def embed(self, chips: Chips) -> np.ndarray:
        return self.sface.embed_chips([chips[0]])[0]


# sface_dlib's share of SFace in the cosine: the best TAR at FAR 1e-4 on the tuning half
# of LFW view 1 (scripts/eval_embedders.py --fuse sface_2align+dlib, docs/accuracy.md).
# Part of the model id: another weight is another embedding space.
SFACE_DLIB_WEIGHT = 0.70


class SFaceDlib(Embedder):
    name, dim = "sface_dlib", 2 * SFACE_DIM

    def __init__(self, sface: SFaceEmbedder, dlib, weight: float = SFACE_DLIB_WEIGHT):
        self.sface, self.dlib = sface, dlib
        self.scales = np.float32(np.sqrt(weight)), np.float32(np.sqrt(1.0 - weight))

    def cut(self, img_bgr, face, sface_chip=None) -> Chips:
        from edge.analysis.dlib_embedder import dlib_chip
        if face.mesh is None:
            raise ValueError("sface_dlib reads the face mesh: analyse the face with its landmarks first")
        first = align_face(img_bgr, face.kps5) if sface_chip is None else sface_chip
        return first, align_face(img_bgr, mesh_kps5(face.mesh)), dlib_chip(img_bgr, face.mesh)

    def embed(self, chips: Chips) -> np.ndarray:
        a = l2_normalise(self.sface.embed_chips(list(chips[:2])).sum(0))
        b = self.dlib.embed_chips([chips[2]])[0]
        return np.concatenate([self.scales[0] * a, self.scales[1] * b]).astype(np.float32)


DIMS = {c.name: c.dim for c in (SFaceOnly, SFaceDlib)}
DEFAULT = "sface"


def build(name: str, files: dict[str, Path], threads: int, sface: SFaceEmbedder | None = None) -> Embedder:
    """The named embedder on the runtime files of each role (manifest.runtime_files);
    `sface`: an SFace session to share (the analyser's)."""
    sface = sface or SFaceEmbedder(files["embedder"], threads)
    if name == "sface":
        return SFaceOnly(sface)
    if name == "sface_dlib":
        from edge.analysis.dlib_embedder import DlibEmbedder
        return SFaceDlib(sface, DlibEmbedder(files["embedder_dlib"], threads))
    raise ValueError(f"embedder must be one of {', '.join(EMBEDDERS)}, not {name!r}")


def model_id(name: str, models_dir: Path | None = None, precision: str = "fp32") -> str:
    """The id stored with every face this embedder makes. `sface` keeps SFace's own id
    (libraries enrolled before the choice existed stay in its space); a fusion names
    itself, its weight and each member's id."""
    if name == "sface":
        return embedder_model_id(models_dir, precision)
    if name not in EMBEDDERS:
        raise ValueError(f"embedder must be one of {', '.join(EMBEDDERS)}, not {name!r}")
    members = "|".join(embedder_model_id(models_dir, precision, role) for role in EMBEDDERS[name])
    return f"{name}@w{SFACE_DLIB_WEIGHT:.2f}:{members}"
