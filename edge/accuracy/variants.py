"""Embedding variants compared by scripts/eval_embedders.py: one model, its alignment and
test-time flip, each a function of the photo and the face the analyser found.

Detection and the mesh are shared (one pass a photo); a variant's cost is its own chips
and nets. A variant yields an L2-normalised row, so every comparison is a cosine.
"""
from __future__ import annotations

import functools
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

from edge.analysis.align import align_face
from edge.analysis.embedder import l2_normalise
from edge.analysis.meshmap import mesh_kps5

def flipped(chip: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(chip[:, ::-1])


@dataclass
class Variant:
    name: str
    what: str
    embed: Callable[[object, np.ndarray, object], np.ndarray]   # (analyser, image, face) -> row
    seconds: float = 0.0
    faces: int = 0

    def __call__(self, analyser, img: np.ndarray, face) -> np.ndarray:
        t0 = time.perf_counter()
        row = l2_normalise(np.asarray(self.embed(analyser, img, face), np.float32))
        self.seconds += time.perf_counter() - t0
        self.faces += 1
        return row

    @property
    def ms(self) -> float:
        return 1000 * self.seconds / max(self.faces, 1)


def _sface(analyser, img, face):
    return analyser.sface.embed_chips([align_face(img, face.kps5)])[0]


def _sface_flip(analyser, img, face):
    chip = align_face(img, face.kps5)
    return analyser.sface.embed_chips([chip, flipped(chip)]).sum(0)


def _sface_mesh(analyser, img, face):
    return analyser.sface.embed_chips([align_face(img, mesh_kps5(face.mesh))])[0]


def _sface_both(analyser, img, face):
    chips = [align_face(img, face.kps5), align_face(img, mesh_kps5(face.mesh))]
    return analyser.sface.embed_chips(chips).sum(0)


def sface_variants() -> list[Variant]:
    return [
        Variant("sface", "SFace on YuNet's 5 points (the engine's default)", _sface),
        Variant("sface_flip", "SFace, chip + its mirror image, embeddings summed", _sface_flip),
        Variant("sface_mesh", "SFace on the mesh's 5 points", _sface_mesh),
        Variant("sface_2align", "SFace on both alignments, embeddings summed", _sface_both),
    ]


@functools.lru_cache(maxsize=1)
def _dlib():
    from edge.analysis.dlib_embedder import DlibEmbedder
    from edge.models.manifest import default_models_dir, load_manifest
    return DlibEmbedder(default_models_dir() / load_manifest()["embedder_dlib"].file, threads=2)


def _dlib_mesh(analyser, img, face):
    from edge.analysis.dlib_embedder import dlib_chip
    return _dlib().embed_chips([dlib_chip(img, face.mesh)])[0]


def _dlib_flip(analyser, img, face):
    from edge.analysis.dlib_embedder import dlib_chip
    chip = dlib_chip(img, face.mesh)
    return _dlib().embed_chips([chip, flipped(chip)]).sum(0)


def _engine_sface_dlib(analyser, img, face):
    from edge.analysis.embedders import SFaceDlib
    return SFaceDlib(analyser.sface, _dlib()).embed_face(img, face)


def dlib_variants() -> list[Variant]:
    from edge.models.manifest import default_models_dir, load_manifest
    spec = load_manifest().get("embedder_dlib")
    if spec is None or not (default_models_dir() / spec.file).exists():
        return []
    return [
        Variant("dlib", "dlib's ResNet on its 150x150 chip from the mesh's 5 dlib points", _dlib_mesh),
        Variant("dlib_flip", "dlib's ResNet, chip + its mirror image, summed", _dlib_flip),
        Variant("sface_dlib", "the engine's models.embedder sface_dlib (sface_2align + dlib, w 0.70)",
                _engine_sface_dlib),
    ]


def all_variants() -> list[Variant]:
    """Every variant this machine can run (a model not fetched: its variants left out)."""
    return sface_variants() + dlib_variants()
